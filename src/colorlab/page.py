"""The web page of ``colorlab.demo``: upload a photo, pick a checkpoint (and a temperature for a
classification one), see gray | colorized side by side (a preview of at most
`colorlab.web.PREVIEW_PIXELS`) and download the colorized photo at its full resolution. Built on
`colorlab.inference` (``load_colorizer``): no second colorize path.

The page works with no network: Gradio's analytics are off, the theme uses system fonts, and
the server listens on loopback unless told otherwise. Import it after
`colorlab.web.disable_analytics`. (No ``from __future__ import annotations`` here: Gradio reads
the ``gr.Request`` annotation of the callbacks at run time.)
"""

from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from colorlab.data.images import UnreadableImageError
from colorlab.inference.colorizer import as_rgb_image
from colorlab.web import (
    Colorizers,
    ResultFiles,
    photo_scores,
    picture_colorfulness,
    preview,
)


def _reason(error: BaseException, photo: str, name: str) -> str:
    """Why a photo cannot be read, naming the upload (never the server's cache path)."""
    reason = getattr(error, "reason", None) or str(error) or type(error).__name__
    return str(reason).replace(str(photo), name).replace(str(Path(photo).parent) + "/", "")


def optional(slider: gr.Slider) -> gr.Slider:
    """``slider`` taking None through the API (``temperature=None``: the checkpoint's own),
    where Gradio's slider refuses it. (On the instance: a subclass would make Gradio write a
    type stub beside this module at import.)"""
    preprocess = slider.preprocess
    # replacing a method of one instance is what mypy refuses in general
    slider.preprocess = lambda payload: None if payload is None else preprocess(payload)  # type: ignore[method-assign]
    return slider


def build_page(
    checkpoints: list[Path],
    colorizers: Colorizers,
    examples: list[Path],
    max_megapixels: float,
    output_dir: Path,
) -> Any:
    """The Gradio Blocks of the page (not launched). Each request's files go into a folder of
    its own under ``output_dir`` (`ResultFiles`; the page's ``results``)."""
    labels: dict[str, Path] = {}
    for path in checkpoints:  # labelled as evaluate labels its rows, the file where ambiguous
        label = colorizers.get(path).label
        labels[label if label not in labels else f"{label} ({path.name})"] = path
    first = next(iter(labels))
    results = ResultFiles(output_dir)

    def temperature_control(label: str) -> dict:
        colorizer = colorizers.get(labels[label])
        if colorizer.head_kind != "classification":
            return gr.update(
                interactive=False, label="temperature (classification checkpoints only)"
            )
        return gr.update(
            interactive=True, value=colorizer.net.head.temperature, label="temperature"
        )

    def forget_session(request: gr.Request) -> None:
        if request.session_hash:
            results.forget(request.session_hash)

    def colorize(
        photo: str | None,
        label: str = first,
        temperature: float | None = None,
        request: gr.Request | None = None,
    ):
        """Colorize one photo: (gray, colorized) previews for the slider, the full-resolution
        PNG, a line of text and, for a colour upload, a preview of the photo itself (its
        truth). ``temperature`` None: the checkpoint's own."""
        if photo is None:
            return None, None, "Upload a photo first.", None
        name = Path(photo).name
        frames = 1
        try:
            with Image.open(photo) as probe:
                megapixels = probe.width * probe.height / 1e6
                frames = int(getattr(probe, "n_frames", 1) or 1)
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
            reason = _reason(error, photo, name)
            return None, None, f"**Cannot read {name}**: {reason}. Try another photo.", None
        colorizer = colorizers.get(labels[label if label in labels else first])
        with colorizers.lock:  # one request at a time may set a shared colorizer's temperature
            colorizer.temperature = (
                float(temperature)
                if colorizer.head_kind == "classification" and temperature is not None
                else None
            )
            used_temperature = colorizer.temperature
            colorized = colorizer.colorize(picture)
        folder = results.new_folder(getattr(request, "session_hash", None) or "api")
        target = folder / f"{Path(name).stem}_colorized.png"
        colorized.save(target)
        shown, photo_shown = preview(colorized), preview(picture)
        gray_file, colorized_file = folder / "gray.png", folder / "colorized.png"
        photo_shown.convert("L").convert("RGB").save(gray_file)
        shown.save(colorized_file)
        text = f"{colorizer.label} · {colorized.width}×{colorized.height}"
        if used_temperature is not None:
            text += f" · temperature {used_temperature:g}"
        elif colorizer.head_kind == "classification":
            text += f" · temperature {colorizer.net.head.temperature:g} (its own)"
        if frames > 1:
            text += f" · only the first of its {frames} frames was colorized"
        if shown is not colorized:
            text += f" · preview {shown.width}×{shown.height}, the download at full size"
        truth_colorfulness = picture_colorfulness(picture)
        truth_file = None
        if truth_colorfulness > 1:  # a colour upload: score against it
            truth_file = folder / "photo.png"
            photo_shown.save(truth_file)
            text += " · " + photo_scores(colorized, picture, truth_colorfulness)
        return (
            (str(gray_file), str(colorized_file)),
            str(target),
            text,
            (str(truth_file) if truth_file else None),
        )

    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "Consolas", "monospace"],
    )
    # Gradio's own copies (uploads) older than an hour are removed every ten minutes.
    with gr.Blocks(analytics_enabled=False, title="colorlab", delete_cache=(600, 3600)) as page:
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
                temperature = optional(
                    gr.Slider(
                        0.05, 1.0, value=0.38, step=0.01, label="temperature", elem_id="temperature"
                    )
                )
                run = gr.Button("Colorize", variant="primary", elem_id="colorize")
            with gr.Column():
                result = gr.ImageSlider(
                    label="gray | colorized (preview)", type="filepath", elem_id="result"
                )
                download = gr.File(label="full-resolution PNG", elem_id="download")
                info = gr.Markdown(elem_id="info")
                truth = gr.Image(
                    label="the photo in colour (colour uploads)",
                    type="filepath",
                    interactive=False,
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
        checkpoint.change(
            temperature_control, [checkpoint], [temperature], api_visibility="private"
        )
        page.load(temperature_control, [checkpoint], [temperature], api_visibility="private")
        page.unload(forget_session)
    page.theme_for_launch = theme
    page.results = results
    return page
