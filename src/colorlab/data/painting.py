"""Painting procedural scenes (`colorlab.data.scenes`) in batches with torch, on any device:
the GPU renders the default data set in a fraction of a second, and CPU and GPU pictures
agree within float rounding."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from colorlab.color import rgb_to_l_ab, to_rgb
from colorlab.data.scenes import (
    CLOUD,
    DUSK_HORIZON,
    DUSK_TOP,
    FOREST,
    GRASS,
    SKY_HORIZON,
    SNOW,
    STREET,
    SUN,
    WATER,
    WINDOW,
    Ridge,
    Scene,
    draw_scene,
)

#: Scenes painted at once on the CPU (bounded memory: about 40 float maps of size² each).
_CPU_CHUNK = 16


class _Painter:
    """Paints B scenes into a B×3×S×S float canvas in [0, 1] on ``device``."""

    def __init__(self, scenes: list[Scene], size: int, device: torch.device) -> None:
        self.scenes = scenes
        self.size = size
        self.device = device
        coords = torch.linspace(0, 1, size, device=device)
        self.y = coords.view(1, 1, size, 1)
        self.x = coords.view(1, 1, 1, size)

    def column(self, values, shape: tuple[int, ...] = ()) -> Tensor:
        """Per-scene values as a B×(shape)×1×1 float tensor."""
        array = np.asarray(values, dtype=np.float32)
        return torch.from_numpy(array.reshape(len(self.scenes), *(shape or (1,)), 1, 1)).to(
            self.device
        )

    def colour(self, rgb) -> Tensor:
        return torch.tensor(rgb, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def noise(self, grids: list[np.ndarray | None]) -> Tensor:
        """Smooth value noise B×1×S×S in [0, 1] from square grids ((c+1)×(c+1), or None for a
        scene without it): smoothstep interpolation, as a batched W·G·Wᵀ product."""
        cells = torch.tensor([1 if g is None else len(g) - 1 for g in grids], device=self.device)
        width = int(cells.max()) + 1
        padded = np.zeros((len(grids), width, width), np.float32)
        for i, grid in enumerate(grids):
            if grid is not None:
                padded[i, : len(grid), : len(grid)] = grid
        t = torch.linspace(0, 1, self.size, device=self.device)[None, :] * cells[:, None]
        low = torch.minimum(t.long(), cells[:, None] - 1)
        f = t - low
        f = f * f * (3 - 2 * f)
        weights = torch.zeros(len(grids), self.size, width, device=self.device)
        weights.scatter_add_(2, low[..., None], (1 - f)[..., None])
        weights.scatter_add_(2, low[..., None] + 1, f[..., None])
        stacked = torch.from_numpy(padded).to(self.device)
        return (weights @ stacked @ weights.transpose(1, 2)).unsqueeze(1)

    def fractal(self, octaves: list[list[np.ndarray] | None]) -> Tensor:
        """Sum of noise octaves normalised to [0, 1]; ``octaves[b]`` the grids of scene b."""
        count = len(next(o for o in octaves if o is not None))
        total = sum(
            self.noise([None if o is None else o[k] for o in octaves]) / 2**k for k in range(count)
        )
        return total / sum(1 / 2**k for k in range(count))

    def ridge(self, ridges: list[Ridge | None]) -> Tensor:
        """B×1×1×S profiles over x (zeros where None)."""
        waves = len(next(r for r in ridges if r is not None).freqs)
        freqs = np.ones((len(ridges), waves), np.float32)
        phases = np.zeros((len(ridges), waves), np.float32)
        for i, ridge in enumerate(ridges):
            if ridge is not None:
                freqs[i], phases[i] = ridge.freqs, ridge.phases
        freqs_t = torch.from_numpy(freqs).to(self.device)[:, :, None]
        phases_t = torch.from_numpy(phases).to(self.device)[:, :, None]
        amps = 1.0 / freqs_t
        x = self.x.view(1, 1, -1)
        profile = (amps * torch.sin(2 * np.pi * freqs_t * x + phases_t)).sum(1) / amps.sum(1)
        return profile.view(len(ridges), 1, 1, -1)

    @staticmethod
    def paint(canvas: Tensor, mask: Tensor, colour: Tensor) -> None:
        """Blend ``colour`` (broadcastable to the canvas) where ``mask`` (B×1×S×S) is."""
        alpha = mask.float().clamp(0, 1)
        canvas.mul_(1 - alpha).add_(alpha * colour)

    def render(self) -> Tensor:
        """The scenes as B×3×S×S uint8 RGB."""
        scenes, y, x, column = self.scenes, self.y, self.x, self.column
        horizon = column([s.horizon for s in scenes])
        t = (y / horizon).clamp(0, 1)
        top = column([s.sky_top for s in scenes], (3,))
        canvas = (1 - t) * top + t * self.colour(SKY_HORIZON)  # B×3×S×1: one column
        if any(s.dusk for s in scenes):
            canvas = self._dusk(canvas, t)
        canvas = canvas.expand(-1, -1, -1, self.size).contiguous()

        if any(s.sun for s in scenes):
            sun = [s.sun or (0.0, 0.0, 1.0) for s in scenes]
            has_sun = column([s.sun is not None for s in scenes])
            cy, cx, radius = (column([v[k] for v in sun]) for k in range(3))
            dist = torch.sqrt((y - cy) ** 2 + (x - cx) ** 2)
            glow = torch.exp(-((dist / (2.5 * radius)) ** 2)) * 0.35
            self.paint(canvas, glow * has_sun, self.colour(SUN))
            disc = ((radius - dist) / (0.15 * radius)).clamp(0, 1)
            self.paint(canvas, disc * has_sun, self.colour(SUN))

        if any(s.clouds for s in scenes):
            density = self.fractal([s.clouds for s in scenes])
            cover = column([s.cloud_cover for s in scenes])
            has_clouds = column([s.clouds is not None for s in scenes])
            mask = ((density - cover) * 6).clamp(0, 1) * (y < horizon)
            mask = mask * ((horizon - y) * 6).clamp(0, 1) * has_clouds
            shade = (1.0 - 0.25 * (density - cover)).clamp(0.75, 1.0)
            self.paint(canvas, mask, self.colour(CLOUD) * shade)

        if any(s.mountain for s in scenes):
            self._mountains(canvas, horizon)

        below = y >= horizon
        kinds = [s.ground for s in scenes]
        if "grass" in kinds:
            self._grass(canvas, horizon, below)
        if "water" in kinds:
            depth = ((y - horizon) / (1 - horizon)).clamp(0, 1)
            wobble = self.noise([s.water[0] if s.water else None for s in scenes])
            freq = column([s.water[1] if s.water else 0.0 for s in scenes])
            ripples = 0.5 + 0.5 * torch.sin(2 * np.pi * (freq * y + 2.0 * wobble))
            water = self.colour(WATER) * (0.7 + 0.3 * (1 - depth))
            water = (water + 0.12 * ripples * self.colour(SKY_HORIZON)).clamp(0, 1)
            self.paint(canvas, below * column([k == "water" for k in kinds]), water)
        if "city" in kinds:
            self._city(canvas, horizon, below)
        return (canvas.clamp(0, 1) * 255 + 0.5).to(torch.uint8)

    def _dusk(self, sky: Tensor, t: Tensor) -> Tensor:
        """Evening scenes' sky column: the day sky's lightness with the dusk hues (ab from
        violet at the top to peach at the horizon)."""
        lightness, _ = rgb_to_l_ab(sky)
        _, ab_top = rgb_to_l_ab(self.colour(DUSK_TOP))
        _, ab_horizon = rgb_to_l_ab(self.colour(DUSK_HORIZON))
        evening = to_rgb(lightness, (1 - t) * ab_top + t * ab_horizon)
        dusk = self.column([s.dusk for s in self.scenes]) > 0
        return torch.where(dusk, evening, sky)

    def _mountains(self, canvas: Tensor, horizon: Tensor) -> None:
        scenes, y, column = self.scenes, self.y, self.column
        mountains = [s.mountain for s in scenes]
        present = column([m is not None for m in mountains])
        peak = column([m["peak"] if m else 0.0 for m in mountains])
        profile = self.ridge([m["ridge"] if m else None for m in mountains])
        ridge = horizon - (horizon - peak) * (0.55 + 0.45 * profile)
        body = (y >= ridge) & (y < horizon) & (present > 0)
        grain = self.fractal([m["grain"] if m else None for m in mountains])
        rock = column([m["rock"] if m else np.zeros(3) for m in mountains], (3,))
        self.paint(canvas, body, rock * (0.75 + 0.5 * grain))
        snow_line = column([m["snow_line"] if m else 0.0 for m in mountains])
        snow = body & (y < snow_line + 0.04 * (grain - 0.5))
        self.paint(canvas, snow, self.colour(SNOW) * (0.9 + 0.1 * grain))

    def _grass(self, canvas: Tensor, horizon: Tensor, below: Tensor) -> None:
        scenes, y, column = self.scenes, self.y, self.column
        texture = self.fractal([s.grass for s in scenes])
        grass = below * column([s.ground == "grass" for s in scenes])
        self.paint(canvas, grass, self.colour(GRASS) * (0.6 + 0.7 * texture))
        forests = [s.forest for s in scenes]
        if not any(forests):
            return
        depth = column([f["depth"] if f else 0.0 for f in forests])
        top_line = horizon - depth * (
            0.6 + 0.4 * self.ridge([f["ridge"] if f else None for f in forests])
        )
        trees = (y >= top_line) & (y < horizon + 0.08) & (column([bool(f) for f in forests]) > 0)
        leaves = self.fractal([f["leaves"] if f else None for f in forests])
        self.paint(canvas, trees, self.colour(FOREST) * (0.6 + 0.9 * leaves))

    def _city(self, canvas: Tensor, horizon: Tensor, below: Tensor) -> None:
        scenes, y, x, column = self.scenes, self.y, self.x, self.column
        texture = self.fractal([s.street for s in scenes])
        street = below * column([s.ground == "city" for s in scenes])
        self.paint(canvas, street, self.colour(STREET) * (0.85 + 0.3 * texture))
        for k in range(max(len(s.buildings) for s in scenes)):
            built = [s.buildings[k] if k < len(s.buildings) else None for s in scenes]
            present = column([b is not None for b in built]) > 0
            left, width, height = (column([b[i] if b else 1.0 for b in built]) for i in range(3))
            wall = column([b[3] if b else np.zeros(3) for b in built], (3,))
            rows, cols = (column([b[i] if b else 1 for b in built]) for i in (4, 5))
            block = (x >= left) & (x < left + width) & (y >= horizon - height)
            block = block & (y < horizon + 0.02) & present
            self.paint(canvas, block, wall)
            u = (x - left) / width * cols
            v = (y - (horizon - height)) / height * rows
            windows = (
                block & ((u % 1 - 0.5).abs() < 0.28) & ((v % 1 - 0.5).abs() < 0.25) & (v > 0.6)
            )
            self.paint(canvas, windows, self.colour(WINDOW))


def render_scenes(
    seed: int,
    indices,
    size: int,
    dusk_fraction: float = 0.0,
    device: str | torch.device = "cpu",
    chunk: int | None = None,
) -> Tensor:
    """Scenes ``indices`` of the stream fixed by ``seed`` as N×3×size×size uint8 RGB on ``device``.

    ``dusk_fraction`` of the skies are evening skies (violet to peach) as light as the blue
    ones: colour that the gray picture cannot tell (0 draws nothing: the scenes are those of
    earlier versions). Painted ``chunk`` scenes at a time (default: 16 on the CPU, 256 on a GPU).
    """
    device = torch.device(device)
    indices = [int(i) for i in indices]
    chunk = chunk or (_CPU_CHUNK if device.type == "cpu" else 256)
    out = torch.empty(len(indices), 3, size, size, dtype=torch.uint8, device=device)
    for start in range(0, len(indices), chunk):
        part = indices[start : start + chunk]
        scenes = [draw_scene(seed, i, dusk_fraction) for i in part]
        out[start : start + len(part)] = _Painter(scenes, size, device).render()
    return out


def render_scene(seed: int, index: int, size: int, dusk_fraction: float = 0.0) -> np.ndarray:
    """One scene as a size×size×3 uint8 RGB array (on the CPU), fixed by (seed, index,
    dusk_fraction); see `render_scenes`."""
    return render_scenes(seed, [index], size, dusk_fraction)[0].permute(1, 2, 0).numpy()
