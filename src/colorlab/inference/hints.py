"""A user's colour hints: points of a photo and the colour each should be, read from Python
values, a JSON file or a PNG layer, and drawn into the hint map a network with hints takes.

A hint is (x, y, colour): x, y in the photo's own pixels (0 ≤ x < width, 0 ≤ y < height),
colour an ``(r, g, b)`` tuple of 0–255 or ``"#rrggbb"``; the network is given its CIELAB ab
(the hint's lightness is the photo's). Each marks the model-input pixel under it, or a square
of ``hint_size`` pixels centred there; a later hint covers an earlier one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from colorlab.color import rgb_to_l_ab

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
#: A PNG layer's pixels at least this opaque (alpha 0–255) are hints.
OPAQUE = 128


@dataclass(frozen=True)
class Hint:
    """A colour hint at (x, y) of the photo (its pixels), colour ``rgb`` (0–255 each)."""

    x: float
    y: float
    rgb: tuple[int, int, int]


def parse_colour(colour: Any) -> tuple[int, int, int]:
    """``"#rrggbb"`` or ``(r, g, b)`` of integers 0–255 -> (r, g, b); `ValueError` otherwise."""
    if isinstance(colour, str):
        match = _HEX.match(colour.strip())
        if match:
            value = match.group(1)
            return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))
    elif (
        isinstance(colour, (list, tuple))
        and len(colour) == 3
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in colour)
    ):
        return (int(colour[0]), int(colour[1]), int(colour[2]))
    raise ValueError(f"colour {colour!r} is not '#rrggbb' or (r, g, b) with each 0-255")


def as_hints(items: Iterable[Any], width: int, height: int) -> list[Hint]:
    """Hints from ``(x, y, colour)`` tuples, ``{"x", "y", "color"}`` mappings or `Hint`s, each
    checked to lie on the ``width``×``height`` photo; `ValueError` naming the hint otherwise."""
    hints = []
    for index, item in enumerate(items):
        where = f"hint {index + 1}"
        try:
            if isinstance(item, Hint):
                x, y, colour = item.x, item.y, item.rgb
            elif isinstance(item, dict):
                missing = {"x", "y", "color"} - set(item)
                if missing:
                    raise ValueError(f"has no {', '.join(sorted(missing))} (give x, y and color)")
                x, y, colour = item["x"], item["y"], item["color"]
            elif isinstance(item, (list, tuple)) and len(item) == 3:
                x, y, colour = item
            else:
                raise ValueError("is not (x, y, colour) or {x, y, color}")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y)):
                raise ValueError(f"position ({x!r}, {y!r}) is not two numbers")
            if not (0 <= x < width and 0 <= y < height):
                raise ValueError(f"at ({x}, {y}) is outside the {width}×{height} photo")
            hints.append(Hint(float(x), float(y), parse_colour(colour)))
        except ValueError as error:
            raise ValueError(f"{where} {error}") from None
    return hints


def read_hints(path: str | Path, width: int, height: int) -> list[Hint]:
    """The hints of a file for a ``width``×``height`` photo: a JSON list of
    ``{"x": …, "y": …, "color": "#rrggbb"}``, or a PNG of the photo's size whose opaque pixels
    (alpha ≥ `OPAQUE`) are the hints. `ValueError` naming the file (and the hint) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"hints file {path} does not exist")
    if path.suffix.lower() == ".json":
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"hints file {path} is not JSON ({error})") from None
        if not isinstance(items, list):
            raise ValueError(f"hints file {path} holds no list of hints")
        try:
            return as_hints(items, width, height)
        except ValueError as error:
            raise ValueError(f"hints file {path}: {error}") from None
    try:
        with Image.open(path) as layer:
            layer.load()
            rgba = np.asarray(layer.convert("RGBA"))
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(
            f"hints file {path} is neither JSON nor a readable PNG ({error})"
        ) from None
    if rgba.shape[:2] != (height, width):
        raise ValueError(
            f"hints file {path} is {rgba.shape[1]}×{rgba.shape[0]}; a hint layer must be as "
            f"large as the photo ({width}×{height})"
        )
    ys, xs = np.nonzero(rgba[..., 3] >= OPAQUE)
    return [
        Hint(float(x), float(y), (int(rgba[y, x, 0]), int(rgba[y, x, 1]), int(rgba[y, x, 2])))
        for y, x in zip(ys, xs)
    ]


def hint_map(
    hints: Sequence[Hint],
    photo_size: tuple[int, int],
    size: int,
    hint_size: int = 1,
    device: torch.device | str = "cpu",
) -> Tensor:
    """The hint map of ``hints`` on a photo of ``photo_size`` (H, W), for a network at
    ``size``×``size``: 1×3×s×s (ab in (-1, 1), then the 0/1 mask), each hint a square of
    ``hint_size`` model pixels around the one under it."""
    if isinstance(hint_size, bool) or not isinstance(hint_size, int) or hint_size < 1:
        raise ValueError(f"hint_size {hint_size!r} is not an integer >= 1")
    height, width = photo_size
    result = torch.zeros(1, 3, size, size, device=device)
    if not hints:
        return result
    rgb = torch.tensor([h.rgb for h in hints], dtype=torch.float32).t()[None, :, :, None] / 255
    ab = rgb_to_l_ab(rgb)[1][0, :, :, 0]  # 2×N, (a*, b*) / 128
    before = (hint_size - 1) // 2
    for index, hint in enumerate(hints):
        row = min(size - 1, int(hint.y * size / height))
        column = min(size - 1, int(hint.x * size / width))
        r0, c0 = max(0, row - before), max(0, column - before)
        r1, c1 = min(size, row - before + hint_size), min(size, column - before + hint_size)
        result[0, :2, r0:r1, c0:c1] = ab[:, index, None, None].to(device)
        result[0, 2, r0:r1, c0:c1] = 1.0
    return result


def resize_hints(hints: Tensor, size: tuple[int, int]) -> Tensor:
    """A hint map (B×3×H×W) at another size (h, w): shrunk, each pixel that covers a hint
    becomes one, of the mean colour of the hints it covers; enlarged, nearest neighbour."""
    if tuple(hints.shape[-2:]) == tuple(size):
        return hints
    if size[0] > hints.shape[-2] or size[1] > hints.shape[-1]:
        return F.interpolate(hints, size=size, mode="nearest")
    ab, mask = hints[:, :2], hints[:, 2:]
    pooled_mask = F.adaptive_avg_pool2d(mask, size)
    pooled_ab = F.adaptive_avg_pool2d(ab * mask, size)
    covered = pooled_mask > 0
    ab_small = torch.where(covered, pooled_ab / pooled_mask.clamp(min=1e-12), 0.0)
    return torch.cat([ab_small, covered.to(hints.dtype)], dim=1)
