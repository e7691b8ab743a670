"""Pictures for people: labelled grids of gray | prediction | ground truth."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

#: Cells of sample and comparison pictures are at least this many pixels wide.
MIN_CELL = 256
_GAP = 4
_GROUP_GAP = 24
_FONT_SIZE = 16
_LINE = 20
_BACKGROUND = (255, 255, 255)


def to_pil(rgb: Tensor) -> Image.Image:
    """A 3×H×W tensor in [0, 1] as a Pillow RGB image."""
    array = (rgb.detach().float().clamp(0, 1) * 255 + 0.5).byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(array), mode="RGB")


def side_by_side(panels: Sequence[Image.Image], gap: int = _GAP) -> Image.Image:
    """Panels of equal height in one row, separated by white gaps."""
    height = max(p.height for p in panels)
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    row = Image.new("RGB", (width, height), _BACKGROUND)
    x = 0
    for panel in panels:
        row.paste(panel, (x, 0))
        x += panel.width + gap
    return row


def grid_groups(num_rows: int, num_columns: int, aspect: float = 4 / 3) -> int:
    """How many blocks of columns to lay ``num_rows`` rows out in, side by side, so that the
    grid is closest to ``aspect`` (width / height) with square cells."""

    def mismatch(groups: int) -> float:
        shape = (groups * num_columns) / math.ceil(num_rows / groups)
        return abs(math.log(shape / aspect))

    return min(range(1, max(num_rows, 1) + 1), key=mismatch)


def labelled_grid(
    rows: Sequence[Sequence[Image.Image]],
    titles: Sequence[str],
    cell: int | None = None,
    groups: int | None = None,
) -> Image.Image:
    """Rows of pictures under column titles, every cell ``cell``×``cell`` pixels.

    Args:
        rows: pictures, one per title in each row (any sizes).
        titles: column titles, wrapped at word boundaries to the cell width.
        cell: cell size; default the first picture's width but at least `MIN_CELL`, so small
            pictures are upscaled (pixel-exact, nearest neighbour) to a readable size.
        groups: rows are laid out in this many blocks side by side (each block under its
            own titles); default `grid_groups`, a roughly 4:3 picture.
    """
    if not rows:
        raise ValueError("a grid needs at least one row")
    columns = len(titles)
    for r, row in enumerate(rows):
        if len(row) != columns:
            raise ValueError(f"row {r} has {len(row)} pictures for {columns} titles")
    cell = cell or max(MIN_CELL, rows[0][0].width)
    groups = max(1, min(groups or grid_groups(len(rows), columns), len(rows)))
    per_group = math.ceil(len(rows) / groups)
    font = _font()
    wrapped = [_wrap(title, font, cell - 4) for title in titles]
    header = _LINE * max(len(lines) for lines in wrapped) + 8
    block = columns * cell + (columns - 1) * _GAP
    width = groups * block + (groups - 1) * _GROUP_GAP
    height = header + per_group * cell + (per_group - 1) * _GAP
    grid = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for g in range(groups):
        left = g * (block + _GROUP_GAP)
        for c, lines in enumerate(wrapped):
            for k, line in enumerate(lines):
                draw.text((left + c * (cell + _GAP) + 2, 4 + k * _LINE), line, fill=0, font=font)
        for r, row in enumerate(rows[g * per_group : (g + 1) * per_group]):
            for c, picture in enumerate(row):
                position = (left + c * (cell + _GAP), header + r * (cell + _GAP))
                grid.paste(_fit(picture, cell), position)
    return grid


def _fit(picture: Image.Image, cell: int) -> Image.Image:
    """``picture`` as cell×cell: nearest-neighbour when enlarging, Lanczos when shrinking."""
    if picture.size == (cell, cell):
        return picture
    enlarging = picture.width < cell and picture.height < cell
    method = Image.Resampling.NEAREST if enlarging else Image.Resampling.LANCZOS
    return picture.resize((cell, cell), method)


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at a readable size (its bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=_FONT_SIZE)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def _wrap(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` pixels, at spaces; a single word
    wider than a line is broken inside it."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(candidate) <= width:
            lines[-1] = candidate
            continue
        while font.getlength(word) > width and len(word) > 1:
            cut = max(
                (i for i in range(1, len(word)) if font.getlength(word[:i]) <= width), default=1
            )
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines or [""]
