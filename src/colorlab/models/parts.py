"""Building blocks of a `Colorizer`: convolutions, the baseline encoder, fusion, decoders
(the output heads are in `colorlab.models.heads`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor, nn

#: In a decoder layout, this entry means "upsample ×2 (nearest neighbour)".
UP = "up"


def conv_relu(
    in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3
) -> nn.Sequential:
    """Conv (``same`` padding) + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2),
        nn.ReLU(inplace=True),
    )


class NormalizeL(nn.Module):
    """L in [0, 100] -> [-1, 1]; hint channels after it (`ColorizerBase.network_input`) pass
    unchanged."""

    def forward(self, L: Tensor) -> Tensor:
        if L.shape[1] == 1:
            return L / 50.0 - 1.0
        return torch.cat([L[:, :1] / 50.0 - 1.0, L[:, 1:]], dim=1)


class Encoder(Protocol):
    """What `colorlab.models.Colorizer` asks of its encoder (`BaselineEncoder`, a
    `colorlab.models.Backbone`): L (B×1×H×W) -> B×``out_channels``×H/``downsample``×W/``downsample``."""

    @property
    def downsample(self) -> int: ...

    @property
    def out_channels(self) -> int: ...

    def __call__(self, L: Tensor) -> Any: ...


class BaselineEncoder(nn.Sequential):
    """The reference encoder: 8 conv 3×3 + ReLU, stride 2 in layers 1, 3 and 5, no pooling.

    B×``in_channels``×H×W (L in [0, 100], then any hint channels) -> B×``widths[-1]``×H/8×W/8.
    """

    #: The classic widths (Deep Koalarization's): the reference fixes only H/8×W/8 features.
    WIDTHS = (64, 128, 128, 256, 256, 512, 512, 256)
    downsample = 8

    def __init__(self, widths: Sequence[int] = WIDTHS, in_channels: int = 1) -> None:
        strides = (2, 1, 2, 1, 2, 1, 1, 1)
        channels = (in_channels, *widths)
        super().__init__(
            NormalizeL(),
            *(
                conv_relu(channels[i], channels[i + 1], stride=strides[i])
                for i in range(len(widths))
            ),
        )
        self.out_channels = widths[-1]


def fusion_layer(in_channels: int, out_channels: int = 256) -> nn.Sequential:
    """The fusion layer: one 1×1 conv, stride 1, ReLU."""
    return conv_relu(in_channels, out_channels, kernel_size=1)


class Decoder(nn.Sequential):
    """Convs 3×3 + ReLU and ×2 nearest upsamplings; the output head comes after it.

    Args:
        in_channels: channels of the fused features.
        layout: conv widths and `UP` marks, in order. The baseline's is
            ``(128, UP, 64, 64, UP, 32, UP)``: with its head's conv, the reference's 5 convs, ×8.

    B×in_channels×h×w -> B×``out_channels``×(h·upsample)×(w·upsample).
    """

    def __init__(self, in_channels: int, layout: Sequence[int | str]) -> None:
        layers: list[nn.Module] = []
        channels = in_channels
        for item in layout:
            if item == UP:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            else:
                layers.append(conv_relu(channels, int(item)))
                channels = int(item)
        super().__init__(*layers)
        self.out_channels = channels
        self.upsample = 2 ** sum(item == UP for item in layout)


def broadcast_concat(local: Tensor, global_vector: Tensor) -> Tensor:
    """Concatenate B×C×h×w features with a B×D vector repeated over h×w: B×(C+D)×h×w."""
    tiled = global_vector[:, :, None, None].expand(-1, -1, *local.shape[-2:])
    return torch.cat([local, tiled.to(local.dtype)], dim=1)
