"""Pictures for people: labelled grids of gray | prediction | ground truth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

_GAP = 4
_HEADER = 18
_LINE = 12
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


def labelled_grid(
    rows: Sequence[Sequence[Image.Image]], titles: Sequence[str], cell: int | None = None
) -> Image.Image:
    """A grid with one column title each; every cell is shown at ``cell``×``cell`` pixels
    (default: the first cell's width), so pictures of different sizes line up."""
    if not rows:
        raise ValueError("a grid needs at least one row")
    cell = cell or rows[0][0].width
    columns = len(titles)
    font = ImageFont.load_default()
    wrapped = [_wrap(title, font, cell - 4) for title in titles]
    header = _HEADER + _LINE * (max(len(lines) for lines in wrapped) - 1)
    width = columns * cell + (columns - 1) * _GAP
    height = header + len(rows) * cell + (len(rows) - 1) * _GAP
    grid = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for c, lines in enumerate(wrapped):
        for k, line in enumerate(lines):
            draw.text((c * (cell + _GAP) + 2, 3 + k * _LINE), line, fill=(0, 0, 0), font=font)
    for r, row in enumerate(rows):
        if len(row) != columns:
            raise ValueError(f"row {r} has {len(row)} pictures for {columns} titles")
        for c, picture in enumerate(row):
            resized = picture.resize((cell, cell), Image.Resampling.BILINEAR)
            grid.paste(resized, (c * (cell + _GAP), header + r * (cell + _GAP)))
    return grid


def _wrap(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` pixels (at any character)."""
    lines = [""]
    for char in text:
        if lines[-1] and font.getlength(lines[-1] + char) > width:
            lines.append("")
        lines[-1] += char
    return lines
