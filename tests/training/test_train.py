import json

import pytest
import torch
from safetensors.torch import load_file

from helpers import write_synthetic_folder
from synthbridge.data import load_dataset
from synthbridge.errors import UserError
from synthbridge.training import StageConfig, TrainConfig, train
from synthbridge.training import loop as loop_module

DIGITS = [str(d) for d in range(10)]


def tiny(**overrides) -> TrainConfig:
    """A few steps on the 8x8 digits, from random weights: seconds, not minutes."""
    stage = StageConfig(steps=6, batch_size=16, warmup_steps=1)
    base = dict(dataset="digits", model="mini_resnet", pretrained=False, shots=5, real=stage,
                synthetic_stage=StageConfig(steps=4, batch_size=16, warmup_steps=1), eval_batch_size=512)
    base.update(overrides)
    return TrainConfig(**base)


def record_heads(monkeypatch) -> list:
    """Spy on train_stage: the classifier weights entering and leaving every stage."""
    heads = []
    original = loop_module.train_stage

    def spy(model, *args, **kwargs):
        heads.append(model.get_classifier().weight.detach().clone())
        result = original(model, *args, **kwargs)
        heads.append(model.get_classifier().weight.detach().clone())
        return result

    monkeypatch.setattr("synthbridge.training.trainer.train_stage", spy)
    return heads


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    return write_synthetic_folder(tmp_path_factory.mktemp("syn"), DIGITS, per_class=4)


def _reevaluated(weights) -> float:
    """Top-1 on the digits test split of a saved classifier, computed afresh."""
    from accelerate import Accelerator

    from synthbridge.evaluation import evaluate
    from synthbridge.models import create_model, data_config
    from synthbridge.training.loop import make_transform

    model = create_model("mini_resnet", 10, checkpoint=weights)
    test = load_dataset("digits").test
    return evaluate(model, test, make_transform(data_config(model), "none", train=False), DIGITS, Accelerator())["top1"]


def test_real_strategy_writes_a_complete_run_folder(tmp_path):
    metrics = train(tiny(), tmp_path / "run")
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "metrics.json", "model.safetensors"} <= files
    # as readable as the JSON next to it (safetensors' save_file alone writes 0600)
    assert (tmp_path / "run" / "model.safetensors").stat().st_mode & 0o777 == \
        (tmp_path / "run" / "metrics.json").stat().st_mode & 0o777
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["top1"] == metrics["top1"] == _reevaluated(tmp_path / "run" / "model.safetensors")  # the saved model
    assert saved["num_test"] == len(load_dataset("digits").test) == 1438
    assert set(saved["per_class"]) == set(DIGITS)
    assert saved["stages"]["real"]["steps"] == 6 and saved["seconds"]["real"] > 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["config"]["seed"] == 0 and config["config"]["real"]["lr"] == 1e-3  # resolved embedded default
    assert config["environment"]["versions"]["torch"] == torch.__version__
    assert "git_revision" in config["environment"]
    weights = load_file(tmp_path / "run" / "model.safetensors")
    assert weights["fc.weight"].shape == (10, 128)


def test_bridged_runs_both_stages_and_reinitialises_the_head(tmp_path, synthetic_dir, monkeypatch):
    heads = record_heads(monkeypatch)
    metrics = train(tiny(strategy="bridged", synthetic=str(synthetic_dir)), tmp_path / "run")
    assert list(metrics["stages"]) == ["synthetic", "real"]
    assert metrics["stages"]["synthetic"]["num_images"] == 40 and metrics["stages"]["real"]["num_images"] == 50
    # the stage-1 model's own top-1 on the real test split, as its saved weights give it
    stage1 = tmp_path / "run" / "stages" / "synthetic" / "model.safetensors"
    assert metrics["stages"]["synthetic"]["top1"] == _reevaluated(stage1)
    # the head entering stage 2 is neither the trained stage-1 head nor untouched
    assert not torch.equal(heads[1], heads[2])


def test_bridged_without_head_reinit_keeps_the_stage1_head(tmp_path, synthetic_dir, monkeypatch):
    heads = record_heads(monkeypatch)
    train(tiny(strategy="bridged", synthetic=str(synthetic_dir), head_reinit=False), tmp_path / "run")
    assert torch.equal(heads[1], heads[2])


