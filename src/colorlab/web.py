"""The web page of ``colorlab.demo``: upload a photo, pick a checkpoint (and a temperature for a
classification one), see gray | colorized side by side at the photo's full resolution and
download it. Built on `colorlab.inference` (``load_colorizer``): no second colorize path.

The page works with no network: Gradio's analytics are off, the theme uses system fonts, and
the server listens on loopback unless told otherwise.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from colorlab.color import colorfulness
from colorlab.data.images import UnreadableImageError
from colorlab.errors import ColorlabError
from colorlab.inference.colorizer import TrainedColorizer, as_rgb_image, load_colorizer

#: What a checkpoint folder is searched for.
_PATTERNS = ("best*.ckpt", "last.ckpt", "*.onnx")


def find_checkpoints(paths: list[str]) -> list[Path]:
    """Checkpoint files named by ``paths``: files as they are, folders (runs or sweeps)
    searched for their best and last checkpoints and ONNX files."""
    found: list[Path] = []
    for item in paths:
        path = Path(item).expanduser()
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            for pattern in _PATTERNS:
                found += sorted(path.rglob(pattern))
        else:
            raise ColorlabError(
                f"ckpt {path} does not exist; give a checkpoint, an .onnx file or a run folder"
            )
    if not found:
        raise ColorlabError(
            f"no checkpoint found in {', '.join(paths)} (looked for {', '.join(_PATTERNS)})"
        )
    return list(dict.fromkeys(found))


class Colorizers:
    """Loaded colorizers, the ``size`` most recently used kept (an LRU)."""

    def __init__(self, device: str, size: int = 3):
        self.device, self.size = device, size
        self._loaded: OrderedDict[Path, TrainedColorizer] = OrderedDict()

    def get(self, path: Path) -> TrainedColorizer:
        if path in self._loaded:
            self._loaded.move_to_end(path)
        else:
            self._loaded[path] = load_colorizer(path, device=self.device)
            while len(self._loaded) > self.size:
                self._loaded.popitem(last=False)
        return self._loaded[path]


def picture_colorfulness(picture: Image.Image) -> float:
    """`colorlab.color.colorfulness` of an 8-bit RGB picture."""
    return float(
        colorfulness(torch.from_numpy(np.asarray(picture)).permute(2, 0, 1)[None] / 255.0)[0]
    )


def photo_scores(colorized: Image.Image, truth: Image.Image, truth_colorfulness: float) -> str:
    """PSNR (dB, on 8-bit RGB) and ΔCF of a colorized photo against its colour original."""
    a = np.asarray(colorized, np.float64)
    b = np.asarray(truth, np.float64)
    mse = np.mean((a - b) ** 2)
    psnr = float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
    cf = [picture_colorfulness(colorized), truth_colorfulness]
    return f"PSNR {psnr:.2f} dB · colourfulness {cf[0]:.1f} (photo {cf[1]:.1f}, ΔCF {abs(cf[0] - cf[1]):.1f})"


def build_page(
    checkpoints: list[Path],
    colorizers: Colorizers,
    examples: list[Path],
    max_megapixels: float,
    output_dir: Path,
) -> Any:
    """The Gradio Blocks of the page (not launched)."""
    import gradio as gr

    labels: dict[str, Path] = {}
    for path in checkpoints:  # labelled as evaluate labels its rows, the file where ambiguous
        label = colorizers.get(path).label
        labels[label if label not in labels else f"{label} ({path.name})"] = path
    first = next(iter(labels))

    def temperature_control(label: str) -> dict:
        colorizer = colorizers.get(labels[label])
        if colorizer.head_kind != "classification":
            return gr.update(
                interactive=False, label="temperature (classification checkpoints only)"
            )
        return gr.update(
            interactive=True, value=colorizer.net.head.temperature, label="temperature"
        )

    def colorize(photo: str | None, label: str = first, temperature: float | None = None):
        """Colorize one photo: (gray, colorized) for the slider, the PNG, a line of text and,
        for a colour upload, the photo itself (its truth)."""
        if photo is None:
            return None, None, "Upload a photo first.", None
        name = Path(photo).name
        try:
            with Image.open(photo) as probe:
                megapixels = probe.width * probe.height / 1e6
            if megapixels > max_megapixels:
                return (
                    None,
                    None,
                    (
                        f"**{name}** has {megapixels:.1f} megapixels, more than "
                        f"colorize.max_megapixels={max_megapixels:g}: not colorized."
                    ),
                    None,
                )
            picture = as_rgb_image(photo)
        except (UnreadableImageError, OSError, ValueError, Image.DecompressionBombError) as error:
            reason = getattr(error, "reason", None) or str(error)
            return None, None, f"**Cannot read {name}**: {reason}. Try another photo.", None
        colorizer = colorizers.get(labels[label if label in labels else first])
        if colorizer.head_kind == "classification" and temperature is not None:
            colorizer.temperature = float(temperature)
        else:
            colorizer.temperature = None
        colorized = colorizer.colorize(picture)
        gray = picture.convert("L").convert("RGB")
        target = Path(tempfile.mkdtemp(dir=output_dir)) / f"{Path(name).stem}_colorized.png"
        colorized.save(target)
        text = f"{colorizer.label} · {colorized.width}×{colorized.height}"
        if colorizer.temperature is not None:
            text += f" · temperature {colorizer.temperature:g}"
        truth_colorfulness = picture_colorfulness(picture)
        truth = picture if truth_colorfulness > 1 else None  # a colour upload: score against it
        if truth is not None:
            text += " · " + photo_scores(colorized, picture, truth_colorfulness)
        return (gray, colorized), str(target), text, truth

    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "Consolas", "monospace"],
    )
    with gr.Blocks(analytics_enabled=False, title="colorlab") as page:
        gr.Markdown("# colorlab\nUpload a photo (a colour one is taken as its lightness).")
        with gr.Row():
            with gr.Column():
                # a file, not gr.Image: an upload Gradio could not decode would fail before
                # colorize could say so in the page
                photo = gr.File(
                    type="filepath", label="photo (any image Pillow reads)", elem_id="photo"
                )
                checkpoint = gr.Dropdown(
                    list(labels), value=first, label="checkpoint", elem_id="checkpoint"
                )
                temperature = gr.Slider(
                    0.05, 1.0, value=0.38, step=0.01, label="temperature", elem_id="temperature"
                )
                run = gr.Button("Colorize", variant="primary", elem_id="colorize")
            with gr.Column():
                result = gr.ImageSlider(
                    label="gray | colorized", type="pil", format="png", elem_id="result"
                )
                download = gr.File(label="full-resolution PNG", elem_id="download")
                info = gr.Markdown(elem_id="info")
                truth = gr.Image(
                    label="the photo in colour (colour uploads)",
                    type="pil",
                    interactive=False,
                    format="png",
                    elem_id="truth",
                )
        if examples:
            gr.Examples([[str(p)] for p in examples], inputs=[photo], label="examples")
        run.click(
            colorize,
            [photo, checkpoint, temperature],
            [result, download, info, truth],
            api_name="colorize",
        )
        checkpoint.change(temperature_control, [checkpoint], [temperature], api_name=False)
        page.load(temperature_control, [checkpoint], [temperature], api_name=False)
    page.theme_for_launch = theme
    return page


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
