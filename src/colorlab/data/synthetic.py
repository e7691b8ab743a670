"""Procedural landscape and city scenes: colorlab's built-in data, no download needed.

Colours follow cues a CNN can learn from the gray picture alone, as in landscape photos:
a blue sky that pales towards the horizon, white clouds, a yellow sun, grey-brown
mountains with white snow caps, textured green grass and forest, blue water with
horizontal ripples, and buildings in brick or concrete colours with grids of windows.
Each scene is a pure function of (seed, index) and of the size; everything is vectorised.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

_SKY_TOP = np.array([0.16, 0.36, 0.78], np.float32)
_SKY_HORIZON = np.array([0.72, 0.84, 0.96], np.float32)
# An evening sky of the day sky's lightness (L* 39 and 84 against 42 and 84): from gray alone
# the two cannot be told apart, so a model must guess; regression losses average them to grey.
_DUSK_TOP = np.array([0.47, 0.30, 0.52], np.float32)
_DUSK_HORIZON = np.array([0.98, 0.78, 0.62], np.float32)
_SUN = np.array([1.0, 0.86, 0.25], np.float32)
_CLOUD = np.array([0.97, 0.97, 0.98], np.float32)
_ROCK = np.array([0.46, 0.40, 0.34], np.float32)
_SNOW = np.array([0.96, 0.97, 1.0], np.float32)
_GRASS = np.array([0.30, 0.58, 0.16], np.float32)
_FOREST = np.array([0.08, 0.32, 0.10], np.float32)
_WATER = np.array([0.08, 0.32, 0.62], np.float32)
_STREET = np.array([0.42, 0.42, 0.44], np.float32)
_WALLS = np.array(
    [[0.62, 0.27, 0.18], [0.72, 0.36, 0.24], [0.64, 0.63, 0.60], [0.82, 0.72, 0.52]], np.float32
)
_WINDOW = np.array([0.16, 0.22, 0.32], np.float32)


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1], size×size, with about ``cells`` bumps per side."""
    grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
    t = np.linspace(0, cells, size, dtype=np.float32)
    i = np.minimum(t.astype(np.int64), cells - 1)
    f = t - i
    f = f * f * (3 - 2 * f)
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _fractal(rng: np.random.Generator, size: int, base_cells: int, octaves: int = 3) -> np.ndarray:
    """Sum of noise octaves, normalised to [0, 1]."""
    total = sum(_noise(rng, size, base_cells * 2**o) / 2**o for o in range(octaves))
    return total / sum(1 / 2**o for o in range(octaves))


def _ridge(rng: np.random.Generator, x: np.ndarray, waves: int) -> np.ndarray:
    """A random 1-D profile in [-1, 1] over x in [0, 1] (sum of sines)."""
    freqs = rng.uniform(1.0, 2.0 * waves, waves)
    phases = rng.uniform(0, 2 * np.pi, waves)
    amps = 1.0 / freqs
    profile = (
        amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * x[None, :] + phases[:, None])
    ).sum(0)
    return profile / amps.sum()


