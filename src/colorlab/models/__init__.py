"""Colorization networks: plain `nn.Module`s mapping L (B×1×H×W, 0..100) to a head's output
and, through `ColorizerBase.predict_ab`, to ab in (-1, 1)."""

from colorlab.models.backbone import Backbone
from colorlab.models.colorizer import (
    Colorizer,
    ColorizerBase,
    backbone_encoder,
    baseline,
    global_fusion,
    model_name,
)
from colorlab.models.unet import UNet, unet

__all__ = [
    "Backbone",
    "Colorizer",
    "ColorizerBase",
    "UNet",
    "backbone_encoder",
    "baseline",
    "global_fusion",
    "model_name",
    "unet",
]
