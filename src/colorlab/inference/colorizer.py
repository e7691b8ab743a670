"""Colorize any photo at full resolution with a trained network.

    from colorlab import load_colorizer
    colorizer = load_colorizer("best.ckpt", device="auto")
    picture = colorizer.colorize("photo.jpg")          # PIL RGB, the input's size

The model sees the picture at the size it was trained at; its output is decoded to ab
there (`ColorizerBase.predict_ab`, whatever its head), upsampled bilinearly to the full size
and merged with the input's full-resolution L (`colorlab.inference.merge`), so detail is kept
and only chroma comes from the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from colorlab.color import check_temperature
from colorlab.data.images import ORIENTATION, open_rgb, pil_to_rgb
from colorlab.devices import autocast, resolve_device
from colorlab.errors import ColorlabError, OptionError
from colorlab.inference.hints import Hint, as_hints, hint_map, resize_hints
from colorlab.inference.merge import Lightness, merge
from colorlab.inference.network import TrainedNetwork, load_network

ImageLike = str | Path | Image.Image | np.ndarray


def as_rgb_image(image: ImageLike) -> Image.Image:
    """A path, PIL image or array (H×W gray or H×W×3/4, uint8 or float in [0, 1]) as upright
    8-bit sRGB. Raises `colorlab.data.images.UnreadableImageError` for a bad file."""
    if isinstance(image, (str, Path)):
        return open_rgb(image)
    if isinstance(image, Image.Image):
        if image.getexif().get(ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
        return pil_to_rgb(image)
    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            array = np.clip(np.rint(array.astype(np.float64) * 255), 0, 255).astype(np.uint8)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[..., 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
            raise ValueError(f"expected an H×W or H×W×3/4 array, got shape {image.shape}")
        return pil_to_rgb(Image.fromarray(array))
    raise TypeError(
        f"cannot colorize a {type(image).__name__}; give a path, PIL image or numpy array"
    )


class TrainedColorizer:
    """A trained network ready to colorize pictures of any size (see module docstring).

    Args:
        network: the trained network (`colorlab.inference.network.load_network`).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        size: square size the model sees; default the size it was trained at.
        temperature: annealed-mean T of a classification head (default: the one it was
            trained with); ignored by regression heads.
    """

    def __init__(
        self,
        network: TrainedNetwork,
        device: str | torch.device = "auto",
        size: int | None = None,
        temperature: float | None = None,
    ):
        self.device = resolve_device(device)
        self.network = network
        self.net = network.net.to(self.device).eval()
        self.size = int(size or network.image_size)
        if self.size % self.net.multiple:
            raise OptionError(
                "size", self.size, f"use a multiple of {self.net.multiple} for this model"
            )
        if temperature is not None:
            check_temperature(temperature)
        self.temperature = temperature

    @property
    def label(self) -> str:
        """``model-loss@run``, as `colorlab.evaluate` names its rows."""
        return self.network.label

    @property
    def head_kind(self) -> str:
        """``regression`` or ``classification``: whether `temperature` means anything."""
        return "classification" if hasattr(self.net.head, "temperature") else "regression"

    def shrink(self, L: Tensor) -> Tensor:
        """L of any size (B×1×H×W) resized to the model's size (antialiased bilinear)."""
        L = L.to(self.device, torch.float32)
        return F.interpolate(
            L, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
        )

    @staticmethod
    def enlarge(ab: Tensor, size: tuple[int, ...]) -> Tensor:
        """ab (B×2×h×w) upsampled bilinearly to ``size`` (H, W)."""
        if tuple(ab.shape[-2:]) == tuple(size):
            return ab
        return F.interpolate(ab, size=size, mode="bilinear", align_corners=False)

    @property
    def takes_hints(self) -> bool:
        """Whether the network takes colour hints (trained with ``model.hints=true``, or
        SIGGRAPH17)."""
        return bool(getattr(self.net, "hints", False))

    @torch.no_grad()
    def predict_small_ab(self, L_small: Tensor, hints: Tensor | None = None) -> Tensor:
        """ab at the model's size for L already at it: B×1×s×s (and hint maps B×3×s×s, see
        `colorlab.inference.hints`) -> B×2×s×s in (-1, 1)."""
        precision = "bf16-mixed" if self.device.type == "cuda" else "32-true"
        L_small = L_small.to(self.device, torch.float32)
        with autocast(self.device, precision):
            if hints is None:
                return self.net.predict_ab(L_small, self.temperature)
            return self.net.predict_ab(L_small, self.temperature, hints=hints.to(self.device))

    @torch.no_grad()
    def predict_ab(self, L: Tensor, *, hints: Tensor | None = None) -> Tensor:
        """ab for lightness of any size: B×1×H×W (0..100), and hint maps of its size
        (B×3×H×W, `colorlab.inference.hints`) for a network that takes them -> B×2×H×W in
        (-1, 1)."""
        small = self.shrink(L)
        if hints is not None:
            hints = resize_hints(hints.to(self.device), (self.size, self.size))
        return self.enlarge(self.predict_small_ab(small, hints), L.shape[-2:])

    def lightness(self, image: ImageLike | np.ndarray) -> Lightness:
        """A picture's lightness, computed once, with its model-size L ready
        (`Lightness.small`). Arrays of H×W×3 uint8 are taken as they are (video frames)."""
        if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape[-1:] == (3,):
            lightness = Lightness(image, self.device)
        else:
            lightness = Lightness(as_rgb_image(image), self.device)
        lightness.small(self.size)
        return lightness

    @torch.no_grad()
    def predict_lightness_ab(self, lightnesses: Sequence[Lightness]) -> Tensor:
        """Model-size ab for pictures' `Lightness`: B×2×s×s, one model pass."""
        return self.predict_small_ab(torch.cat([light.small(self.size) for light in lightnesses]))

    def merge(self, ab_small: Tensor, lightness: Lightness) -> Image.Image:
        """Model-size ab (1×2×s×s) + a picture's `Lightness` -> PIL RGB of its size."""
        return merge(ab_small, lightness)

    @torch.no_grad()
    def colorize_batch(self, images: Sequence[ImageLike]) -> list[Image.Image]:
        """Colorize several pictures in one model pass; each keeps its own size. Beyond the
        pictures and their outputs, memory is bounded (`colorlab.inference.merge`)."""
        lightnesses = [self.lightness(image) for image in images]
        ab_small = self.predict_lightness_ab(lightnesses)
        return [merge(ab[None], light) for ab, light in zip(ab_small, lightnesses)]

    def colorize(
        self, image: ImageLike, hints: Iterable[Any] | None = None, hint_size: int = 1
    ) -> Image.Image:
        """Colorize one picture (path, PIL image or array); a PIL RGB image of its size.

        ``hints``: colour hints ``[(x, y, colour), …]`` (x, y in the picture's pixels, colour
        ``(r, g, b)`` 0–255 or ``"#rrggbb"``; see `colorlab.inference.hints`), each marking
        the model-input pixel under it (a square of ``hint_size``). A network trained without
        hints given some, a hint off the picture or a bad colour: `ColorlabError` (naming the
        hint)."""
        if hints is None:
            return self.colorize_batch([image])[0]
        lightness = self.lightness(image)
        try:
            placed = as_hints(hints, lightness.width, lightness.height)
        except ValueError as error:
            raise ColorlabError(str(error)) from None
        return self.colorize_with_hints(lightness, placed, hint_size)

    @torch.no_grad()
    def colorize_with_hints(
        self, lightness: Lightness, hints: Sequence[Hint], hint_size: int = 1
    ) -> Image.Image:
        """Colorize a picture's `Lightness` with checked `Hint`s (see `colorize`)."""
        if hints and not self.takes_hints:
            raise ColorlabError(
                f"{self.label} was trained without hints (model.hints=false): it cannot take "
                "them; train with model.hints=true (experiment=hints) or use zoo:siggraph17"
            )
        try:
            hint_input = hint_map(hints, lightness.size, self.size, hint_size, self.device)
        except ValueError as error:
            raise OptionError("hint_size", hint_size, str(error)) from None
        small = lightness.small(self.size)
        ab_small = self.predict_small_ab(small, hint_input if self.takes_hints else None)
        return merge(ab_small[0][None], lightness)


def load_colorizer(
    path: str | Path,
    device: str | torch.device = "auto",
    size: int | None = None,
    temperature: float | None = None,
    trusted: bool = False,
) -> TrainedColorizer:
    """Load a colorlab checkpoint (it holds its own config), a safetensors or an ONNX file
    written by ``colorlab.export`` (ONNX run by onnxruntime), for inference; see
    `TrainedColorizer` for ``size`` and ``temperature``. Files are read so that they cannot
    run code (`colorlab.loading`); ``trusted=True`` unpickles a checkpoint in full, for a file
    whose author you trust."""
    device = resolve_device(device)
    if Path(path).suffix.lower() == ".onnx":
        from colorlab.inference.onnx import load_onnx_network

        return TrainedColorizer(load_onnx_network(path, device), device, size, temperature)
    return TrainedColorizer(load_network(path, device, trusted), device, size, temperature)
