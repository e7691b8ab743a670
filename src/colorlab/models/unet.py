"""`UNet`: an encoder–decoder with skip connections at every scale, its encoder trained from
scratch or a torchvision backbone (`colorlab.models.backbone.Backbone`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorlab.errors import OptionError
from colorlab.models.backbone import Backbone, FreezeSpec
from colorlab.models.colorizer import ColorizerBase, HeadSpec, SpreadSpec, input_channels
from colorlab.models.parts import NormalizeL

#: ``model.upsampling``: interpolate ×2 then a 3×3 conv, or a 1×1 conv to 4C + pixel shuffle.
UPSAMPLING = ("nearest", "bilinear", "pixel_shuffle")
#: Widths of the from-scratch encoder's stages at strides 1, 2, 4, 8, 16.
SCRATCH_WIDTHS = (32, 64, 128, 256, 512)


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3×3 conv (``same`` padding, no bias) + batch norm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ScratchEncoder(nn.Module):
    """Two conv-BN-ReLU per stage, a stride-2 conv between stages: L (B×``in_channels``×H×W,
    L in 0..100 then any hint channels) -> maps at strides 1, 2, 4, 8, 16 (B×widths[i]×H/s×W/s)."""

    def __init__(self, widths: Sequence[int] = SCRATCH_WIDTHS, in_channels: int = 1) -> None:
        super().__init__()
        channels = (in_channels, *widths)
        self.stages = nn.ModuleList(
            nn.Sequential(
                *([NormalizeL()] if i == 0 else []),
                conv_bn_relu(channels[i], channels[i + 1], stride=1 if i == 0 else 2),
                conv_bn_relu(channels[i + 1], channels[i + 1]),
            )
            for i in range(len(widths))
        )
        self.channels = list(widths)
        self.strides = [2**i for i in range(len(widths))]

    def forward(self, L: Tensor) -> list[Tensor]:
        maps, x = [], L
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps


class Up(nn.Module):
    """Upsample B×C×h×w to a skip's size with ``out_channels`` channels (`UPSAMPLING`)."""

    def __init__(self, in_channels: int, out_channels: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode == "pixel_shuffle":
            self.conv = nn.Sequential(
                nn.Conv2d(in_channels, 4 * out_channels, 1), nn.PixelShuffle(2), nn.ReLU(True)
            )
        else:
            self.conv = conv_bn_relu(in_channels, out_channels)

    def forward(self, x: Tensor, size: torch.Size) -> Tensor:
        if self.mode == "pixel_shuffle":
            x = self.conv(x)
            return x if x.shape[-2:] == size else F.interpolate(x, size=size, mode="nearest")
        align = {"align_corners": False} if self.mode == "bilinear" else {}
        return self.conv(F.interpolate(x, size=size, mode=self.mode, **align))


class UNet(ColorizerBase):
    """Encoder maps at every stride, decoded from the deepest: at each scale upsample, concat
    the encoder's map of that scale, two conv-BN-ReLU; then the head at full resolution.

    With a backbone (whose first map is at stride 2 or 4), a small full-resolution stem on L
    gives the last skip, so that colour edges follow the photo's edges.
    """

    def __init__(
        self,
        encoder: ScratchEncoder | Backbone,
        upsampling: str = "nearest",
        native_size: int = 256,
        head: HeadSpec = None,
        hints: bool = False,
        hint_spread: SpreadSpec = None,
    ) -> None:
        if upsampling not in UPSAMPLING:
            raise OptionError("upsampling", upsampling, "use one of " + ", ".join(UPSAMPLING))
        channels, strides = list(encoder.channels), list(encoder.strides)
        stem = None
        if strides[0] != 1:
            stem = nn.Sequential(
                NormalizeL(),
                conv_bn_relu(input_channels(hints, hint_spread), 32),
                conv_bn_relu(32, 32),
            )
            channels, strides = [32, *channels], [1, *strides]
        widths = [max(32, min(256, c)) for c in channels]
        super().__init__(
            widths[0], strides[-1], native_size, head, hints=hints, hint_spread=hint_spread
        )
        self.encoder = encoder
        self.stem = stem
        self.ups = nn.ModuleList()
        self.merges = nn.ModuleList()
        below = channels[-1]
        for level in range(len(channels) - 2, -1, -1):
            width = widths[level]
            self.ups.append(Up(below, width, upsampling))
            self.merges.append(
                nn.Sequential(
                    conv_bn_relu(width + channels[level], width), conv_bn_relu(width, width)
                )
            )
            below = width

    def features(self, L: Tensor) -> Tensor:
        skips = self.encoder(L)
        if self.stem is not None:
            skips = [self.stem(L), *skips]
        x = skips[-1]
        for up, merge, skip in zip(self.ups, self.merges, reversed(skips[:-1]), strict=True):
            x = up(x, skip.shape[-2:])
            x = merge(torch.cat([x, skip.to(x.dtype)], dim=1))
        return x


def unet(
    backbone: str | None = None,
    pretrained: bool = True,
    freeze_backbone: FreezeSpec = True,
    upsampling: str = "nearest",
    native_size: int = 256,
    gray: str = "srgb",
    head: HeadSpec = None,
    hints: bool = False,
    hint_spread: SpreadSpec = None,
) -> UNet:
    """``model=unet``: from scratch (``backbone`` null, baseline-sized) or on a torchvision
    ``backbone`` (pretrained unless ``pretrained=false``; ``freeze_backbone`` as in
    `colorlab.models.backbone.freeze_schedule`); ``hints``: user colour hints in (the scratch
    encoder's or the stem's first conv; a backbone sees L alone; ``hint_spread``: and spread,
    `colorlab.models.hint_spread`)."""
    encoder: ScratchEncoder | Backbone = (
        ScratchEncoder(in_channels=input_channels(hints, hint_spread))
        if backbone is None
        else Backbone(backbone, pretrained, freeze_backbone, gray)
    )
    return UNet(encoder, upsampling, native_size, head, hints, hint_spread)
