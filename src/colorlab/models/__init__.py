"""Colorization networks: plain `nn.Module`s mapping L (B×1×H×W, 0..100) to ab in (-1, 1)."""

from colorlab.models.colorizer import Colorizer, baseline, vgg16, vgg16_fusion

__all__ = ["Colorizer", "baseline", "vgg16", "vgg16_fusion"]