def test_mixed_pools_or_fixes_the_real_fraction(tmp_path, synthetic_dir):
    pooled = train(tiny(strategy="mixed", synthetic=str(synthetic_dir)), tmp_path / "pooled")
    assert pooled["stages"]["mixed"]["num_images"] == 90
    from synthbridge.training.strategies import mixed

    real = load_dataset("digits", shots=5).train
    from synthbridge.data import load_synthetic

    stages = mixed(tiny(real_fraction=0.25).resolve(input_size=32), real, load_synthetic(synthetic_dir, DIGITS))
    assert stages[0].per_batch == [4, 12]
    fixed = train(tiny(strategy="mixed", synthetic=str(synthetic_dir), real_fraction=0.25), tmp_path / "fixed")
    assert fixed["stages"]["mixed"]["steps"] == 6


def test_synthetic_only_and_volume_subset(tmp_path, synthetic_dir):
    metrics = train(tiny(strategy="synthetic", synthetic=str(synthetic_dir), synthetic_per_class=2), tmp_path / "run")
    assert metrics["num_train_synthetic"] == 20 and list(metrics["stages"]) == ["synthetic"]
    with pytest.raises(UserError, match="more than the synthetic folder has"):
        train(tiny(strategy="synthetic", synthetic=str(synthetic_dir), synthetic_per_class=9), tmp_path / "run2")


def test_strategies_that_need_synthetic_images_say_so(tmp_path):
    with pytest.raises(UserError, match="needs --synthetic"):
        train(tiny(strategy="bridged"), tmp_path / "run")


def test_unknown_strategy(tmp_path):
    with pytest.raises(UserError, match="unknown strategy 'bridge'.*bridged"):
        train(tiny(strategy="bridge"), tmp_path / "run")


def test_existing_run_folder_is_never_silently_overwritten(tmp_path):
    train(tiny(), tmp_path / "run")
    with pytest.raises(UserError, match="not empty"):
        train(tiny(), tmp_path / "run")
    with pytest.raises(UserError, match="different config"):
        train(tiny(seed=3), tmp_path / "run", resume=True)
    train(tiny(seed=3), tmp_path / "run", overwrite=True)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["seed"] == 3


@pytest.mark.parametrize("pipeline", ["memory", "loader"])
def test_resume_after_interruption_gives_the_same_weights(tmp_path, synthetic_dir, monkeypatch, pipeline):
    cfg = tiny(strategy="bridged", synthetic=str(synthetic_dir), real=StageConfig(steps=9, batch_size=16, warmup_steps=1),
               checkpoint_every=3, pipeline=pipeline)
    reference = train(cfg, tmp_path / "straight")

    calls = {"n": 0}
    original = loop_module.save_checkpoint

    def crash_after_second_checkpoint(*args, **kwargs):
        original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:  # stage 1 checkpoint at 3, then stage 2 checkpoint at 3
            raise KeyboardInterrupt

    monkeypatch.setattr(loop_module, "save_checkpoint", crash_after_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "resumed")
    monkeypatch.setattr(loop_module, "save_checkpoint", original)
    assert (tmp_path / "resumed" / "checkpoints" / "real.pt").exists()
    resumed = train(cfg, tmp_path / "resumed", resume=True)
    assert resumed["stages"]["real"]["resumed_from_step"] == 3
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["top1"] == reference["top1"]
    assert not (tmp_path / "resumed" / "checkpoints" / "real.pt").exists()


def test_invalid_hyperparameters_are_one_line_errors():
    with pytest.raises(UserError, match="even batch size"):
        tiny(synthetic_stage=StageConfig(batch_size=15, mixup=True)).resolve(input_size=32)
    with pytest.raises(UserError, match="real-fraction"):
        tiny(real_fraction=1.5).resolve(input_size=32)
    with pytest.raises(UserError, match="unknown train config keys bogus"):
        TrainConfig.from_dict({"bogus": 1})


def test_trackers_are_optional_and_checked(monkeypatch):
    from synthbridge.training import resolve_trackers, trackers

    def installed(*names):  # accelerate's availability checks, as if only `names` were installed
        monkeypatch.setattr(trackers, "is_tensorboard_available", lambda: "tensorboard" in names)
        monkeypatch.setattr(trackers, "TRACKERS", {name: (package, lambda name=name: name in names)
                                                   for name, (package, _) in trackers.TRACKERS.items()})

    installed()
    assert resolve_trackers("auto") == [] and resolve_trackers("none") == []
    with pytest.raises(UserError, match="needs the 'wandb' package"):
        resolve_trackers("wandb")
    with pytest.raises(UserError, match="unknown tracker 'comet'"):
        resolve_trackers("comet")
    installed("tensorboard")
    assert resolve_trackers("auto") == ["tensorboard"]
    assert resolve_trackers("tensorboard") == ["tensorboard"]
    with pytest.raises(UserError, match="needs the 'mlflow' package"):
        resolve_trackers("tensorboard,mlflow")


