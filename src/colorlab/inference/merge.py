"""The full-resolution merge: a photo's own lightness with the model's ab upsampled to it.

A photo's lightness is computed once (`Lightness`: from its 8-bit sRGB through lookup tables,
`colorlab.color.srgb8`), shrunk for the model's input and kept for the merge; the merge
upsamples the model's ab bilinearly and converts Lab to 8-bit sRGB in one fused pass per
pixel. Very large photos are worked through in strips of rows, so that memory stays bounded
whatever their size. On the CPU the passes are numba kernels (they release the GIL, so that
threads colorize photos in parallel); on a GPU they run there.

Pictures are upright 8-bit sRGB (Pillow RGB images or H×W×3 uint8 arrays); L is in [0, 100]
and ab in (-1, 1) as everywhere in colorlab.
"""

from __future__ import annotations

import contextlib
import ctypes

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from colorlab.color.srgb8 import chroma_offsets, lab_rows_to_srgb8, lightness_f, lightness_from_f
from colorlab.errors import check_choice

#: Pixels per strip of a large photo (bounds the float buffers to a few tens of MB).
STRIP_PIXELS = 1_000_000
#: A photo's lightness is kept for the merge up to this size (4 bytes a pixel); larger ones
#: compute it again strip by strip.
KEEP_PIXELS = 16_000_000


def resize(L: Tensor, height: int | None, width: int | None) -> Tensor:
    """Antialiased bilinear resize of B×1×H×W along one axis (None keeps that axis)."""
    size = (height or L.shape[-2], width or L.shape[-1])
    return F.interpolate(L, size=size, mode="bilinear", antialias=True, align_corners=False)


class Lightness:
    """The CIELAB lightness of one picture, computed once.

    Args:
        picture: a Pillow RGB image or an H×W×3 uint8 array (a video frame).
        device: where the arithmetic runs (the colorizer's device).
        kernels: ``numba`` (CPU kernels) or ``torch`` (tensor ops on ``device``); default
            numba on the CPU, torch elsewhere.
    """

    def __init__(
        self, picture: Image.Image | np.ndarray, device: torch.device, kernels: str | None = None
    ):
        self.picture, self.device = picture, torch.device(device)
        if kernels is not None:
            check_choice("kernels", kernels, ("numba", "torch"))
        self.kernels = kernels or ("numba" if self.device.type == "cpu" else "torch")
        if isinstance(picture, Image.Image):
            self.height, self.width = picture.height, picture.width
        else:
            self.height, self.width = picture.shape[:2]
        self._kept: np.ndarray | Tensor | None = None
        self._small: dict[int, Tensor] = {}

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)."""
        return self.height, self.width

    def strip_rows(self) -> int:
        """Rows in a strip of the merge: the whole picture when its ``f`` is kept (the CPU
        merge needs no full-size float buffer), else about `STRIP_PIXELS`."""
        if self._kept is not None and self.kernels == "numba":
            return self.height
        return max(1, STRIP_PIXELS // self.width)

    def _pixels(self, r0: int, r1: int) -> np.ndarray | Tensor:
        if isinstance(self.picture, Image.Image):
            whole = r0 == 0 and r1 == self.height
            rows = np.asarray(self.picture if whole else self.picture.crop((0, r0, self.width, r1)))
        else:
            rows = self.picture[r0:r1]
        if self.kernels == "torch":
            return torch.from_numpy(np.array(rows, copy=not rows.flags.writeable)).to(self.device)
        return rows

    def f_rows(self, r0: int, r1: int) -> np.ndarray | Tensor:
        """``f`` of rows r0..r1 (see `colorlab.color.srgb8`): (r1−r0)×W float32, numpy on the
        CPU, a tensor on the device otherwise."""
        if self._kept is not None:
            return self._kept[r0:r1]
        return lightness_f(self._pixels(r0, r1))

    def small(self, size: int) -> Tensor:
        """L at the model's size: 1×1×s×s on the device, the full-size L resized with
        antialiasing. A picture above `KEEP_PIXELS` goes strip by strip (the resize is
        separable: each strip is narrowed to s columns, then the H×s stack is resized to s
        rows); a smaller one keeps its ``f`` for the merge."""
        if size in self._small:
            return self._small[size]
        if self._kept is None and self.height * self.width <= KEEP_PIXELS:
            self._kept = lightness_f(self._pixels(0, self.height))
        rows = self.height if self._kept is not None else max(1, STRIP_PIXELS // self.width)
        narrow = [
            resize(
                torch.as_tensor(self.f_rows(r0, min(self.height, r0 + rows)), device=self.device)[
                    None, None
                ],
                None,
                size,
            )
            for r0 in range(0, self.height, rows)
        ]
        # L is affine in f and the resize's weights sum to 1: resize f, then take L.
        self._small[size] = lightness_from_f(resize(torch.cat(narrow, dim=-2), size, None))
        return self._small[size]


def upsampled_rows(r0: int, r1: int, height: int, h: int) -> tuple[np.ndarray, ...]:
    """For output rows r0..r1 of a bilinear upsampling from ``h`` rows to ``height``
    (``align_corners=False``, as `torch.nn.functional.interpolate`): the source rows below
    and above each one and the weight of the upper one."""
    source = np.clip((np.arange(r0, r1) + 0.5) * (h / height) - 0.5, 0, None)
    below = np.minimum(np.floor(source).astype(np.int64), h - 1)
    above = np.minimum(below + 1, h - 1)
    return below, above, (source - below).astype(np.float32)


def merge(ab_small: Tensor, lightness: Lightness) -> Image.Image:
    """Full-size sRGB from model-size ab (1×2×s×s) and a picture's `Lightness`: equal within
    one 8-bit level to ``to_rgb(L, interpolate(ab_small, size))``, without a full-size float
    copy of ab, Lab or RGB."""
    height, width = lightness.size
    # Bilinear upsampling is separable: columns now (2×s×W, small), rows in the fused pass.
    offsets = chroma_offsets(ab_small.float())
    offsets = F.interpolate(
        offsets, size=(offsets.shape[-2], width), mode="bilinear", align_corners=False
    )[0]
    offsets = offsets.to(lightness.device)
    # the kernels' kind: numpy for numba's, tensors for torch's
    chroma = offsets.cpu().numpy() if lightness.kernels == "numba" else offsets
    rows, h = lightness.strip_rows(), offsets.shape[-2]

    def strip(r0: int) -> Image.Image:
        r1 = min(height, r0 + rows)
        f = lightness.f_rows(r0, r1)
        pixels = lab_rows_to_srgb8(f, chroma, *upsampled_rows(r0, r1, height, h))
        return Image.fromarray(pixels, mode="RGB")

    if rows >= height:
        return strip(0)
    out = Image.new("RGB", (width, height))
    for r0 in range(0, height, rows):
        out.paste(strip(r0), (0, r0))
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
