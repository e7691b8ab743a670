"""Colour maths: the one place where colorlab converts between RGB and CIELAB.

Conventions (the reference experiment's):
    rgb   B×3×H×W float in [0, 1] (sRGB)
    L     B×1×H×W float in [0, 100] (CIELAB lightness, D65 / 2°)
    ab    B×2×H×W float, CIELAB a*, b* divided by ``AB_SCALE`` (128), so in (-1, 1)
"""

from __future__ import annotations

import kornia.color
import torch
from torch import Tensor

#: CIELAB a*, b* are divided by this to give the model's target in (-1, 1).
AB_SCALE = 128.0


def rgb_to_l_ab(rgb: Tensor) -> tuple[Tensor, Tensor]:
    """Split sRGB into lightness and scaled chroma.

    Args:
        rgb: B×3×H×W (or 3×H×W) float in [0, 1].

    Returns:
        ``(L, ab)``: L in [0, 100] with one channel, ab = (a*, b*) / 128 with two.
    """
    lab = kornia.color.rgb_to_lab(rgb)
    return lab[..., :1, :, :], lab[..., 1:, :, :] / AB_SCALE


def to_rgb(L: Tensor, ab: Tensor) -> Tensor:
    """Merge lightness and scaled chroma back into sRGB.

    Args:
        L: B×1×H×W in [0, 100].
        ab: B×2×H×W, (a*, b*) / 128 (a model's prediction or a target).

    Returns:
        B×3×H×W float sRGB clipped to [0, 1].
    """
    lab = torch.cat([L, ab * AB_SCALE], dim=-3)
    return kornia.color.lab_to_rgb(lab.float(), clip=True)


def gray_rgb(L: Tensor) -> Tensor:
    """The grayscale picture of ``L`` (ab = 0) as B×3×H×W sRGB in [0, 1]."""
    return to_rgb(L, torch.zeros_like(L).expand(*L.shape[:-3], 2, *L.shape[-2:]))


def lab_batch(rgb_uint8: Tensor) -> dict[str, Tensor]:
    """Turn a uint8 RGB batch into the training dictionary, on whatever device it is.

    Args:
        rgb_uint8: B×3×H×W uint8.

    Returns:
        ``{"L": B×1×H×W in [0, 100], "ab": B×2×H×W in (-1, 1), "rgb": B×3×H×W in [0, 1]}``
    """
    rgb = rgb_uint8.float().div_(255.0)
    L, ab = rgb_to_l_ab(rgb)
    return {"L": L, "ab": ab, "rgb": rgb}
