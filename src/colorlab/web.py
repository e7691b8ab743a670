"""What the web page of ``colorlab.demo`` (`colorlab.page`) works with, without Gradio: the
checkpoints it serves and the colorizers it keeps loaded, the scores of a colour upload
(strip by strip, so that memory stays bounded whatever the photo's size), the previews the page
shows (the photo with its colour hints drawn on it) and the files each request writes
(`ResultFiles`)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from colorlab.errors import ColorlabError, OptionError
from colorlab.inference.colorizer import TrainedColorizer, load_colorizer
from colorlab.zoo import zoo_name

#: What a checkpoint folder is searched for.
_PATTERNS = ("best*.ckpt", "last.ckpt", "*.safetensors", "*.onnx")


def find_checkpoints(paths: list[str]) -> list[Path]:
    """Checkpoint files named by ``paths``: files and ``zoo:NAME`` as they are, folders (runs
    or sweeps) searched for their best and last checkpoints and exported files."""
    found: list[Path] = []
    for item in paths:
        path = Path(item).expanduser()
        if zoo_name(item) is not None:  # a published network: zoo:eccv16
            found.append(Path(item))
        elif path.is_file():
            found.append(path)
        elif path.is_dir():
            for pattern in _PATTERNS:
                found += sorted(path.rglob(pattern))
        else:
            raise ColorlabError(
                f"ckpt {path} does not exist; give a checkpoint, an exported file or a run folder"
            )
    if not found:
        raise ColorlabError(
            f"no checkpoint found in {', '.join(paths)} (looked for {', '.join(_PATTERNS)})"
        )
    return list(dict.fromkeys(found))


class Colorizers:
    """Loaded colorizers, the ``size`` most recently used kept (an LRU)."""

    def __init__(self, device: str, size: int = 3, trusted: bool = False):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise OptionError("models_kept", size, "use an integer ≥ 1")
        self.device, self.size, self.trusted = device, size, trusted
        self._loaded: OrderedDict[Path, TrainedColorizer] = OrderedDict()
        #: Held while a request uses a colorizer (its temperature is set per request).
        self.lock = threading.RLock()

    def get(self, path: Path) -> TrainedColorizer:
        with self.lock:
            if path in self._loaded:
                self._loaded.move_to_end(path)
            else:
                self._loaded[path] = load_colorizer(path, device=self.device, trusted=self.trusted)
                while len(self._loaded) > self.size:
                    self._loaded.popitem(last=False)
            return self._loaded[path]


#: Rows of a photo scored at a time (bounds the scores' buffers whatever the photo's size).
STRIP_PIXELS = 250_000
#: The slider and the truth show previews of at most this many pixels; the download keeps the
#: full resolution.
PREVIEW_PIXELS = 2_000_000
#: A request's files are removed once the same session has made a newer request this many
#: seconds ago (a client may still be fetching them), when the session ends, and at exit.
RESULT_GRACE_S = 30.0


def _strips(picture: Image.Image):
    """A picture as float64 H'×W×3 arrays of consecutive rows, about `STRIP_PIXELS` each."""
    rows = max(1, STRIP_PIXELS // max(1, picture.width))
    for r0 in range(0, picture.height, rows):
        yield np.asarray(
            picture.crop((0, r0, picture.width, min(r0 + rows, picture.height))), np.float64
        )


class _Colourfulness:
    """`colorlab.color.colorfulness`, accumulated over strips of one picture."""

    def __init__(self) -> None:
        self.n, self.sums = 0, np.zeros(4)  # Σrg, Σyb, Σrg², Σyb²

    def add(self, rgb: np.ndarray) -> None:
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        rg, yb = np.abs(r - g), np.abs(0.5 * (r + g) - b)
        self.n += rg.size
        self.sums += (rg.sum(), yb.sum(), np.square(rg).sum(), np.square(yb).sum())

    def value(self) -> float:
        mean_rg, mean_yb, square_rg, square_yb = self.sums / max(1, self.n)
        spread = max(0.0, square_rg - mean_rg**2) + max(0.0, square_yb - mean_yb**2)
        return float(np.sqrt(spread) + 0.3 * np.sqrt(mean_rg**2 + mean_yb**2))


def picture_colorfulness(picture: Image.Image) -> float:
    """`colorlab.color.colorfulness` of an 8-bit RGB picture, strip by strip."""
    total = _Colourfulness()
    for strip in _strips(picture):
        total.add(strip)
    return total.value()


def photo_scores(colorized: Image.Image, truth: Image.Image, truth_colorfulness: float) -> str:
    """PSNR (dB, on 8-bit RGB) and ΔCF of a colorized photo against its colour original,
    strip by strip."""
    squared, pixels, colourfulness = 0.0, 0, _Colourfulness()
    for a, b in zip(_strips(colorized), _strips(truth), strict=True):
        squared += float(np.square(a - b).sum())
        pixels += a.size
        colourfulness.add(a)
    mse = squared / max(1, pixels)
    psnr = float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
    cf = [colourfulness.value(), truth_colorfulness]
    return f"PSNR {psnr:.2f} dB · colourfulness {cf[0]:.1f} (photo {cf[1]:.1f}, ΔCF {abs(cf[0] - cf[1]):.1f})"


def preview(picture: Image.Image) -> Image.Image:
    """``picture`` itself where it has at most `PREVIEW_PIXELS`, else a smaller copy."""
    pixels = picture.width * picture.height
    if pixels <= PREVIEW_PIXELS:
        return picture
    scale = (PREVIEW_PIXELS / pixels) ** 0.5
    size = (max(1, int(picture.width * scale)), max(1, int(picture.height * scale)))
    return picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


class ResultFiles:
    """The files each request wrote, in a folder of its own under ``root``, removed when its
    session has moved on (`RESULT_GRACE_S` after a newer request), when the session ends
    (`forget`) and at exit (`clear`)."""

    def __init__(self, root: Path, grace_s: float = RESULT_GRACE_S):
        self.root, self.grace_s = root, grace_s
        self._sessions: dict[str, list[tuple[Path, float]]] = {}
        self._lock = threading.Lock()

    def new_folder(self, session: str) -> Path:
        """A fresh folder for one request of ``session``; older folders of that session
        superseded more than the grace period ago are removed."""
        folder = Path(tempfile.mkdtemp(dir=self.root))
        now = time.monotonic()
        with self._lock:
            held = self._sessions.setdefault(session, [])
            # each earlier folder was superseded when the next one was made
            kept = []
            for index, (old, made) in enumerate(held):
                superseded = held[index + 1][1] if index + 1 < len(held) else now
                if now - superseded >= self.grace_s:
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    kept.append((old, made))
            self._sessions[session] = [*kept, (folder, now)]
        return folder

    def forget(self, session: str) -> None:
        """Remove every folder of ``session`` (its page was closed)."""
        with self._lock:
            for folder, _ in self._sessions.pop(session, []):
                shutil.rmtree(folder, ignore_errors=True)

    def clear(self) -> None:
        """Remove every folder (the server stops)."""
        with self._lock:
            for session in list(self._sessions):
                for folder, _ in self._sessions.pop(session):
                    shutil.rmtree(folder, ignore_errors=True)


def example_scenes(folder: Path, count: int = 4, size: int = 256) -> list[Path]:
    """A few built-in synthetic scenes as PNG files in ``folder`` (the default examples)."""
    from colorlab.data.painting import render_scenes

    folder.mkdir(parents=True, exist_ok=True)
    scenes = render_scenes(3, range(count), size, device=torch.device("cpu"))
    paths = []
    for i, scene in enumerate(scenes.permute(0, 2, 3, 1).numpy()):
        paths.append(folder / f"scene_{i}.png")
        Image.fromarray(scene).save(paths[-1])
    return paths


def disable_analytics() -> None:
    """No calls home from Gradio (set before it is imported)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"


def page_hints(text: str | None) -> list[dict[str, Any]]:
    """The page's hints (a JSON list of ``{"x", "y", "color"}`` in the photo's pixels, as the
    ``/colorize`` API takes them); `ValueError` naming what is wrong."""
    if not text or not text.strip():
        return []
    try:
        hints = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"hints are not JSON ({error})") from None
    if not isinstance(hints, list):
        raise ValueError('hints must be a JSON list of {"x": …, "y": …, "color": "#rrggbb"}')
    return hints


def draw_hints(picture: Image.Image, hints: list[dict[str, Any]], scale: float) -> Image.Image:
    """``picture`` (a preview of the photo, ``scale`` of its size) with each hint drawn as a
    dot of its colour, ringed in white and black so that it shows on any background."""
    marked = picture.convert("RGB")
    draw = ImageDraw.Draw(marked)
    radius = max(3, round(min(marked.size) / 60))
    for hint in hints:
        x, y = float(hint["x"]) * scale, float(hint["y"]) * scale
        box = (x - radius, y - radius, x + radius, y + radius)
        draw.ellipse(box, fill=str(hint["color"]), outline="white", width=max(1, radius // 3))
        draw.ellipse(
            (x - radius - 1, y - radius - 1, x + radius + 1, y + radius + 1), outline="black"
        )
    return marked


def hex_colour(value: str) -> str:
    """A colour picker's value (``#rrggbb``, ``#rgb``, ``rgb(r, g, b)`` or ``rgba(…)``) as
    ``#rrggbb``; `ValueError` for anything else."""
    text = str(value).strip()
    if text.startswith("#") and len(text) == 4:
        text = "#" + "".join(c * 2 for c in text[1:])
    if text.startswith("#") and len(text) == 7:
        int(text[1:], 16)
        return text.lower()
    if text.startswith(("rgb(", "rgba(")) and text.endswith(")"):
        parts = [p.strip() for p in text[text.index("(") + 1 : -1].split(",")]
        r, g, b = (max(0, min(255, round(float(p)))) for p in parts[:3])
        return f"#{r:02x}{g:02x}{b:02x}"
    raise ValueError(f"colour {value!r} is not #rrggbb or rgb(r, g, b)")
