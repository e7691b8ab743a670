"""8-bit sRGB pictures to CIELAB lightness and back at full resolution, exactly and fast.

The same conversions as `colorlab.color` (kornia's D65 / 2° formulas), specialised for what
colorize does at full size: the lightness of an 8-bit photo, and the merge of that lightness
with chroma into 8-bit sRGB. Where kornia raises powers of a float32 copy of the whole picture,
these use lookup tables and one fused pass per pixel (numba on the CPU, torch on any other
device); the results equal kornia's within one 8-bit level.

Lightness is carried as ``f`` = f(Y / Yn), the CIELAB companding of luminance, so that
``L* = 116 f − 16`` (`lightness_from_f`) and the merge needs no cube root. Chroma is carried
as ``offsets`` = (a* / 500, −b* / 200) (`chroma_offsets`), what Lab → XYZ adds to ``f``.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from colorlab.color import AB_SCALE

#: kornia's sRGB → XYZ (D65) matrix, its white point and its companding constants.
_RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_XYZ_TO_RGB = np.array(
    [
        [3.2404813432005266, -1.5371515162713185, -0.4985363261688878],
        [-0.9692549499965682, 1.8759900014898907, 0.0415559265582928],
        [0.0556466391351772, -0.2040413383665112, 1.0573110696453443],
    ]
)
_WHITE = np.array([0.95047, 1.0, 1.08883])
_Y_THRESHOLD = 0.008856  # f is a cube root above it, linear below
_F_THRESHOLD = 0.2068966  # f(_Y_THRESHOLD)
_F_SLOPE, _F_OFFSET = 7.787, 4.0 / 29.0

#: Linear light is looked up in the sRGB encoding at this many levels (2¹⁶: at most 0.03 of an
#: 8-bit level from the exact value, in the darkest, steepest part).
ENCODING_LEVELS = 1 << 16


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)


def _f(y: np.ndarray) -> np.ndarray:
    return np.where(
        y > _Y_THRESHOLD, np.cbrt(np.maximum(y, _Y_THRESHOLD)), _F_SLOPE * y + _F_OFFSET
    )


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    linear = _srgb_to_linear(np.arange(256) / 255.0)
    # Y of each channel's 256 levels (Yn = 1): Y = table[0, R] + table[1, G] + table[2, B].
    luminance = (_RGB_TO_XYZ[1][:, None] * linear[None, :]).astype(np.float32)
    # f on a grid of Y, looked up at the nearest step: L* = 116 f − 16 within 0.004.
    grid = np.arange(ENCODING_LEVELS + 1) / ENCODING_LEVELS
    companding = _f(grid).astype(np.float32)
    # Normalised XYZ → linear RGB, scaled to the encoding's levels.
    to_levels = (_XYZ_TO_RGB * _WHITE[None, :] * (ENCODING_LEVELS - 1)).astype(np.float32)
    levels = np.arange(ENCODING_LEVELS) / (ENCODING_LEVELS - 1)
    encoded = np.where(
        levels > 0.0031308,
        1.055 * np.maximum(levels, 0.0031308) ** (1 / 2.4) - 0.055,
        12.92 * levels,
    )
    encoding = np.clip(encoded * 255 + 0.5, 0, 255).astype(np.uint8)
    return luminance, companding, to_levels, encoding


_LUMINANCE, _COMPANDING, _TO_LEVELS, _ENCODING = _tables()


def lightness_from_f(f: Tensor) -> Tensor:
    """CIELAB L* in [0, 100] from ``f`` (any shape)."""
    return f * 116.0 - 16.0


def chroma_offsets(ab: Tensor) -> Tensor:
    """(a* / 500, −b* / 200) from the model's ab (…×2×H×W, (a*, b*) / 128): what Lab → XYZ
    adds to ``f`` for X and Z. Linear, so it may be applied before any bilinear resizing."""
    scale = torch.tensor([AB_SCALE / 500.0, -AB_SCALE / 200.0], device=ab.device)
    return ab.float() * scale.view(2, 1, 1)


# -- lightness ------------------------------------------------------------------------------------
def lightness_f(rgb: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """``f`` of 8-bit sRGB: n×W×3 uint8 -> n×W float32 (numpy on the CPU, or a tensor on its
    device)."""
    if isinstance(rgb, Tensor):
        return _lightness_f_torch(rgb)
    out = np.empty(rgb.shape[:2], np.float32)
    _lightness_f_kernel(np.ascontiguousarray(rgb), _LUMINANCE, _COMPANDING, out)
    return out


@numba.njit(cache=True, nogil=True, fastmath=True)
def _lightness_f_kernel(rgb, luminance, companding, out):  # pragma: no cover (compiled)
    height, width = out.shape
    steps, half = np.float32(companding.shape[0] - 1), np.float32(0.5)
    for i in range(height):
        for j in range(width):
            y = luminance[0, rgb[i, j, 0]] + luminance[1, rgb[i, j, 1]] + luminance[2, rgb[i, j, 2]]
            out[i, j] = companding[
                np.int32(min(max(y, np.float32(0.0)), np.float32(1.0)) * steps + half)
            ]


def _lightness_f_torch(rgb: Tensor) -> Tensor:
    luminance = torch.from_numpy(_LUMINANCE).to(rgb.device)
    index = rgb.long()
    y = luminance[0][index[..., 0]] + luminance[1][index[..., 1]] + luminance[2][index[..., 2]]
    return torch.where(
        y > _Y_THRESHOLD, y.clamp(min=_Y_THRESHOLD).pow(1 / 3), y * _F_SLOPE + _F_OFFSET
    )


# -- Lab → 8-bit sRGB -----------------------------------------------------------------------------
def lab_rows_to_srgb8(
    f: np.ndarray | Tensor, offsets: np.ndarray | Tensor, below, above, weight
) -> np.ndarray:
    """8-bit sRGB of n rows of Lab whose chroma comes blended from a shorter picture.

    Output row i takes its chroma as ``offsets[:, below[i]] · (1 − weight[i]) +
    offsets[:, above[i]] · weight[i]`` (a bilinear upsampling's row step), its lightness
    from ``f[i]``.

    Args:
        f: n×W float32, lightness as ``f`` (numpy, or a tensor on any device).
        offsets: 2×h×W float32 `chroma_offsets`, same kind as ``f``.
        below, above: n int64 row indices into ``offsets``; weight: n float32 in [0, 1].

    Returns:
        n×W×3 uint8 numpy array (copied from the device where ``f`` is a tensor).
    """
    if isinstance(f, Tensor):
        assert isinstance(offsets, Tensor)  # same kind as f
        return _lab_rows_to_srgb8_torch(f, offsets, below, above, weight)
    out = np.empty((*f.shape, 3), np.uint8)
    _lab_rows_kernel(
        np.ascontiguousarray(f),
        np.ascontiguousarray(offsets, dtype=np.float32),
        np.asarray(below, np.int64),
        np.asarray(above, np.int64),
        np.asarray(weight, np.float32),
        _TO_LEVELS,
        _ENCODING,
        out,
    )
    return out


@numba.njit(cache=True, nogil=True, fastmath=True)
def _lab_rows_kernel(
    f, offsets, below, above, weight, to_levels, encoding, out
):  # pragma: no cover
    height, width = f.shape
    top = np.float32(encoding.shape[0] - 1)
    index = np.empty((3, width), np.int32)
    threshold, zero, half = np.float32(_F_THRESHOLD), np.float32(0.0), np.float32(0.5)
    offset, slope = np.float32(_F_OFFSET), np.float32(1.0 / _F_SLOPE)
    m = to_levels
    for i in range(height):
        lo, hi, w = below[i], above[i], weight[i]
        for j in range(width):  # one vectorisable pass: Lab → XYZ → linear RGB levels
            fy = f[i, j]
            fx = fy + offsets[0, lo, j] + (offsets[0, hi, j] - offsets[0, lo, j]) * w
            fz = max(fy + offsets[1, lo, j] + (offsets[1, hi, j] - offsets[1, lo, j]) * w, zero)
            x = fx * fx * fx if fx > threshold else (fx - offset) * slope
            y = fy * fy * fy if fy > threshold else (fy - offset) * slope
            z = fz * fz * fz if fz > threshold else (fz - offset) * slope
            for c in range(3):
                level = m[c, 0] * x + m[c, 1] * y + m[c, 2] * z + half
                index[c, j] = np.int32(min(max(level, zero), top))
        for j in range(width):  # the sRGB encoding, looked up
            out[i, j, 0] = encoding[index[0, j]]
            out[i, j, 1] = encoding[index[1, j]]
            out[i, j, 2] = encoding[index[2, j]]


def _lab_rows_to_srgb8_torch(f: Tensor, offsets: Tensor, below, above, weight) -> np.ndarray:
    device = f.device
    below, above = torch.as_tensor(below, device=device), torch.as_tensor(above, device=device)
    weight = torch.as_tensor(weight, device=device, dtype=torch.float32).view(-1, 1)
    fx = f + torch.lerp(offsets[0, below], offsets[0, above], weight)
    fz = (f + torch.lerp(offsets[1, below], offsets[1, above], weight)).clamp_(min=0)
    xyz = torch.stack([fx, f, fz], dim=-1)
    xyz = torch.where(xyz > _F_THRESHOLD, xyz * xyz * xyz, (xyz - _F_OFFSET) / _F_SLOPE)
    levels = xyz @ torch.from_numpy(_TO_LEVELS).to(device).T + 0.5
    index = levels.clamp_(0, ENCODING_LEVELS - 1).long()
    return torch.from_numpy(_ENCODING).to(device)[index].cpu().numpy()
