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
import ctypes
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from colorlab.color import lab_batch, to_rgb
from colorlab.data.images import ORIENTATION, open_rgb, to_uint8_chw
from colorlab.data.images import to_rgb as pil_to_rgb
from colorlab.errors import ColorlabError
from colorlab.models import model_name
from colorlab.models.heads import check_temperature
from colorlab.module import ColorizationModule

ImageLike = str | Path | Image.Image | np.ndarray
#: Pixels per strip when merging at full resolution (bounds the float buffers to ~60 MB).
STRIP_PIXELS = 1_000_000


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
        """Full-size L (1×1×H×W) + model-size ab (1×2×s×s) -> PIL RGB of size W×H.

        Equal to ``to_rgb(L, enlarge(ab_small))`` but computed in strips of rows, so that
        no full-size float copy of ab, Lab or RGB ever exists (bounded memory for any size).
        """
        return self._merge(ab_small, L.shape[-2:], lambda r0, r1: L[..., r0:r1, :])

    def _merge(self, ab_small: Tensor, size: tuple[int, int], lightness_rows) -> Image.Image:
        """Merge strip by strip; ``lightness_rows(r0, r1)`` gives L of rows r0..r1 (1×1×n×W)."""
        height, width = size
        ab_small = ab_small.to(self.device, torch.float32)
        # Bilinear upsampling is separable: columns now (2×s×W, small), rows per strip.
        ab_wide = F.interpolate(
            ab_small, size=(ab_small.shape[-2], width), mode="bilinear", align_corners=False
        )
        out = Image.new("RGB", (width, height))
        rows = max(1, STRIP_PIXELS // width)
        for r0 in range(0, height, rows):
            r1 = min(height, r0 + rows)
            ab = _upsample_rows(ab_wide, r0, r1, height)
            rgb = to_rgb(lightness_rows(r0, r1).to(self.device, torch.float32), ab)[0]
            strip = (rgb.clamp(0, 1) * 255 + 0.5).byte().permute(1, 2, 0).cpu().numpy()
            out.paste(Image.fromarray(np.ascontiguousarray(strip), mode="RGB"), (0, r0))
        return out

    def _lightness_rows(self, picture: Image.Image, r0: int, r1: int) -> Tensor:
        """L of rows r0..r1 of a picture: 1×1×(r1−r0)×W on the device."""
        strip = picture.crop((0, r0, picture.width, r1))
        return lab_batch(to_uint8_chw(strip).to(self.device).unsqueeze(0))["L"]

    def _small_lightness(self, picture: Image.Image) -> Tensor:
        """The picture's L at the model's size (1×1×s×s), as `shrink` of its full-size L but
        strip by strip: antialiased bilinear resizing is separable, so each strip is narrowed
        to s columns, then the H×s stack is resized to s rows (no full-size float buffer)."""
        rows = max(1, STRIP_PIXELS // picture.width)
        narrow = [
            _resize(
                self._lightness_rows(picture, r0, min(picture.height, r0 + rows)), None, self.size
            )
            for r0 in range(0, picture.height, rows)
        ]
        return _resize(torch.cat(narrow, dim=-2), self.size, None)

    @torch.no_grad()
    def colorize_batch(self, images: Sequence[ImageLike]) -> list[Image.Image]:
        """Colorize several pictures in one model pass; each keeps its own size. Beyond the
        pictures and their outputs, memory is bounded: all float work runs in strips of rows."""
        pictures = [as_rgb_image(image) for image in images]
        ab_small = self.predict_small_ab(torch.cat([self._small_lightness(p) for p in pictures]))
        return [
            self._merge(ab[None], (p.height, p.width), partial(self._lightness_rows, p))
            for p, ab in zip(pictures, ab_small)
        ]

    def colorize(self, image: ImageLike) -> Image.Image:
        """Colorize one picture (path, PIL image or array); a PIL RGB image of its size."""
        return self.colorize_batch([image])[0]


def return_freed_memory_to_the_os() -> None:
    """Make glibc hand large freed buffers back to the OS (Linux; elsewhere nothing).

    glibc serves buffers of up to 32 MB from its heap once one has been freed (its mmap
    threshold rises), and keeps them: strip-wise colorizing of a 100-megapixel photo then
    holds ~1 GB it no longer uses. Fixing the threshold at 1 MB keeps the peak at what the
    photo needs. `colorlab.colorize` calls this; it is process-wide.
    """
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 1 << 20)


_M_MMAP_THRESHOLD = -3


def _resize(L: Tensor, height: int | None, width: int | None) -> Tensor:
    """Antialiased bilinear resize of B×1×H×W along one axis (None keeps that axis)."""
    size = (height or L.shape[-2], width or L.shape[-1])
    return F.interpolate(L, size=size, mode="bilinear", antialias=True, align_corners=False)


def _upsample_rows(ab_wide: Tensor, r0: int, r1: int, height: int) -> Tensor:
    """Rows r0..r1 of ``ab_wide`` (B×2×h×W) bilinearly upsampled to ``height`` rows, exactly as
    `torch.nn.functional.interpolate` (``align_corners=False``) computes them."""
    h = ab_wide.shape[-2]
    source = ((torch.arange(r0, r1, device=ab_wide.device) + 0.5) * (h / height) - 0.5).clamp(min=0)
    below = source.floor().long().clamp(max=h - 1)
    above = (below + 1).clamp(max=h - 1)
    weight = (source - below).view(1, 1, -1, 1)
    return ab_wide[..., below, :] * (1 - weight) + ab_wide[..., above, :] * weight


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
    checkpoints/), e.g. ``baseline-classification@0`` for run 0 of a sweep, or
    ``unet_resnet34-mse@run``."""
    path = Path(path)
    model = model_name(module.hparams.model)
    run = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
    return f"{model}-{loss_name(module.hparams.loss)}@{run}"


def loss_name(config: dict) -> str:
    """``mse`` / ``l1`` / ``huber`` (``+cf`` with a colourfulness term) or ``classification``."""
    kind = config.get("kind") or str(config.get("_target_", "loss")).rsplit(".", 1)[-1]
    name = kind.removesuffix("Loss").lower()
    return f"{name}+cf" if config.get("colorfulness_weight") else name
