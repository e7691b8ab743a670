"""Simulated user colour hints (Zhang et al. 2017, "Real-Time User-Guided Image Colorization
with Learned Deep Priors"), made on the device from a batch's true ab, for training a network
with hints (``model.hints=true``) and for scoring it against a number of points.

A hint map is B×3×H×W: hint ab (colorlab's scale, (a*, b*) / 128) and a 0/1 mask; zero where
there is no hint. Each point is a square of 1–9 pixels whose colour is the mean true ab over
it; later points cover earlier ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from colorlab.errors import OptionError


@dataclass(frozen=True)
class HintSimulation:
    """The paper's scheme, with its parameters: after each point another follows with
    probability 1 − ``stop_probability`` (a geometric number, 1 in 8 images with none at
    1/8), truncated at ``max_points``; each a square of a side drawn uniformly from
    ``sizes`` = [low, high] pixels, its corner at a Gaussian position around the centre
    (std ``spread`` × (side of the image − side of the square + 1), clipped inside)."""

    stop_probability: float = 0.125
    sizes: tuple[int, int] = (1, 9)
    spread: float = 0.25
    max_points: int = 64

    def __post_init__(self) -> None:
        p = self.stop_probability
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
            raise OptionError(
                "stop_probability", p, "use a probability in (0, 1] (the paper's 1/8)"
            )
        sizes = self.sizes
        if not (
            isinstance(sizes, (list, tuple))
            and len(sizes) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in sizes)
            and 1 <= sizes[0] <= sizes[1]
        ):
            raise OptionError("sizes", sizes, "use [low, high] pixels with 1 <= low <= high")
        if (
            isinstance(self.spread, bool)
            or not isinstance(self.spread, (int, float))
            or not (math.isfinite(self.spread) and self.spread > 0)
        ):
            raise OptionError("spread", self.spread, "use a positive number (the paper's 0.25)")
        if (
            isinstance(self.max_points, bool)
            or not isinstance(self.max_points, int)
            or self.max_points < 1
        ):
            raise OptionError("max_points", self.max_points, "use an integer >= 1")

    def counts(
        self, batch: int, device: torch.device, generator: torch.Generator | None = None
    ) -> Tensor:
        """How many points each of ``batch`` images gets: B int64 in [0, max_points]."""
        draws = torch.rand(batch, self.max_points, device=device, generator=generator)
        return (draws >= self.stop_probability).long().cumprod(dim=1).sum(dim=1)

    def __call__(self, ab: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Hints for true ab (B×2×H×W): B×3×H×W, a geometric number of points per image."""
        return self.points(ab, self.counts(ab.shape[0], ab.device, generator), generator)

    def points(
        self, ab: Tensor, counts: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Hints for true ab (B×2×H×W) with ``counts`` (B, at most `max_points`) points each.
        Drawn with ``generator`` on its device (the CPU's for a seeded, device-independent
        draw), then moved to ab's."""
        batch, _, height, width = ab.shape
        device, slots = ab.device, int(self.max_points)
        place = generator.device if generator is not None else device
        low, high = self.sizes
        sizes = torch.randint(low, high + 1, (batch, slots), device=place, generator=generator)
        sizes = sizes.clamp(max=min(height, width))
        tops = self._corners(sizes, height, generator).to(device)
        lefts = self._corners(sizes, width, generator).to(device)
        sizes, counts = sizes.to(device), counts.to(device)
        colours = square_means(ab, tops, lefts, sizes)  # B×2×K
        exists = torch.arange(slots, device=device)[None, :] < counts[:, None]  # B×K
        rows = torch.arange(height, device=device)[None, :]
        columns = torch.arange(width, device=device)[None, :]
        hint_ab = torch.zeros_like(ab, dtype=torch.float32)
        mask = torch.zeros(batch, 1, height, width, device=device)
        for k in range(slots):  # a fixed number of steps: no host sync on the counts
            top, left, side = tops[:, k, None], lefts[:, k, None], sizes[:, k, None]
            inside_rows = (rows >= top) & (rows < top + side)  # B×H
            inside_columns = (columns >= left) & (columns < left + side)  # B×W
            inside = inside_rows[:, :, None] & inside_columns[:, None, :] & exists[:, k, None, None]
            hint_ab = torch.where(inside[:, None], colours[:, :, k, None, None], hint_ab)
            mask = torch.where(inside[:, None], 1.0, mask)
        return torch.cat([hint_ab, mask], dim=1)

    def _corners(self, sizes: Tensor, side: int, generator: torch.Generator | None) -> Tensor:
        """Corner positions along one axis: N((side − s + 1)/2, spread·(side − s + 1)), clipped
        to [0, side − s] and truncated to pixels (colorization-pytorch's ``add_color_patches_rand_gt``)."""
        span = (side - sizes + 1).float()
        normal = torch.randn(sizes.shape, device=sizes.device, generator=generator)
        position = span / 2 + normal * span * self.spread
        return torch.minimum(position.clamp(min=0), (side - sizes).float()).long()


def square_means(ab: Tensor, tops: Tensor, lefts: Tensor, sizes: Tensor) -> Tensor:
    """The mean of ab (B×2×H×W) over squares (B×K corners and sides): B×2×K, by an integral
    image (four lookups a square)."""
    batch, channels, height, width = ab.shape
    integral = F.pad(ab.float().cumsum(2).cumsum(3), (1, 0, 1, 0)).flatten(2)  # B×2×(H+1)(W+1)

    def at(y: Tensor, x: Tensor) -> Tensor:
        index = (y * (width + 1) + x)[:, None, :].expand(batch, channels, -1)
        return integral.gather(2, index)

    bottom, right = tops + sizes, lefts + sizes
    total = at(bottom, right) - at(tops, right) - at(bottom, lefts) + at(tops, lefts)
    return total / (sizes * sizes)[:, None, :].float()


def hint_simulation(options: dict[str, Any] | None) -> HintSimulation | None:
    """A data config's ``hints`` group -> the simulation, or None where it is off
    (``enabled: false`` or no group)."""
    if not options:
        return None
    options = dict(options)
    enabled = options.pop("enabled", False)
    if not isinstance(enabled, bool):
        raise OptionError("hints.enabled", enabled, "use true or false")
    if not enabled:
        return None
    try:
        if isinstance(options.get("sizes"), Sequence) and not isinstance(options["sizes"], str):
            options["sizes"] = tuple(options["sizes"])  # a list, or a ListConfig
        return HintSimulation(**options)
    except OptionError as error:
        raise error.within("hints") from None
    except TypeError as error:
        raise OptionError(
            "hints", sorted(options), "use enabled, stop_probability, sizes, spread, max_points"
        ) from error
