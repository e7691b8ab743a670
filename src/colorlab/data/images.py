"""Reading photo files: find them, decode any mode to upright sRGB, resize, report bad ones."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps

from colorlab.errors import check_choice, first_line

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
RESIZE_MODES = ("squash", "crop")
_SRGB = ImageCms.createProfile("sRGB")


class UnreadableImageError(Exception):
    """A file that cannot be decoded as an image."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class TooLargeImageError(UnreadableImageError):
    """A readable file with more pixels than Pillow is allowed to decode
    (``Image.MAX_IMAGE_PIXELS``; colorize's ``colorize.max_megapixels``)."""


def find_images(root: Path) -> list[Path]:
    """All files below ``root`` (recursively) with an image extension, sorted."""
    return sorted(
        p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )


def _sixteen_bit_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit or float grayscale -> 8-bit RGB, scaling the range instead of clipping it."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        peak = 1.0 if values.max(initial=0.0) <= 1.0 else 255.0
    else:
        peak = 65535.0 if values.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
    gray = np.clip(np.rint(values * (255.0 / peak)), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")


def pil_to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit sRGB correctly.

    Transparent pixels are composited on white, 16-bit and float gray is rescaled (not
    clipped), CMYK with an ICC profile goes through colour management.
    """
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        return _sixteen_bit_to_rgb(image)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    profile = image.info.get("icc_profile")
    if image.mode == "CMYK" and profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
            if converted is not None:  # None only when converting in place
                return converted
        except (ImageCms.PyCMSError, OSError) as error:
            log.debug("colour management failed (%s); using a plain CMYK conversion", error)
    return image if image.mode == "RGB" else image.convert("RGB")


ORIENTATION = 0x0112  # the EXIF tag


def open_rgb(path: Path | str, draft_size: int | None = None) -> Image.Image:
    """Decode ``path`` as upright 8-bit sRGB (EXIF orientation applied).

    Args:
        path: an image file.
        draft_size: if given, JPEGs may be decoded at a reduced scale no smaller than this.

    Raises:
        UnreadableImageError: the file is missing, empty, truncated or not an image.
    """
    try:
        with Image.open(path) as image:
            if draft_size is not None and image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            image.load()
            upright: Image.Image = image
            if image.getexif().get(ORIENTATION, 1) != 1:  # transposing copies: only if needed
                upright = ImageOps.exif_transpose(image)
            return pil_to_rgb(upright)
    except Image.DecompressionBombError as error:
        size = str(error).split(", could")[0]  # "Image size (N pixels) exceeds limit of M pixels"
        raise TooLargeImageError(
            path, f"{size}: Pillow's decompression-bomb guard; colorize.max_megapixels raises it"
        ) from error
    except (OSError, ValueError, SyntaxError) as error:
        reason = first_line(error)
        raise UnreadableImageError(path, reason) from error


def frame_count(path: Path | str) -> int:
    """How many frames an image file holds (animated GIF, WebP, APNG, multi-page TIFF); 1 for
    a still picture or a file that cannot be opened."""
    try:
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return 1


def resize(image: Image.Image, size: int, mode: str = "squash") -> Image.Image:
    """Resize to ``size``×``size``: ``squash`` ignores the aspect ratio (the reference's way),
    ``crop`` scales the short side to ``size`` and cuts the centre."""
    check_choice("mode", mode, RESIZE_MODES)
    if mode == "crop":
        return ImageOps.fit(image, (size, size), Image.Resampling.BILINEAR)
    return image.resize((size, size), Image.Resampling.BILINEAR)


def to_uint8_chw(image: Image.Image) -> torch.Tensor:
    """An RGB Pillow image as a 3×H×W uint8 tensor."""
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def load_uint8(path: Path | str, size: int, mode: str = "squash") -> torch.Tensor:
    """Decode and resize one file: 3×size×size uint8. Raises `UnreadableImageError`."""
    return to_uint8_chw(resize(open_rgb(path, draft_size=size), size, mode))


@dataclass
class SkipReport:
    """Files left out of a data set, by reason; logs one warning per unreadable file."""

    unreadable: list[tuple[str, str]] = field(default_factory=list)
    black_or_white: list[str] = field(default_factory=list)
    colourless: list[str] = field(default_factory=list)

    def add_unreadable(self, error: UnreadableImageError) -> None:
        self.unreadable.append((error.path, error.reason))
        log.warning("skipped unreadable image %s (%s)", error.path, error.reason)

    @property
    def total(self) -> int:
        return len(self.unreadable) + len(self.black_or_white) + len(self.colourless)

    def summary(self, used: int) -> str:
        return (
            f"{used} images used; left out: {len(self.unreadable)} unreadable, "
            f"{len(self.black_or_white)} entirely black or white, "
            f"{len(self.colourless)} nearly colourless"
        )

    def merge(self, other: SkipReport) -> None:
        """Add ``other``'s files to this report."""
        self.unreadable += other.unreadable
        self.black_or_white += other.black_or_white
        self.colourless += other.colourless
