"""The two tiny embedded backbones, registered with timm so `timm.create_model` builds them.

    import synthbridge.embedded.models, timm
    model = timm.create_model("mini_resnet", pretrained=True, num_classes=10)

Both are timm's own classes in small configurations, for 32x32 RGB input. Their pretrained weights
(a glyph source task without digits, see `synthbridge.embedded.backbones`) ship in
`synthbridge/embedded/assets/backbones/` and are rebuilt with `synthbridge build-backbones`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch.nn as nn
from timm.layers import HybridEmbed
from timm.models import build_model_with_cfg, register_model
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import VisionTransformer
from timm.models.vision_transformer_hybrid import ConvStem

BACKBONE_DIR = Path(__file__).resolve().parent / "assets" / "backbones"
EMBEDDED_MODELS = ("mini_resnet", "mini_vit")
IMAGE_SIZE = 32
NUM_SOURCE_CLASSES = 88  # length of synthbridge.embedded.glyphs.SOURCE_CLASSES; checked when weights are built


def weights_file(name: str) -> Path:
    return BACKBONE_DIR / f"{name}.safetensors"


def _cfg(name: str, classifier: str, first_conv: str) -> dict:
    return dict(file=str(weights_file(name)), num_classes=NUM_SOURCE_CLASSES, input_size=(3, IMAGE_SIZE, IMAGE_SIZE),
                pool_size=None, crop_pct=1.0, interpolation="bilinear", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                classifier=classifier, first_conv=first_conv, license="apache-2.0")


# timm's register_model reads pretrained configs from the module's `default_cfgs`.
default_cfgs = {
    "mini_resnet": _cfg("mini_resnet", "fc", "conv1"),
    "mini_vit": _cfg("mini_vit", "head", "patch_embed.backbone.0.conv"),
}


class MiniResNet(ResNet):
    """timm ResNet-10-like with widths 16..128 and no stem max-pool (32px input keeps 16x16 after the stem)."""

    def __init__(self, **kwargs):
        super().__init__(block=BasicBlock, layers=(1, 1, 1, 1), channels=(16, 32, 64, 128), stem_width=16, **kwargs)
        self.maxpool = nn.Identity()


@register_model
def mini_resnet(pretrained: bool = False, **kwargs) -> ResNet:
    """About 0.3 M parameters."""
    return build_model_with_cfg(MiniResNet, "mini_resnet", pretrained, **kwargs)


class MiniViT(VisionTransformer):
    """A ViT whose patch embedding is a small convolutional stem (32px -> 8x8 tokens), as in timm's
    hybrid ViTs ("early convolutions help transformers see better"): a plain 4x4-patch ViT this small
    barely learns the source task in a CPU budget. Width 96, depth 4, 3 heads, average-pooled tokens."""

    def __init__(self, **kwargs):
        stem = ConvStem(in_chans=kwargs.pop("in_chans", 3), depth=2, channels=(32, 64), stride=(2, 2))
        args = dict(img_size=IMAGE_SIZE, patch_size=1, embed_dim=96, depth=4, num_heads=3, mlp_ratio=2.0,
                    class_token=False, global_pool="avg", embed_layer=partial(HybridEmbed, backbone=stem))
        super().__init__(**dict(args, **kwargs))


@register_model
def mini_vit(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """About 0.34 M parameters."""
    return build_model_with_cfg(MiniViT, "mini_vit", pretrained, **kwargs)