def test_a_tracker_writing_into_the_run_folder_starts_after_the_folder_is_prepared(tmp_path, monkeypatch):
    """TensorBoard (the `auto` tracker where installed, as on GPU machines) writes into the run folder when it
    starts: started before the folder check, it made every fresh run 'not empty'."""
    from accelerate.tracking import GeneralTracker

    from synthbridge.training import trackers

    class FolderTracker(GeneralTracker):
        name, requires_logging_directory, main_process_only = "folder", False, True

        def __init__(self, folder):
            super().__init__()
            self.folder = folder

        @property
        def tracker(self):
            return self

        def store_init_configuration(self, values: dict):
            (self.folder / "tracker-config.json").write_text(json.dumps(values))

        def log(self, values: dict, step: int | None = None, **kwargs):
            with open(self.folder / "tracker-log.jsonl", "a") as handle:
                handle.write(json.dumps({"step": step, **values}) + "\n")

    out = tmp_path / "run"
    monkeypatch.setattr(trackers, "resolve_trackers", lambda report_to: [FolderTracker(out)])
    train(tiny(), out)
    assert json.loads((out / "tracker-config.json").read_text())["strategy"] == "real"
    logged = [json.loads(line) for line in (out / "tracker-log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in logged if "real/loss" in entry] == [0]  # steps 0, 10, ...: 6 steps log once
    assert (out / "metrics.json").is_file()


def test_a_run_after_another_accelerator_in_the_process_trains_in_its_own_precision(tmp_path):
    """accelerate fixes the mixed precision at a process's first Accelerator: an analysis that made one first (as
    LEEP does) left a GPU's bf16 runs failing with 'AcceleratorState has already been initialized'."""
    from accelerate import Accelerator

    from synthbridge.transfer import _leep

    Accelerator()  # what an analysis made first: precision no
    metrics = train(tiny(mixed_precision="bf16"), tmp_path / "bf16")
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["config"]["mixed_precision"] == "bf16"
    assert Accelerator().mixed_precision == "bf16" and metrics["top1"] > 0
    # LEEP after a bf16 run is computed in fp32, as in a fresh process
    from synthbridge.models import create_model

    torch.manual_seed(0)
    network = create_model("mini_resnet", 10, pretrained=False)
    after_bf16 = _leep(network, "digits", None)
    assert Accelerator().mixed_precision == "no"
    assert _leep(network, "digits", None) == after_bf16
    train(tiny(mixed_precision="bf16"), tmp_path / "again")  # and back to bf16, in the same process
    assert Accelerator().mixed_precision == "bf16"


def test_lr_scaling_follows_the_global_batch():
    cfg = tiny(lr_scale="linear", lr_base_size=32, real=StageConfig(lr=1e-3, batch_size=64)).resolve(input_size=32)
    assert cfg.real.lr == pytest.approx(2e-3)
    cfg = tiny(lr_scale="sqrt", lr_base_size=16, real=StageConfig(lr=1e-3, batch_size=64)).resolve(input_size=32)
    assert cfg.real.lr == pytest.approx(2e-3)


def test_a_batch_never_exceeds_the_stage_images(tmp_path, synthetic_dir):
    # 2 shots x 10 classes = 20 images: batches of 20 (as a DataLoader without drop_last), not 64 with repeats;
    # under mixup an even size; stages drawing fixed counts from two sources keep their counts
    from synthbridge.data import load_synthetic
    from synthbridge.training import STRATEGIES

    real = load_dataset("digits", shots=2).train
    synthetic = load_synthetic(synthetic_dir, DIGITS)  # 40 images
    cfg = tiny(strategy="bridged", real=StageConfig(steps=6, batch_size=64, warmup_steps=1),
               synthetic_stage=StageConfig(steps=4, batch_size=64, mixup=True, warmup_steps=1)).resolve(input_size=32)
    stages = STRATEGIES.get(cfg.strategy).plan(cfg, real, synthetic)
    assert [(s.name, s.per_batch, s.config.batch_size) for s in stages] == [("synthetic", [40], 40), ("real", [20], 20)]
    from synthbridge.training.strategies import Stage, fit_batch

    mixup = StageConfig(steps=6, batch_size=64, mixup=True)
    assert fit_batch(Stage("synthetic", [list(range(29))], [64], mixup)).per_batch == [28]  # mixup pairs images
    assert fit_batch(Stage("synthetic", [list(range(100))], [64], mixup)).per_batch == [64]  # large sets unchanged
    mixed_cfg = tiny(strategy="mixed", real_fraction=0.25, real=StageConfig(steps=6, batch_size=64, warmup_steps=1))
    fixed = STRATEGIES.get("mixed").plan(mixed_cfg.resolve(input_size=32), real, synthetic)
    assert fixed[0].per_batch == [16, 48]
    metrics = train(tiny(strategy="real", shots=2, real=StageConfig(steps=3, batch_size=64, warmup_steps=1)), tmp_path / "run")
    assert metrics["stages"]["real"]["batch_size"] == 20 and metrics["stages"]["real"]["num_images"] == 20


def test_the_defaults_profile_follows_the_input_and_image_sizes_and_is_recorded(tmp_path):
    from synthbridge.models import input_size

    assert input_size("mini_resnet") == 32 and input_size("resnet18") == 224
    small = TrainConfig(model="resnet18").resolve(input_size=224, image_size=32)  # 32-pixel images, a photo model
    photos = TrainConfig(model="resnet18").resolve(input_size=224, image_size=96)
    assert (small.profile, small.real.steps, small.real.augment) == ("embedded", 200, "light")
    assert (photos.profile, photos.real.epochs, photos.real.augment) == ("full", 30, "timm")
    forced = TrainConfig(model="mini_resnet", profile="full").resolve(input_size=32, image_size=8)
    from synthbridge.profiles import default_num_workers

    assert forced.profile == "full" and forced.num_workers == default_num_workers("full")
    with pytest.raises(UserError, match="unknown profile 'tiny'"):
        TrainConfig(profile="tiny").resolve(input_size=32)
    train(tiny(), tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["profile"] == "embedded"


def test_a_sample_seeded_on_the_cpu_alone_is_augmented_as_with_every_generator_seeded():
    import random

    import numpy as np

    from synthbridge.seeding import seed_cpu
    from synthbridge.training.loop import make_transform

    image = load_dataset("digits").train[0][0]
    transform = make_transform({"input_size": (3, 32, 32), "interpolation": "bilinear", "mean": (0.5,) * 3,
                                "std": (0.5,) * 3, "crop_pct": 1.0}, "light", train=True)
    for seed in (0, 1, 2**40 + 7):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)  # every generator, accelerators' included
        everything = transform(image)
        seed_cpu(seed)
        cpu = transform(image)
        assert torch.equal(everything, cpu)
    assert not torch.equal(cpu, transform(image))  # and the augmentation does draw: the next image differs


def test_the_pipeline_is_memory_for_small_images_and_recorded(tmp_path):
    metrics = train(tiny(), tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["pipeline"] == "memory"
    assert TrainConfig(pipeline="auto").resolve(input_size=224, image_size=500).pipeline == "loader"
    # both pipelines run timm's transforms: a model trained either way reaches about the same accuracy
    loader = train(tiny(pipeline="loader"), tmp_path / "loader")
    assert abs(metrics["top1"] - loader["top1"]) < 15
    with pytest.raises(UserError, match="--pipeline must be one of"):
        tiny(pipeline="gpu").resolve()


# --- input size, weights kept, workers, unreadable images (issue 14) ---------------------------------------------

def test_input_size_builds_the_model_for_it_and_resamples_position_embeddings(tmp_path):
    from safetensors.torch import save_file
    from timm.layers import resample_abs_pos_embed

    from synthbridge.models import create_model, data_config

    # a CNN runs at any size: only its data config changes; a ViT is built for the size (6x6 patches at 96 px)
    assert data_config(create_model("resnet18", 3, pretrained=False, input_size=96))["input_size"] == (3, 96, 96)
    assert data_config(create_model("resnet18", 3, pretrained=False))["input_size"] == (3, 224, 224)
    vit = create_model("vit_tiny_patch16_224", 3, pretrained=False, input_size=96)
    assert vit.pos_embed.shape == (1, 1 + 36, 192) and data_config(vit)["input_size"] == (3, 96, 96)
    assert vit(torch.zeros(1, 3, 96, 96)).shape == (1, 3)
    # local weights made at 224 px, loaded at 96: timm's resample_abs_pos_embed, the other weights as they were
    torch.manual_seed(0)
    source = create_model("vit_tiny_patch16_224", 5, pretrained=False)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "vit224.safetensors"))
    small = create_model("vit_tiny_patch16_224", 5, checkpoint=tmp_path / "vit224.safetensors", input_size=96)
    expected = resample_abs_pos_embed(source.pos_embed.detach(), new_size=[6, 6], num_prefix_tokens=1)
    assert torch.allclose(small.pos_embed, expected)
    assert torch.equal(small.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    with pytest.raises(UserError, match="--input-size must be a whole number > 0"):
        TrainConfig(input_size=0).resolve(input_size=32)


def test_train_records_and_uses_the_input_size_and_picks_the_profile_from_it(tmp_path):
    from synthbridge.cli import main

    # the embedded mini_vit (32 px weights, 8x8 tokens) at 64 px: 16x16 tokens, its shipped weights resampled
    code = main(["train", "--dataset", "digits", "--shots", "2", "--model", "mini_vit", "--input-size", "64",
                 "--real-steps", "1", "--real-batch-size", "8", "--out", str(tmp_path / "vit64"), "--report-to", "none"])
    assert code == 0
    config = json.loads((tmp_path / "vit64" / "config.json").read_text())["config"]
    assert (config["input_size"], config["profile"]) == (64, "embedded")  # 64 px is still a small input
    assert load_file(tmp_path / "vit64" / "model.safetensors")["pos_embed"].shape == (1, 256, 96)
    # the profile follows the size used: resnet18 (224 px by default) on 32-pixel images is embedded either way,
    # but at --input-size 96 on 96-pixel images it is full, and 64 px makes it embedded
    assert TrainConfig(model="resnet18", input_size=96).resolve(input_size=224, image_size=96).profile == "full"
    assert TrainConfig(model="resnet18", input_size=64).resolve(input_size=224, image_size=96).profile == "embedded"
    assert TrainConfig(model="resnet18").resolve(input_size=224, image_size=96).input_size == 224  # recorded


@pytest.mark.parametrize("keep, stage_weights, final", [("stages", True, True), ("final", False, True),
                                                        ("none", False, False)])
def test_keep_drops_the_weights_a_finished_run_does_not_keep(tmp_path, synthetic_dir, keep, stage_weights, final):
    metrics = train(tiny(strategy="bridged", synthetic=str(synthetic_dir), keep=keep), tmp_path / "run")
    run = tmp_path / "run"
    assert metrics["kept"] == keep and json.loads((run / "config.json").read_text())["config"]["keep"] == keep
    assert (run / "stages" / "synthetic" / "model.safetensors").exists() == stage_weights
    assert (run / "stages" / "real" / "model.safetensors").exists() == stage_weights
    assert (run / "model.safetensors").exists() == final
    assert (run / "metrics.json").exists() and (run / "stages" / "synthetic" / "stage.json").exists()


def test_keep_defaults_by_profile_and_stage_weights_resume_until_the_run_finishes(tmp_path, synthetic_dir, monkeypatch):
    # keep follows the weights' size, not the pixels': a small backbone keeps its stages at any size, resnet18
    # (45 MiB) keeps the final weights even at 64 px (which picks the embedded profile)
    from synthbridge.models import weights_mib

    assert TrainConfig().resolve(input_size=32, weights_mib=weights_mib("mini_resnet")).keep == "stages"
    assert TrainConfig().resolve(input_size=224, image_size=500, weights_mib=weights_mib("mini_resnet")).keep == "stages"
    assert TrainConfig(input_size=64).resolve(weights_mib=weights_mib("resnet18")).keep == "final"
    assert TrainConfig(input_size=64).resolve().profile == "embedded"  # (the profile still follows the pixels)
    assert TrainConfig().resolve(input_size=32).keep == "final"  # a model of unknown size: the final weights only
    cfg = tiny(strategy="bridged", synthetic=str(synthetic_dir), keep="final")
    original, calls = loop_module.train_stage, []

    def interrupted_in_stage_two(model, sources, per_batch, num_classes, stage, name, *args, **kwargs):
        calls.append(name)
        if name == "real" and len(calls) == 2:
            raise KeyboardInterrupt
        return original(model, sources, per_batch, num_classes, stage, name, *args, **kwargs)

    monkeypatch.setattr("synthbridge.training.trainer.train_stage", interrupted_in_stage_two)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "stages" / "synthetic" / "model.safetensors").exists()  # kept while the run runs
    train(cfg, tmp_path / "run", resume=True)
    assert calls == ["synthetic", "real", "real"]  # the finished stage 1 was loaded, not trained again
    assert not (tmp_path / "run" / "stages" / "synthetic" / "model.safetensors").exists()


@pytest.mark.parametrize("cores, workers", [(1, 0), (2, 1), (3, 2), (16, 4)])
def test_num_workers_default_follows_the_available_cores(monkeypatch, cores, workers):
    monkeypatch.setattr("synthbridge.profiles.available_cores", lambda: cores)
    assert TrainConfig(profile="full").resolve(input_size=224).num_workers == workers
    assert TrainConfig(profile="embedded").resolve(input_size=224).num_workers == 0
    assert TrainConfig(profile="full", num_workers=3).resolve(input_size=224).num_workers == 3


def test_an_unreadable_synthetic_image_is_one_log_line_and_not_counted(tmp_path, caplog):
    import warnings

    from synthbridge.data import load_synthetic

    folder = write_synthetic_folder(tmp_path / "syn", DIGITS, per_class=2)
    (folder / "3" / "00001.png").write_bytes(b"not a png")
    # counted without training on it (as when DataLoader workers decode): open and verify only
    fresh = load_synthetic(str(folder), DIGITS)
    assert fresh.readable_count() == 19 and fresh.subset(range(6, 8)).readable_count() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Python warning
        for pipeline in ("memory", "loader"):
            caplog.clear()
            metrics = train(tiny(strategy="bridged", synthetic=str(folder), pipeline=pipeline), tmp_path / pipeline)
            assert metrics["num_train_synthetic"] == 19
    lines = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert lines and all("\n" not in line and "00001.png" in line and "1 skipped so far" in line for line in lines)


def test_out_naming_a_file_and_a_one_class_dataset_are_one_line_each(tmp_path):
    from helpers import write_imagefolder

    existing = tmp_path / "a-file.txt"
    existing.write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(UserError, match="names a file, not a folder"):
            train(tiny(), existing, overwrite=overwrite)
    assert existing.read_text() == "mine"  # and it is left as it was
    one = write_imagefolder(tmp_path / "one", ["cat"], per_class=4, size=16)
    with pytest.raises(UserError, match="has 1 class .cat.; a classifier needs at least two"):
        train(tiny(dataset=f"imagefolder:{one}", shots=None), tmp_path / "one-run")
    assert not (tmp_path / "one-run").exists()  # found before anything was made


@pytest.mark.slow
def test_a_bad_file_is_said_once_when_dataloader_workers_read_the_images(tmp_path):
    """The loader pipeline's workers decode in their own processes: the files are checked once in the training
    process first, so each bad file is one log line, not one from a worker and another from the count."""
    import subprocess
    import sys

    from helpers import write_imagefolder

    folder = write_imagefolder(tmp_path / "photos", ["a", "b"], per_class=4, size=80)
    (folder / "train" / "a" / "corrupt.png").write_bytes(b"not a png")
    (folder / "train" / "b" / "empty.png").write_bytes(b"")
    done = subprocess.run([sys.executable, "-m", "synthbridge", "train", "--dataset", f"imagefolder:{folder}",
                           "--model", "resnet18", "--no-pretrained", "--input-size", "80", "--pipeline", "loader",
                           "--num-workers", "1", "--real-steps", "2", "--report-to", "none", "--no-progress",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    said = [line for line in done.stderr.splitlines() if "skipping unreadable image" in line]
    assert len(said) == 2 and {"corrupt.png", "empty.png"} == {line.split("/")[-1].split(" ")[0] for line in said}


def test_a_run_folder_of_another_format_is_one_line(tmp_path):
    """A run from before folder formats (no "format" in config.json) is not resumed: one line, nothing changed."""
    train(tiny(), tmp_path / "run")
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    del record["format"]
    (tmp_path / "run" / "config.json").write_text(json.dumps(record))
    with pytest.raises(UserError, match="is a training run in folder format 0, made by another synthbridge version"):
        train(tiny(), tmp_path / "run", resume=True)
