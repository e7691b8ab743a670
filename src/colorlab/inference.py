"""Colorize any photo at full resolution with a trained checkpoint.

    from colorlab import load_colorizer
    colorizer = load_colorizer("best.ckpt", device="auto")
    picture = colorizer.colorize("photo.jpg")          # PIL RGB, the input's size

The model sees the picture at the size it was trained at; its output is decoded to ab
there (`Colorizer.predict_ab`, whatever its head), upsampled bilinearly to the full size and
merged with the input's full-resolution L, so detail is kept and only chroma comes from
the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from colorlab.color import lab_batch, to_rgb
from colorlab.data.images import open_rgb, to_uint8_chw
from colorlab.data.images import to_rgb as pil_to_rgb
from colorlab.errors import ColorlabError
from colorlab.models.heads import check_temperature
from colorlab.module import ColorizationModule
from colorlab.pictures import to_pil

ImageLike = str | Path | Image.Image | np.ndarray
ORIENTATION = 0x0112  # the EXIF tag


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ColorlabError(
            f"device={device!r} is not a device; choose auto, cpu, cuda or cuda:N"
        ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ColorlabError(
            f"device={device} asked for, but CUDA is not available; use device=auto or cpu"
        )
    return device


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
    """A trained model ready to colorize pictures of any size (see module docstring).

    Args:
        module: a trained `ColorizationModule`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        size: square size the model sees; default the size it was trained at.
        temperature: annealed-mean T of a classification head (default: the one it was
            trained with); ignored by regression heads.
    """

    def __init__(
        self,
        module: ColorizationModule,
        device: str | torch.device = "auto",
        size: int | None = None,
        temperature: float | None = None,
    ):
        self.device = resolve_device(device)
        self.module = module.to(self.device).eval()
        self.size = int(size or module.image_size)
        multiple = module.net.multiple
        if self.size % multiple:
            raise ColorlabError(f"size={self.size} must be a multiple of {multiple} for this model")
        if temperature is not None:
            check_temperature(temperature, "temperature")
        self.temperature = temperature

    @property
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA, nothing on the CPU."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def shrink(self, L: Tensor) -> Tensor:
        """L of any size (B×1×H×W) resized to the model's size (antialiased bilinear)."""
        L = L.to(self.device, torch.float32)
        return F.interpolate(
            L, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
        )

    @staticmethod
    def enlarge(ab: Tensor, size: tuple[int, int]) -> Tensor:
        """ab (B×2×h×w) upsampled bilinearly to ``size`` (H, W)."""
        if tuple(ab.shape[-2:]) == tuple(size):
            return ab
        return F.interpolate(ab, size=size, mode="bilinear", align_corners=False)

    @torch.no_grad()
    def predict_small_ab(self, L_small: Tensor) -> Tensor:
        """ab at the model's size for L already at it: B×1×s×s -> B×2×s×s in (-1, 1)."""
        with self.autocast:
            return self.module.net.predict_ab(
                L_small.to(self.device, torch.float32), self.temperature
            )

    @torch.no_grad()
    def predict_ab(self, L: Tensor) -> Tensor:
        """ab for lightness of any size: B×1×H×W (0..100) -> B×2×H×W in (-1, 1)."""
        return self.enlarge(self.predict_small_ab(self.shrink(L)), L.shape[-2:])

    def merge(self, L: Tensor, ab_small: Tensor) -> Image.Image:
        """Full-size L (1×1×H×W) + model-size ab (1×2×s×s) -> PIL RGB of size W×H."""
        return to_pil(to_rgb(L, self.enlarge(ab_small, L.shape[-2:]))[0])

    def _lightness(self, picture: Image.Image) -> Tensor:
        """1×1×H×W L of a picture, on the device."""
        return lab_batch(to_uint8_chw(picture).to(self.device).unsqueeze(0))["L"]

    @torch.no_grad()
    def colorize_batch(self, images: Sequence[ImageLike]) -> list[Image.Image]:
        """Colorize several pictures in one model pass; each keeps its own size."""
        lightness = [self._lightness(as_rgb_image(image)) for image in images]
        ab_small = self.predict_small_ab(torch.cat([self.shrink(L) for L in lightness]))
        return [self.merge(L, ab[None]) for L, ab in zip(lightness, ab_small)]

    def colorize(self, image: ImageLike) -> Image.Image:
        """Colorize one picture (path, PIL image or array); a PIL RGB image of its size."""
        return self.colorize_batch([image])[0]


def load_colorizer(
    path: str | Path,
    device: str | torch.device = "auto",
    size: int | None = None,
    temperature: float | None = None,
) -> TrainedColorizer:
    """Load a colorlab checkpoint (it holds its own config) for inference; see
    `TrainedColorizer` for ``size`` and ``temperature``."""
    device = resolve_device(device)
    module = ColorizationModule.from_checkpoint(path, map_location=device)
    return TrainedColorizer(module, device=device, size=size, temperature=temperature)


def checkpoint_label(path: str | Path, module: ColorizationModule) -> str:
    """A readable name for a checkpoint: ``model-loss@run`` (run: the folder holding
    checkpoints/), e.g. ``baseline-classification@0`` for run 0 of a sweep."""
    path = Path(path)
    model = str(module.hparams.model.get("_target_", "model")).rsplit(".", 1)[-1]
    run = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
    return f"{model}-{loss_name(module.hparams.loss)}@{run}"


def loss_name(config: dict) -> str:
    """``mse`` / ``l1`` / ``huber`` (``+cf`` with a colourfulness term) or ``classification``."""
    kind = config.get("kind") or str(config.get("_target_", "loss")).rsplit(".", 1)[-1]
    name = kind.removesuffix("Loss").lower()
    return f"{name}+cf" if config.get("colorfulness_weight") else name
