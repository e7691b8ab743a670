"""Colour hints spread over the photo by a fixed rule, as more input for a network with hints.

A network sees a user's points as a sparse map: one 2×2 px dot of colour where the photo has
a whole object of it. Learning to spread a dot over its object takes the paper's 20 M photos;
a joint-bilateral rule does most of it without learning (`experiments/README.md` §11: ten
points spread so score 28.3 dB where gray scores 24.1). `HintSpread` computes that rule on a
coarse grid and hands the network its result (the spread colour and how sure it is) beside the
points themselves, so the network refines a colour map instead of inventing one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorlab.errors import OptionError

#: Channels `HintSpread` adds: the spread ab and its confidence.
SPREAD_CHANNELS = 3


class HintSpread(nn.Module):
    """Hint maps -> the hints spread over the image, B×3×H×W: ab in colorlab's scale and a
    confidence in [0, 1) (zero everywhere without hints).

    On a ``cells`` × ``cells`` grid (each cell the mean hint colour of its hinted pixels and
    its mean lightness), every cell takes the hinted cells' colours weighted by
    exp(−d²/2σ²) · exp(−ΔL²/2ρ²), with σ = ``sigma`` × the image's shorter side and
    ρ = ``lightness`` (L units; null: distance alone), normalized with a weight ``prior`` on
    gray (ab = 0), which keeps far pixels gray and makes the confidence Σw / (Σw + prior).
    The grid is then enlarged bilinearly. No parameters: nothing to train or store.

    ``blend``: a prediction with hints also leans to the spread colour by its confidence c,
    (1 − c) · network + c · spread (`lean`): where the points say what a colour is, it is
    theirs; far from them, the network's.
    """

    def __init__(
        self,
        sigma: float = 0.25,
        lightness: float | None = 10.0,
        prior: float = 0.05,
        cells: int = 16,
        blend: bool = True,
    ) -> None:
        super().__init__()
        for key, value in (("sigma", sigma), ("prior", prior)):
            if not _positive(value):
                raise OptionError(f"hint_spread.{key}", value, "use a positive number")
        if lightness is not None and not _positive(lightness):
            raise OptionError(
                "hint_spread.lightness", lightness, "use a positive number (L units) or null"
            )
        if isinstance(cells, bool) or not isinstance(cells, int) or cells < 1:
            raise OptionError("hint_spread.cells", cells, "use an integer >= 1")
        if not isinstance(blend, bool):
            raise OptionError("hint_spread.blend", blend, "use true or false")
        self.sigma, self.lightness, self.prior, self.cells = sigma, lightness, prior, cells
        self.blend = blend

    def forward(self, L: Tensor, hints: Tensor) -> Tensor:
        """L (B×1×H×W, 0..100) and hints (B×3×H×W: ab, 0/1 mask) -> B×3×H×W."""
        with torch.autocast(L.device.type, enabled=False):
            return self._spread(L.float(), hints.float())

    def lean(self, ab: Tensor, spread: Tensor) -> Tensor:
        """A prediction (B×2×H×W) leaning to `forward`'s spread (B×3×H×W) by its confidence,
        where ``blend``; unchanged otherwise."""
        if not self.blend:
            return ab
        confidence = spread[:, 2:].to(ab.dtype)
        return ab + confidence * (spread[:, :2].to(ab.dtype) - ab)

    def _spread(self, L: Tensor, hints: Tensor) -> Tensor:
        batch, _, height, width = L.shape
        cells = self.cells
        mask = F.adaptive_avg_pool2d(hints[:, 2:], cells)  # the hinted share of each cell
        ab = F.adaptive_avg_pool2d(hints[:, :2] * hints[:, 2:], cells) / mask.clamp(min=1e-6)
        hinted = (mask > 0).float().flatten(1)  # B×N, N = cells²
        ys = (torch.arange(cells, device=L.device, dtype=torch.float32) + 0.5) * height / cells
        xs = (torch.arange(cells, device=L.device, dtype=torch.float32) + 0.5) * width / cells
        centres = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)
        sigma = self.sigma * min(height, width)
        log_weights = -torch.cdist(centres, centres).square() / (2 * sigma**2)  # N×N
        log_weights = log_weights.expand(batch, -1, -1)
        if self.lightness is not None:
            lightness = F.adaptive_avg_pool2d(L, cells).flatten(1)  # B×N
            difference = lightness[:, :, None] - lightness[:, None, :]
            log_weights = log_weights - difference.square() / (2 * self.lightness**2)
        weights = log_weights.exp() * hinted[:, None, :]  # B×target×source
        total = weights.sum(2) + self.prior  # B×N
        spread_ab = torch.bmm(weights, ab.flatten(2).transpose(1, 2)) / total[:, :, None]
        confidence = 1 - self.prior / total
        grid = torch.cat([spread_ab, confidence[:, :, None]], 2).transpose(1, 2)
        grid = grid.reshape(batch, SPREAD_CHANNELS, cells, cells)
        return F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=False)


def _positive(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and value > 0
    )


def make_hint_spread(options: Mapping[str, Any] | None) -> HintSpread | None:
    """A model config's ``hint_spread`` group -> the module, or None where it is null."""
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise OptionError(
            "hint_spread", options, "use null or a group of sigma, lightness, prior, cells, blend"
        )
    try:
        return HintSpread(**dict(options))
    except TypeError as error:
        raise OptionError(
            "hint_spread", sorted(options), "use sigma, lightness, prior, cells, blend"
        ) from error
