"""Colour maths: the one place where colorlab converts between RGB and CIELAB.

Conventions (the reference experiment's):
    rgb   B×3×H×W float in [0, 1] (sRGB)
    L     B×1×H×W float in [0, 100] (CIELAB lightness, D65 / 2°)
    ab    B×2×H×W float, CIELAB a*, b* divided by ``AB_SCALE`` (128), so in (-1, 1)

It also owns the colourfulness of a picture (`colorfulness`) and the quantized ab gamut: the colour bins that classification heads predict
(`ab_gamut`), the soft encoding of ab onto them and their decoding back to ab.
"""

from __future__ import annotations

import functools

import kornia.color
import torch
from torch import Tensor

from colorlab.errors import OptionError

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


def lab_batch(rgb: Tensor) -> dict[str, Tensor]:
    """Turn an RGB batch into the training dictionary, on whatever device it is.

    Args:
        rgb: B×3×H×W, uint8 or float in [0, 1].

    Returns:
        ``{"L": B×1×H×W in [0, 100], "ab": B×2×H×W in (-1, 1), "rgb": B×3×H×W in [0, 1]}``
    """
    if rgb.dtype == torch.uint8:
        rgb = rgb.float().div_(255.0)
    L, ab = rgb_to_l_ab(rgb)
    return {"L": L, "ab": ab, "rgb": rgb}


# -- colourfulness -------------------------------------------------------------------------------
def colorfulness(rgb: Tensor, eps: float = 0.0) -> Tensor:
    """Hasler–Süsstrunk colourfulness (M3) per image, in the form DDColor and CT2 publish.

    On 0–255 RGB: rg = |R − G|, yb = |½(R + G) − B|,
    CF = sqrt(σ_rg² + σ_yb²) + 0.3 · sqrt(μ_rg² + μ_yb²).

    Args:
        rgb: B×3×H×W in [0, 1].
        eps: added under both square roots, so that a loss can differentiate it at gray
            (0 for the metric).

    Returns:
        B values, 0 for a gray image, ~15 "slightly", ~33 "moderately", >59 "highly" colourful.
    """
    r, g, b = (rgb.float() * 255.0).unbind(dim=-3)
    rg = (r - g).abs().flatten(-2)
    yb = (0.5 * (r + g) - b).abs().flatten(-2)
    spread = (rg.var(dim=-1, unbiased=False) + yb.var(dim=-1, unbiased=False) + eps).sqrt()
    level = (rg.mean(dim=-1).square() + yb.mean(dim=-1).square() + eps).sqrt()
    return spread + 0.3 * level


# -- the quantized ab gamut (colour bins) -----------------------------------------------------
#: Side of an ab colour bin in Lab units (Zhang et al. 2016). Bin centres are multiples of it.
AB_BIN_SIZE = 10
#: The integer ab grid of `soft_encoding_table`: a*, b* in [-AB_GRID_RADIUS, AB_GRID_RADIUS).
AB_GRID_RADIUS = 128


@functools.cache
def _ab_gamut_lab() -> Tensor:
    # The Lab image of the sRGB cube is a solid whose boundary is the image of the cube's
    # faces; projected along L, the faces therefore reach every ab cell the cube reaches.
    # The 8-bit colours on the six faces give the same 261 cells as all 16.7 M 8-bit colours.
    steps = torch.arange(256, dtype=torch.float64) / 255
    u, v = (t.flatten() for t in torch.meshgrid(steps, steps, indexing="ij"))
    faces = []
    for axis in range(3):
        for level in (0.0, 1.0):
            channels = [u, v]
            channels.insert(axis, torch.full_like(u, level))
            faces.append(torch.stack(channels))
    rgb = torch.cat(faces, dim=1).float().view(1, 3, -1, 1)
    ab = kornia.color.rgb_to_lab(rgb)[0, 1:, :, 0]
    cells = torch.round(ab.double() / AB_BIN_SIZE).long()
    span = 2 * AB_GRID_RADIUS // AB_BIN_SIZE + 1
    codes = torch.unique((cells[0] + span) * 4 * span + (cells[1] + span))  # sorted: a, then b
    return torch.stack([codes // (4 * span) - span, codes % (4 * span) - span], dim=1).float() * (
        AB_BIN_SIZE
    )


def ab_gamut() -> Tensor:
    """The colour bins: centres of the 10×10 ab cells that in-gamut sRGB colours reach.

    Deterministic (computed from the 8-bit colours on the faces of the sRGB cube, D65);
    Q = 261 bins, sorted by a* then b* (Zhang et al.'s table has 313 because it also
    keeps cells reached only out of gamut).

    Returns:
        Q×2 float, (a*, b*) in Lab units (divide by `AB_SCALE` for the model's ab scale).
    """
    return _ab_gamut_lab().clone()


def ab_grid_index(ab: Tensor) -> Tensor:
    """Each pixel's cell on the integer ab grid, as a flat index into `soft_encoding_table`.

    Args:
        ab: B×2×H×W, (a*, b*) / 128.

    Returns:
        B×H×W int64 in [0, (2·128)²): (round(a*) + 128)·256 + round(b*) + 128, clamped.
    """
    side = 2 * AB_GRID_RADIUS
    grid = (ab.float() * AB_SCALE).round_().long().add_(AB_GRID_RADIUS).clamp_(0, side - 1)
    return grid[:, 0] * side + grid[:, 1]


def soft_encoding_table(
    bins: Tensor, neighbours: int = 5, sigma: float = 5.0
) -> tuple[Tensor, Tensor]:
    """Soft encoding of every integer (a*, b*) onto its nearest colour bins (Zhang et al. 2016).

    Each grid point gets its ``neighbours`` nearest bins, weighted by a Gaussian of the
    distance (``sigma`` Lab units) and normalised to sum to 1.

    Args:
        bins: Q×2 bin centres in Lab units (`ab_gamut`).

    Returns:
        ``(indices, weights)``: (256²)×K int64 bin indices (nearest first) and (256²)×K
        float weights, rows indexed by `ab_grid_index`.
    """
    axis = torch.arange(-AB_GRID_RADIUS, AB_GRID_RADIUS, dtype=torch.float32)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
    distances, indices = torch.cdist(grid, bins.float()).topk(neighbours, dim=1, largest=False)
    # Relative to the nearest bin, so that grid points far outside the gamut do not underflow.
    weights = torch.exp(-(distances.square() - distances[:, :1].square()) / (2 * sigma**2))
    return indices, weights / weights.sum(dim=1, keepdim=True)


def check_temperature(temperature: float, name: str = "temperature") -> None:
    """Raise an `OptionError` naming ``name`` unless 0 < T ≤ 10."""
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not 0 < temperature <= 10
    ):
        raise OptionError(
            name, temperature, "use a number in (0, 10] (0.38 the paper's; 1 = the mean)"
        )


def annealed_mean(logits: Tensor, bins: Tensor, temperature: float) -> Tensor:
    """Decode colour-bin logits to ab by the annealed mean (Zhang et al. 2016).

    softmax(logits / T) is the bin distribution re-sharpened at temperature T (T = 1: the
    mean, T → 0: the mode); the result is its expectation over the bin centres.

    Args:
        logits: B×Q×H×W.
        bins: Q×2 bin centres in Lab units.
        temperature: T > 0 (0.38 in the paper).

    Returns:
        B×2×H×W ab / 128, in (-1, 1).
    """
    probabilities = torch.softmax(logits.float() / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", probabilities, bins.float() / AB_SCALE)
