"""Procedural landscape and city scenes: colorlab's built-in data, no download needed.

Colours follow cues a CNN can learn from the gray picture alone, as in landscape photos:
a blue sky that pales towards the horizon, white clouds, a yellow sun, grey-brown
mountains with white snow caps, textured green grass and forest, blue water with
horizontal ripples, and buildings in brick or concrete colours with grids of windows.

Each scene is a pure function of (seed, index, dusk_fraction) and of the size. Its random
choices (a few dozen numbers and small noise grids) are drawn on the CPU with NumPy; the
pixels of a whole batch of scenes are then painted at once with torch on any device, so
the GPU renders the default data set in a fraction of a second and the CPU and GPU
pictures agree within float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from colorlab.color import rgb_to_l_ab, to_rgb

_SKY_TOP = np.array([0.16, 0.36, 0.78], np.float32)
_SKY_HORIZON = np.array([0.72, 0.84, 0.96], np.float32)
# Evening skies take these hues (violet at the top, peach at the horizon) at exactly the
# lightness, pixel by pixel, of the day sky the scene would have had: from gray alone the two
# cannot be told apart, so a model must guess; regression losses average them to grey.
_DUSK_TOP = (0.47, 0.30, 0.52)
_DUSK_HORIZON = (0.98, 0.78, 0.62)
_SUN = (1.0, 0.86, 0.25)
_CLOUD = (0.97, 0.97, 0.98)
_ROCK = np.array([0.46, 0.40, 0.34], np.float32)
_SNOW = (0.96, 0.97, 1.0)
_GRASS = (0.30, 0.58, 0.16)
_FOREST = (0.08, 0.32, 0.10)
_WATER = (0.08, 0.32, 0.62)
_STREET = (0.42, 0.42, 0.44)
_WALLS = np.array(
    [[0.62, 0.27, 0.18], [0.72, 0.36, 0.24], [0.64, 0.63, 0.60], [0.82, 0.72, 0.52]], np.float32
)
_WINDOW = (0.16, 0.22, 0.32)
_GROUNDS = ("grass", "water", "city")
#: Scenes painted at once on the CPU (bounded memory: about 40 float maps of size² each).
_CPU_CHUNK = 16


# -- the random choices of one scene (CPU, NumPy, in the order of earlier versions) ----------
@dataclass
class _Ridge:
    """A random 1-D profile in [-1, 1] over x in [0, 1]: a normalised sum of sines."""

    freqs: np.ndarray
    phases: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, waves: int) -> _Ridge:
        return cls(rng.uniform(1.0, 2.0 * waves, waves), rng.uniform(0, 2 * np.pi, waves))


def _draw_fractal(rng: np.random.Generator, cells: int, octaves: int) -> list[np.ndarray]:
    """The value-noise grids of a fractal with ``cells`` bumps per side at the first octave."""
    return [
        rng.random((cells * 2**o + 1, cells * 2**o + 1), dtype=np.float32) for o in range(octaves)
    ]


@dataclass
class _Scene:
    """Everything random about one scene; absent elements keep their defaults."""

    horizon: float
    ground: str
    sky_top: np.ndarray
    dusk: bool = False
    sun: tuple[float, float, float] | None = None  # centre y, centre x, radius
    clouds: list[np.ndarray] | None = None
    cloud_cover: float = 0.0
    mountain: dict | None = None
    grass: list[np.ndarray] | None = None
    forest: dict | None = None
    water: tuple[np.ndarray, float] | None = None  # wobble grid, ripple frequency
    street: list[np.ndarray] | None = None
    buildings: list[tuple] = field(default_factory=list)  # left, width, height, wall, rows, cols


def _draw_scene(seed: int, index: int, dusk_fraction: float) -> _Scene:
    rng = np.random.default_rng([seed, index])
    horizon = rng.uniform(0.4, 0.68)
    ground = str(rng.choice(list(_GROUNDS)))
    dusk = bool(dusk_fraction > 0 and rng.random() < dusk_fraction)
    scene = _Scene(
        horizon=horizon,
        ground=ground,
        sky_top=np.clip(_SKY_TOP + rng.normal(0, 0.04, 3).astype(np.float32), 0, 1),
        dusk=dusk,
    )
    if rng.random() < 0.55:  # sun with a soft glow
        scene.sun = (
            rng.uniform(0.08, horizon * 0.6),
            rng.uniform(0.1, 0.9),
            rng.uniform(0.04, 0.08),
        )
    if rng.random() < 0.75:  # clouds: thresholded noise, shaded grey underneath
        scene.clouds = _draw_fractal(rng, int(rng.integers(2, 5)), 3)
        scene.cloud_cover = rng.uniform(0.5, 0.68)
    if rng.random() < 0.6:  # mountains with snow above a snow line
        peak = horizon - rng.uniform(0.15, 0.35)
        ridge = _Ridge.draw(rng, 5)
        grain = _draw_fractal(rng, 8, 3)
        rock = np.clip(_ROCK + rng.normal(0, 0.04, 3).astype(np.float32), 0, 1)
        snow_line = peak + (horizon - peak) * rng.uniform(0.3, 0.5)
        scene.mountain = {
            "peak": peak,
            "ridge": ridge,
            "grain": grain,
            "rock": rock,
            "snow_line": snow_line,
        }
    if ground == "grass":
        scene.grass = _draw_fractal(rng, 16, 2)
        if rng.random() < 0.7:  # a forest edge with a jagged top on the horizon
            depth = rng.uniform(0.05, 0.14)
            scene.forest = {
                "depth": depth,
                "ridge": _Ridge.draw(rng, 24),
                "leaves": _draw_fractal(rng, 24, 2),
            }
    elif ground == "water":
        scene.water = (_draw_fractal(rng, 6, 1)[0], rng.uniform(18, 40))
    else:  # city: street below, buildings standing on the horizon
        scene.street = _draw_fractal(rng, 12, 2)
        left = 0.0
        while left < 1.0:
            width = rng.uniform(0.1, 0.28)
            height = rng.uniform(0.12, horizon - 0.05)
            wall = np.clip(_WALLS[rng.integers(len(_WALLS))] * rng.uniform(0.85, 1.1), 0, 1)
            rows, cols = rng.integers(4, 12), rng.integers(2, 6)
            scene.buildings.append((left, width, height, wall, rows, cols))
            left += width + rng.uniform(0.0, 0.06)
    return scene


# -- painting a batch of scenes (torch, any device) --------------------------------------------
class _Painter:
    """Paints B scenes into a B×3×S×S float canvas in [0, 1] on ``device``."""

    def __init__(self, scenes: list[_Scene], size: int, device: torch.device) -> None:
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
        grid = torch.from_numpy(padded).to(self.device)
        return (weights @ grid @ weights.transpose(1, 2)).unsqueeze(1)

    def fractal(self, octaves: list[list[np.ndarray] | None]) -> Tensor:
        """Sum of noise octaves normalised to [0, 1]; ``octaves[b]`` the grids of scene b."""
        count = len(next(o for o in octaves if o is not None))
        total = sum(
            self.noise([None if o is None else o[k] for o in octaves]) / 2**k for k in range(count)
        )
        return total / sum(1 / 2**k for k in range(count))

    def ridge(self, ridges: list[_Ridge | None]) -> Tensor:
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
        canvas = (1 - t) * top + t * self.colour(_SKY_HORIZON)  # B×3×S×1: one column
        if any(s.dusk for s in scenes):
            canvas = self._dusk(canvas, t)
        canvas = canvas.expand(-1, -1, -1, self.size).contiguous()

        if any(s.sun for s in scenes):
            sun = [s.sun or (0.0, 0.0, 1.0) for s in scenes]
            has_sun = column([s.sun is not None for s in scenes])
            cy, cx, radius = (column([v[k] for v in sun]) for k in range(3))
            dist = torch.sqrt((y - cy) ** 2 + (x - cx) ** 2)
            glow = torch.exp(-((dist / (2.5 * radius)) ** 2)) * 0.35
            self.paint(canvas, glow * has_sun, self.colour(_SUN))
            disc = ((radius - dist) / (0.15 * radius)).clamp(0, 1)
            self.paint(canvas, disc * has_sun, self.colour(_SUN))

        if any(s.clouds for s in scenes):
            density = self.fractal([s.clouds for s in scenes])
            cover = column([s.cloud_cover for s in scenes])
            has_clouds = column([s.clouds is not None for s in scenes])
            mask = ((density - cover) * 6).clamp(0, 1) * (y < horizon)
            mask = mask * ((horizon - y) * 6).clamp(0, 1) * has_clouds
            shade = (1.0 - 0.25 * (density - cover)).clamp(0.75, 1.0)
            self.paint(canvas, mask, self.colour(_CLOUD) * shade)

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
            water = self.colour(_WATER) * (0.7 + 0.3 * (1 - depth))
            water = (water + 0.12 * ripples * self.colour(_SKY_HORIZON)).clamp(0, 1)
            self.paint(canvas, below * column([k == "water" for k in kinds]), water)
        if "city" in kinds:
            self._city(canvas, horizon, below)
        return (canvas.clamp(0, 1) * 255 + 0.5).to(torch.uint8)

    def _dusk(self, sky: Tensor, t: Tensor) -> Tensor:
        """Evening scenes' sky column: the day sky's lightness with the dusk hues (ab from
        violet at the top to peach at the horizon)."""
        lightness, _ = rgb_to_l_ab(sky)
        _, ab_top = rgb_to_l_ab(self.colour(_DUSK_TOP))
        _, ab_horizon = rgb_to_l_ab(self.colour(_DUSK_HORIZON))
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
        self.paint(canvas, snow, self.colour(_SNOW) * (0.9 + 0.1 * grain))

    def _grass(self, canvas: Tensor, horizon: Tensor, below: Tensor) -> None:
        scenes, y, column = self.scenes, self.y, self.column
        texture = self.fractal([s.grass for s in scenes])
        grass = below * column([s.ground == "grass" for s in scenes])
        self.paint(canvas, grass, self.colour(_GRASS) * (0.6 + 0.7 * texture))
        forests = [s.forest for s in scenes]
        if not any(forests):
            return
        depth = column([f["depth"] if f else 0.0 for f in forests])
        top_line = horizon - depth * (0.6 + 0.4 * self.ridge([f and f["ridge"] for f in forests]))
        trees = (y >= top_line) & (y < horizon + 0.08) & (column([bool(f) for f in forests]) > 0)
        leaves = self.fractal([f["leaves"] if f else None for f in forests])
        self.paint(canvas, trees, self.colour(_FOREST) * (0.6 + 0.9 * leaves))

    def _city(self, canvas: Tensor, horizon: Tensor, below: Tensor) -> None:
        scenes, y, x, column = self.scenes, self.y, self.x, self.column
        texture = self.fractal([s.street for s in scenes])
        street = below * column([s.ground == "city" for s in scenes])
        self.paint(canvas, street, self.colour(_STREET) * (0.85 + 0.3 * texture))
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
            self.paint(canvas, windows, self.colour(_WINDOW))


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
        scenes = [_draw_scene(seed, i, dusk_fraction) for i in part]
        out[start : start + len(part)] = _Painter(scenes, size, device).render()
    return out


def render_scene(seed: int, index: int, size: int, dusk_fraction: float = 0.0) -> np.ndarray:
    """One scene as a size×size×3 uint8 RGB array (on the CPU), fixed by (seed, index,
    dusk_fraction); see `render_scenes`."""
    return render_scenes(seed, [index], size, dusk_fraction)[0].permute(1, 2, 0).numpy()


class SyntheticScenes(Dataset):
    """Scenes ``first_index .. first_index + length - 1`` of the stream fixed by ``seed``.

    Items are 3×image_size×image_size uint8 RGB tensors (painted on the CPU);
    `render` paints many at once on any device.
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

    def __getitem__(self, index: int) -> Tensor:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return self.render([index])[0]

    def render(self, indices, device: str | torch.device = "cpu") -> Tensor:
        """Items ``indices`` as N×3×S×S uint8 on ``device``."""
        first = self.first_index
        return render_scenes(
            self.seed,
            [first + int(i) for i in indices],
            self.image_size,
            self.dusk_fraction,
            device,
        )
