"""The web page of ``colorlab.demo``: upload a photo, pick a checkpoint (and a temperature for a
classification one), see gray | colorized side by side (a preview of at most
`colorlab.web.PREVIEW_PIXELS`) and download the colorized photo at its full resolution. For a
checkpoint that takes colour hints, click on the photo to place one in the picker's colour
(remove the last, clear them); the result follows each change. Built on `colorlab.inference`
(``load_colorizer``): no second colorize path.

The page works with no network: Gradio's analytics are off, the theme uses system fonts, and
the server listens on loopback unless told otherwise. Import it after
`colorlab.web.disable_analytics`. (No ``from __future__ import annotations`` here: Gradio reads
the ``gr.Request`` annotation of the callbacks at run time.)
"""

import json
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from colorlab.data.images import UnreadableImageError
from colorlab.errors import ColorlabError
from colorlab.inference.colorizer import as_rgb_image
from colorlab.web import (
    Colorizers,
    ResultFiles,
    draw_hints,
    hex_colour,
    page_hints,
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

    def hint_canvas(photo: str | None):
        """A new photo: its gray preview to click on, no hints yet."""
        if photo is None:
            return None, None, ""
        try:
            picture = as_rgb_image(photo)
        except (UnreadableImageError, OSError, ValueError, Image.DecompressionBombError):
            return None, None, ""  # colorize says why
        shown = preview(picture).convert("L").convert("RGB")
        return shown, (shown, shown.width / picture.width), ""

    def place_hint(base, hints: str, colour: str, event: gr.SelectData):
        """A click on the photo at ``event.index`` (the preview's pixels): one more hint."""
        if base is None:
            return gr.update(), hints
        shown, scale = base
        placed = page_hints(hints)
        x, y = event.index[0] / scale, event.index[1] / scale
        placed.append({"x": round(x, 1), "y": round(y, 1), "color": hex_colour(colour)})
        return draw_hints(shown, placed, scale), json.dumps(placed)

    def remove_hints(base, hints: str, keep: int | None):
        """The last hint removed (``keep`` None) or all of them (``keep`` 0)."""
        placed = page_hints(hints)
        placed = placed[:-1] if keep is None else placed[:keep]
        if base is None:
            return None, json.dumps(placed) if placed else ""
        shown, scale = base
        return draw_hints(shown, placed, scale), json.dumps(placed) if placed else ""

    def forget_session(request: gr.Request) -> None:
        if request.session_hash:
            results.forget(request.session_hash)

    def colorize(
        photo: str | None,
        label: str = first,
        temperature: float | None = None,
        hints: str = "",
        request: gr.Request | None = None,
    ):
        """Colorize one photo: (gray, colorized) previews for the slider, the full-resolution
        PNG, a line of text and, for a colour upload, a preview of the photo itself (its
        truth). ``temperature`` None: the checkpoint's own. ``hints``: a JSON list of
        ``{"x", "y", "color"}`` in the photo's pixels, for a checkpoint that takes them."""
        if photo is None:
            return None, None, "Upload a photo first.", None
        try:
            placed = page_hints(hints)
        except ValueError as error:
            return None, None, f"**Hints not used**: {error}.", None
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
        ignored = bool(placed) and not colorizer.takes_hints
        with colorizers.lock:  # one request at a time may set a shared colorizer's temperature
            colorizer.temperature = (
                float(temperature)
                if colorizer.head_kind == "classification" and temperature is not None
                else None
            )
            used_temperature = colorizer.temperature
            try:
                colorized = colorizer.colorize(picture, None if ignored else placed or None)
            except ColorlabError as error:  # a hint off the photo, a bad colour
                return None, None, f"**Hints not used**: {error}.", None
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
        if placed and not ignored:
            text += f" · {len(placed)} hint{'s' if len(placed) != 1 else ''}"
        if ignored:
            text += " · hints ignored: this checkpoint was trained without hints"
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
                canvas = gr.Image(
                    label="click on the photo to place a colour hint (checkpoints with hints)",
                    type="pil",
                    interactive=False,
                    elem_id="hint-canvas",
                )
                with gr.Row():
                    colour = gr.ColorPicker("#d02020", label="hint colour", elem_id="hint-colour")
                    undo = gr.Button("remove the last hint", size="sm", elem_id="hint-undo")
                    clear = gr.Button("clear hints", size="sm", elem_id="hint-clear")
                # the hints in the photo's pixels, as the /colorize API takes them
                hints = gr.Textbox("", visible=False, elem_id="hints")
                base = gr.State(None)
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
        inputs, outputs = [photo, checkpoint, temperature, hints], [result, download, info, truth]
        run.click(colorize, inputs, outputs, api_name="colorize")
        photo.change(hint_canvas, [photo], [canvas, base, hints], api_visibility="private")
        for event, handler, extra in (
            (canvas.select, place_hint, [colour]),
            (undo.click, lambda b, h: remove_hints(b, h, None), []),
            (clear.click, lambda b, h: remove_hints(b, h, 0), []),
        ):
            event(handler, [base, hints, *extra], [canvas, hints], api_visibility="private").then(
                colorize, inputs, outputs, api_visibility="private"
            )
        checkpoint.change(
            temperature_control, [checkpoint], [temperature], api_visibility="private"
        )
        page.load(temperature_control, [checkpoint], [temperature], api_visibility="private")
        page.unload(forget_session)
    page.theme_for_launch = theme
    page.results = results
    return page
