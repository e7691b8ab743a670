"""The full-resolution merge: a photo's own lightness with the model's ab upsampled to it,
strip by strip, so that memory stays bounded whatever the photo's size.

Pictures are upright 8-bit sRGB Pillow images; L is 1×1×H×W in [0, 100] and ab 1×2×h×w in
(-1, 1) on the colorizer's device.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from colorlab.color import lab_batch, to_rgb
from colorlab.data.images import to_uint8_chw

#: Pixels per strip when merging at full resolution (bounds the float buffers to ~60 MB).
STRIP_PIXELS = 1_000_000


def lightness_rows(picture: Image.Image, r0: int, r1: int, device: torch.device) -> Tensor:
    """L of rows r0..r1 of a picture: 1×1×(r1−r0)×W on ``device``."""
    strip = picture.crop((0, r0, picture.width, r1))
    return lab_batch(to_uint8_chw(strip).to(device).unsqueeze(0))["L"]


def resize(L: Tensor, height: int | None, width: int | None) -> Tensor:
    """Antialiased bilinear resize of B×1×H×W along one axis (None keeps that axis)."""
    size = (height or L.shape[-2], width or L.shape[-1])
    return F.interpolate(L, size=size, mode="bilinear", antialias=True, align_corners=False)


def small_lightness(picture: Image.Image, size: int, device: torch.device) -> Tensor:
    """The picture's L at the model's size (1×1×s×s): its full-size L resized with
    antialiasing, computed strip by strip (the resize is separable: each strip is narrowed to
    s columns, then the H×s stack is resized to s rows; no full-size float buffer)."""
    rows = max(1, STRIP_PIXELS // picture.width)
    narrow = [
        resize(lightness_rows(picture, r0, min(picture.height, r0 + rows), device), None, size)
        for r0 in range(0, picture.height, rows)
    ]
    return resize(torch.cat(narrow, dim=-2), size, None)


def upsample_rows(ab_wide: Tensor, r0: int, r1: int, height: int) -> Tensor:
    """Rows r0..r1 of ``ab_wide`` (B×2×h×W) bilinearly upsampled to ``height`` rows, exactly as
    `torch.nn.functional.interpolate` (``align_corners=False``) computes them."""
    h = ab_wide.shape[-2]
    source = ((torch.arange(r0, r1, device=ab_wide.device) + 0.5) * (h / height) - 0.5).clamp(min=0)
    below = source.floor().long().clamp(max=h - 1)
    above = (below + 1).clamp(max=h - 1)
    weight = (source - below).view(1, 1, -1, 1)
    return ab_wide[..., below, :] * (1 - weight) + ab_wide[..., above, :] * weight


def merge(
    ab_small: Tensor, size: tuple[int, int], lightness: Callable[[int, int], Tensor]
) -> Image.Image:
    """Full-size sRGB from model-size ab (1×2×s×s) and ``lightness(r0, r1)`` (L of rows r0..r1,
    1×1×n×W): equal to ``to_rgb(L, interpolate(ab_small, size))`` but computed in strips of
    rows, so that no full-size float copy of ab, Lab or RGB ever exists."""
    height, width = size
    ab_small = ab_small.float()
    # Bilinear upsampling is separable: columns now (2×s×W, small), rows per strip.
    ab_wide = F.interpolate(
        ab_small, size=(ab_small.shape[-2], width), mode="bilinear", align_corners=False
    )
    out = Image.new("RGB", (width, height))
    rows = max(1, STRIP_PIXELS // width)
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        ab = upsample_rows(ab_wide, r0, r1, height)
        rgb = to_rgb(lightness(r0, r1).to(ab.device, torch.float32), ab)[0]
        strip = (rgb.clamp(0, 1) * 255 + 0.5).byte().permute(1, 2, 0).cpu().numpy()
        out.paste(Image.fromarray(np.ascontiguousarray(strip), mode="RGB"), (0, r0))
    return out


def return_freed_memory_to_the_os() -> None:
    """Make glibc hand large freed buffers back to the OS (Linux; elsewhere nothing).

    glibc serves buffers of up to 32 MB from its heap once one has been freed (its mmap
    threshold rises), and keeps them: strip-wise colorizing of a 100-megapixel photo then
    holds ~1 GB it no longer uses. Fixing the threshold at 1 MB keeps the peak at what the
    photo needs. `colorlab.colorize` calls this; it is process-wide.
    """
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 1 << 20)


_M_MMAP_THRESHOLD = -3
