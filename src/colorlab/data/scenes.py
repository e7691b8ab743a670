"""The random choices of one procedural scene (colorlab's built-in data): its palette and
a few dozen numbers and small noise grids per scene, drawn on the CPU with NumPy, a pure
function of (seed, index, dusk_fraction). `colorlab.data.painting` paints them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SKY_TOP = np.array([0.16, 0.36, 0.78], np.float32)
SKY_HORIZON = np.array([0.72, 0.84, 0.96], np.float32)
# Evening skies take these hues (violet at the top, peach at the horizon) at exactly the
# lightness, pixel by pixel, of the day sky the scene would have had: from gray alone the two
# cannot be told apart, so a model must guess; regression losses average them to grey.
DUSK_TOP = (0.47, 0.30, 0.52)
DUSK_HORIZON = (0.98, 0.78, 0.62)
SUN = (1.0, 0.86, 0.25)
CLOUD = (0.97, 0.97, 0.98)
ROCK = np.array([0.46, 0.40, 0.34], np.float32)
SNOW = (0.96, 0.97, 1.0)
GRASS = (0.30, 0.58, 0.16)
FOREST = (0.08, 0.32, 0.10)
WATER = (0.08, 0.32, 0.62)
STREET = (0.42, 0.42, 0.44)
WALLS = np.array(
    [[0.62, 0.27, 0.18], [0.72, 0.36, 0.24], [0.64, 0.63, 0.60], [0.82, 0.72, 0.52]], np.float32
)
WINDOW = (0.16, 0.22, 0.32)
GROUNDS = ("grass", "water", "city")


# -- the random choices of one scene (CPU, NumPy, in the order of earlier versions) ----------
@dataclass
class Ridge:
    """A random 1-D profile in [-1, 1] over x in [0, 1]: a normalised sum of sines."""

    freqs: np.ndarray
    phases: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, waves: int) -> Ridge:
        return cls(rng.uniform(1.0, 2.0 * waves, waves), rng.uniform(0, 2 * np.pi, waves))


def _draw_fractal(rng: np.random.Generator, cells: int, octaves: int) -> list[np.ndarray]:
    """The value-noise grids of a fractal with ``cells`` bumps per side at the first octave."""
    return [
        rng.random((cells * 2**o + 1, cells * 2**o + 1), dtype=np.float32) for o in range(octaves)
    ]


@dataclass
class Scene:
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


def draw_scene(seed: int, index: int, dusk_fraction: float) -> Scene:
    rng = np.random.default_rng([seed, index])
    horizon = rng.uniform(0.4, 0.68)
    ground = str(rng.choice(list(GROUNDS)))
    dusk = bool(dusk_fraction > 0 and rng.random() < dusk_fraction)
    scene = Scene(
        horizon=horizon,
        ground=ground,
        sky_top=np.clip(SKY_TOP + rng.normal(0, 0.04, 3).astype(np.float32), 0, 1),
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
        ridge = Ridge.draw(rng, 5)
        grain = _draw_fractal(rng, 8, 3)
        rock = np.clip(ROCK + rng.normal(0, 0.04, 3).astype(np.float32), 0, 1)
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
                "ridge": Ridge.draw(rng, 24),
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
            wall = np.clip(WALLS[rng.integers(len(WALLS))] * rng.uniform(0.85, 1.1), 0, 1)
            rows, cols = rng.integers(4, 12), rng.integers(2, 6)
            scene.buildings.append((left, width, height, wall, rows, cols))
            left += width + rng.uniform(0.0, 0.06)
    return scene