def _paint(canvas: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    """Blend ``colour`` (3,) or (H, W, 3) into ``canvas`` where ``mask`` (H, W, in [0, 1]) is."""
    alpha = np.clip(mask, 0.0, 1.0)[..., None]
    canvas *= 1 - alpha
    canvas += alpha * colour


def render_scene(seed: int, index: int, size: int, dusk_fraction: float = 0.0) -> np.ndarray:
    """One scene as a size×size×3 uint8 RGB array, fixed by (seed, index, dusk_fraction).

    ``dusk_fraction`` of the skies are evening skies (violet to peach) as light as the blue
    ones: colour that the gray picture cannot tell (0 draws nothing: the scenes are those of
    earlier versions)."""
    rng = np.random.default_rng([seed, index])
    y, x = np.meshgrid(*(np.linspace(0, 1, size, dtype=np.float32),) * 2, indexing="ij")
    horizon = rng.uniform(0.4, 0.68)
    ground_kind = rng.choice(["grass", "water", "city"])

    # Sky: deep blue at the top, pale at the horizon, with a little hue jitter (or at dusk).
    t = np.clip(y / horizon, 0, 1)[..., None]
    dusk = dusk_fraction > 0 and rng.random() < dusk_fraction
    sky_top, sky_horizon = (_DUSK_TOP, _DUSK_HORIZON) if dusk else (_SKY_TOP, _SKY_HORIZON)
    top = np.clip(sky_top + rng.normal(0, 0.04, 3).astype(np.float32), 0, 1)
    canvas = (1 - t) * top + t * sky_horizon

    if rng.random() < 0.55:  # sun with a soft glow
        cy, cx = rng.uniform(0.08, horizon * 0.6), rng.uniform(0.1, 0.9)
        radius = rng.uniform(0.04, 0.08)
        dist = np.sqrt((y - cy) ** 2 + (x - cx) ** 2)
        _paint(canvas, np.exp(-((dist / (2.5 * radius)) ** 2)) * 0.35, _SUN)
        _paint(canvas, np.clip((radius - dist) / (0.15 * radius), 0, 1), _SUN)

    if rng.random() < 0.75:  # clouds: thresholded noise, shaded grey underneath
        density = _fractal(rng, size, int(rng.integers(2, 5)))
        cover = rng.uniform(0.5, 0.68)
        mask = (
            np.clip((density - cover) * 6, 0, 1) * (y < horizon) * np.clip((horizon - y) * 6, 0, 1)
        )
        shade = np.clip(1.0 - 0.25 * (density - cover), 0.75, 1.0)[..., None]
        _paint(canvas, mask, _CLOUD * shade)

    if rng.random() < 0.6:  # mountains with snow above a snow line
        peak = horizon - rng.uniform(0.15, 0.35)
        ridge = horizon - (horizon - peak) * (0.55 + 0.45 * _ridge(rng, x[0], 5))
        body = (y >= ridge[None, :]) & (y < horizon)
        grain = _fractal(rng, size, 8)[..., None]
        rock = np.clip(_ROCK + rng.normal(0, 0.04, 3).astype(np.float32), 0, 1) * (
            0.75 + 0.5 * grain
        )
        _paint(canvas, body.astype(np.float32), rock)
        snow_line = peak + (horizon - peak) * rng.uniform(0.3, 0.5)
        snow = body & (y < snow_line + 0.04 * (grain[..., 0] - 0.5))
        _paint(canvas, snow.astype(np.float32), _SNOW * (0.9 + 0.1 * grain))

    below = (y >= horizon).astype(np.float32)
    if ground_kind == "grass":
        texture = _fractal(rng, size, 16, octaves=2)[..., None]
        _paint(canvas, below, _GRASS * (0.6 + 0.7 * texture))
        if rng.random() < 0.7:  # a forest edge with a jagged top on the horizon
            top_line = horizon - rng.uniform(0.05, 0.14) * (0.6 + 0.4 * _ridge(rng, x[0], 24))
            trees = ((y >= top_line[None, :]) & (y < horizon + 0.08)).astype(np.float32)
            leaves = _fractal(rng, size, 24, octaves=2)[..., None]
            _paint(canvas, trees, _FOREST * (0.6 + 0.9 * leaves))
    elif ground_kind == "water":
        depth = np.clip((y - horizon) / (1 - horizon), 0, 1)[..., None]
        wobble = _noise(rng, size, 6)
        ripples = 0.5 + 0.5 * np.sin(2 * np.pi * (rng.uniform(18, 40) * y + 2.0 * wobble))
        water = _WATER * (0.7 + 0.3 * (1 - depth)) + 0.12 * ripples[..., None] * _SKY_HORIZON
        _paint(canvas, below, np.clip(water, 0, 1))
    else:  # city: street below, buildings standing on the horizon
        _paint(
            canvas, below, _STREET * (0.85 + 0.3 * _fractal(rng, size, 12, octaves=2)[..., None])
        )
        left = 0.0
        while left < 1.0:
            width = rng.uniform(0.1, 0.28)
            height = rng.uniform(0.12, horizon - 0.05)
            wall = _WALLS[rng.integers(len(_WALLS))] * rng.uniform(0.85, 1.1)
            block = (
                (x >= left) & (x < left + width) & (y >= horizon - height) & (y < horizon + 0.02)
            )
            _paint(canvas, block.astype(np.float32), np.clip(wall, 0, 1))
            rows, cols = rng.integers(4, 12), rng.integers(2, 6)
            u = (x - left) / width * cols
            v = (y - (horizon - height)) / height * rows
            windows = (
                block & (np.abs(u % 1 - 0.5) < 0.28) & (np.abs(v % 1 - 0.5) < 0.25) & (v > 0.6)
            )
            _paint(canvas, windows.astype(np.float32), _WINDOW)
            left += width + rng.uniform(0.0, 0.06)

    return (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)


class SyntheticScenes(Dataset):
    """Scenes ``first_index .. first_index + length - 1`` of the stream fixed by ``seed``.

    Items are 3×image_size×image_size uint8 RGB tensors.
    """

    def __init__(
        self,
        length: int,
        image_size: int,
        seed: int = 0,
        first_index: int = 0,
        dusk_fraction: float = 0.0,
    ) -> None:
        self.length = length
        self.image_size = image_size
        self.seed = seed
        self.first_index = first_index
        self.dusk_fraction = dusk_fraction

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.length:
            raise IndexError(index)
        scene = render_scene(
            self.seed, self.first_index + index, self.image_size, self.dusk_fraction
        )
        return torch.from_numpy(scene).permute(2, 0, 1).contiguous()
