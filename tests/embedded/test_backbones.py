import pytest
import timm
import torch
from safetensors.torch import load_file

from synthbridge.embedded import glyphs
from synthbridge.embedded.backbones import BackboneBuildConfig, build_backbones
from synthbridge.embedded.models import EMBEDDED_MODELS, NUM_SOURCE_CLASSES, weights_file
from synthbridge.errors import UserError
from synthbridge.models import create_model, data_config


@pytest.mark.parametrize("name", EMBEDDED_MODELS)
def test_embedded_model_shapes_and_input_config(name):
    model = create_model(name, 7, pretrained=False)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    cfg = data_config(model)
    assert cfg["input_size"] == (3, 32, 32) and cfg["crop_pct"] == 1.0
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


@pytest.mark.parametrize("name", EMBEDDED_MODELS)
def test_shipped_weights_load_into_features_with_a_new_head(name):
    assert weights_file(name).is_file(), "embedded weights must ship with the package (synthbridge build-backbones)"
    shipped = load_file(weights_file(name))
    model = create_model(name, 10)
    state = model.state_dict()
    head = model.pretrained_cfg["classifier"]
    features = [k for k in shipped if not k.startswith(head + ".")]
    assert features and all(torch.equal(state[k], shipped[k]) for k in features)
    assert state[f"{head}.weight"].shape[0] == 10 and shipped[f"{head}.weight"].shape[0] == NUM_SOURCE_CLASSES
    # plain timm code loads the same weights once synthbridge.models is imported
    plain = timm.create_model(name, pretrained=True, num_classes=10)
    assert all(torch.equal(plain.state_dict()[k], shipped[k]) for k in features)


def test_source_task_has_no_digits_and_matches_the_head():
    assert len(glyphs.SOURCE_CLASSES) == NUM_SOURCE_CLASSES
    assert not any(ch.isdigit() for name in glyphs.SOURCE_CLASSES for ch in name)


def test_unknown_model_and_missing_checkpoint():
    with pytest.raises(UserError, match="unknown model 'mini_resnett'"):
        create_model("mini_resnett", 10)
    with pytest.raises(UserError, match="does not exist"):
        create_model("mini_vit", 10, checkpoint="/nonexistent.safetensors")


def test_checkpoint_for_another_architecture_is_an_error(tmp_path):
    from safetensors.torch import save_file

    vit = create_model("mini_vit", 10, pretrained=False)
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(tmp_path / "vit.safetensors"))
    with pytest.raises(UserError, match="does not fit model 'mini_resnet'"):
        create_model("mini_resnet", 10, checkpoint=tmp_path / "vit.safetensors")
    # a checkpoint of the right architecture with another head size is fine: the head is new
    model = create_model("mini_vit", 3, checkpoint=tmp_path / "vit.safetensors")
    assert torch.equal(model.state_dict()["blocks.0.attn.qkv.weight"], vit.state_dict()["blocks.0.attn.qkv.weight"])


def test_build_backbones_is_reproducible(tmp_path):
    cfg = BackboneBuildConfig(models=("mini_resnet",), train_per_class=2, val_per_class=1, steps=(("mini_resnet", 3),),
                              batch_size=8)
    from dataclasses import replace

    first = build_backbones(replace(cfg, out_dir=str(tmp_path / "a")))
    build_backbones(replace(cfg, out_dir=str(tmp_path / "b")))
    a = load_file(tmp_path / "a" / "mini_resnet.safetensors")
    b = load_file(tmp_path / "b" / "mini_resnet.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert first["models"]["mini_resnet"]["parameters"] > 100_000
    assert (tmp_path / "a" / "build.json").exists()
