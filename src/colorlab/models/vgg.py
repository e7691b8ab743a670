"""Frozen torchvision VGG-16 on an L input: as an encoder or as a global feature vector."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import VGG16_Weights
from torchvision.models.vgg import cfgs, make_layers

from colorlab.errors import ColorlabError

WEIGHTS = VGG16_Weights.IMAGENET1K_V1
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def weights_path() -> Path:
    """Where torchvision keeps the ImageNet VGG-16 file: $TORCH_HOME/hub/checkpoints/."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(WEIGHTS.url)


def load_imagenet_features() -> dict[str, Tensor]:
    """The ``features.*`` tensors of torchvision's VGG-16 ImageNet weights, keys without prefix.

    Uses torchvision's own loader (the cached file, else a download).

    Raises:
        ColorlabError: the file is neither cached nor downloadable, or is not VGG-16's.
    """
    try:
        state = WEIGHTS.get_state_dict(progress=True)
    except Exception as error:  # URLError, socket and SSL errors, a corrupt cached file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ColorlabError(
            f"VGG-16 ImageNet weights unavailable ({reason}): put vgg16-397923af.pth at "
            f"$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth (here {weights_path()}) "
            f"or train without them with model.pretrained=false"
        ) from error
    features = {
        k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")
    }
    if not features:
        raise ColorlabError(
            f"{weights_path()} holds no VGG-16 'features.*' weights; delete it and retry"
        )
    return features


class FrozenVGG16(nn.Module):
    """VGG-16 convolutions through pool5, frozen: never trained, always in eval mode.

    L (B×1×H×W in [0, 100]) is copied into the three input channels as L/100 and
    ImageNet-normalised. Output: B×512×H/32×W/32.
    """

    out_channels = 512
    downsample = 32

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        self.features = make_layers(cfgs["D"], batch_norm=False)
        if pretrained:
            self.features.load_state_dict(load_imagenet_features())
        self.register_buffer(
            "mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenVGG16:
        return super().train(False)

    def forward(self, L: Tensor) -> Tensor:
        rgb = (L / 100.0).expand(-1, 3, -1, -1)
        with torch.no_grad():
            return self.features((rgb - self.mean) / self.std)


class GlobalVGG16(FrozenVGG16):
    """`FrozenVGG16` averaged over space: one B×512 feature vector per image."""

    def forward(self, L: Tensor) -> Tensor:
        return super().forward(L).mean(dim=(-2, -1))
