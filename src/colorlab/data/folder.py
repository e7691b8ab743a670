"""A folder of the user's photos: scanning, vetting, splitting, the per-file dataset and
``data=folder``'s data module."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from colorlab.color import colorfulness
from colorlab.data.datamodule import SPLITS, ColorizationDataModule, check_fractions
from colorlab.data.images import (
    IMAGE_EXTENSIONS,
    RESIZE_MODES,
    SkipReport,
    UnreadableImageError,
    find_images,
    load_uint8,
    open_rgb,
    to_uint8_chw,
)
from colorlab.errors import ColorlabError, OptionError, check_choice

log = logging.getLogger(__name__)

#: A picture whose gray levels all lie within this distance of 0 or 255 is "entirely" black/white.
_BLACK_WHITE_TOLERANCE = 4
_PROBE_SIZE = 64


def vet_image(path: Path, min_colorfulness: float) -> str | None:
    """Decide whether ``path`` is fit for training.

    Returns:
        None if usable, ``"black_or_white"`` or ``"colourless"`` if it carries no colour
        to learn from. Raises `UnreadableImageError` if it cannot be decoded.
    """
    image = open_rgb(path, draft_size=_PROBE_SIZE)
    image.thumbnail((_PROBE_SIZE, _PROBE_SIZE), Image.Resampling.BILINEAR)
    low, high = image.convert("L").getextrema()  # one band: (min, max) numbers
    assert isinstance(low, (int, float)) and isinstance(high, (int, float))
    if high <= _BLACK_WHITE_TOLERANCE or low >= 255 - _BLACK_WHITE_TOLERANCE:
        return "black_or_white"
    if min_colorfulness > 0:
        rgb = to_uint8_chw(image).float().div(255).unsqueeze(0)
        if float(colorfulness(rgb)) < min_colorfulness:
            return "colourless"
    return None


def vet_images(
    paths: list[Path], min_colorfulness: float, workers: int
) -> tuple[list[Path], SkipReport]:
    """Keep the usable files of ``paths`` (in order); report the others."""
    report = SkipReport()

    def vet(path: Path) -> tuple[Path, str | None, UnreadableImageError | None]:
        try:
            return path, vet_image(path, min_colorfulness), None
        except UnreadableImageError as error:
            return path, "unreadable", error

    kept = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for path, verdict, error in pool.map(vet, paths):
            if verdict is None:
                kept.append(path)
            elif error is not None:
                report.add_unreadable(error)
            elif verdict == "black_or_white":
                report.black_or_white.append(str(path))
            else:
                report.colourless.append(str(path))
    return kept, report


def split_files(
    root: Path, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[Path]]:
    """Files of each split: from ``train/``, ``val/``, ``test/`` subfolders when ``root`` has
    a ``train/`` one (a missing ``test/`` reuses ``val/``), else a seeded random split."""
    if (root / "train").is_dir():
        splits = {name: find_images(root / name) for name in SPLITS if (root / name).is_dir()}
        splits.setdefault("val", [])
        if "test" not in splits:
            log.info("%s has no test/ folder: testing on val/", root)
            splits["test"] = splits["val"]
        return splits
    files = find_images(root)
    order = np.random.default_rng(seed).permutation(len(files))
    n_val = round(len(files) * val_fraction)
    n_test = round(len(files) * test_fraction)
    if len(files) >= 3:  # keep every split non-empty when the fractions ask for one
        n_val = max(n_val, 1 if val_fraction > 0 else 0)
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
    picked = [files[i] for i in order]
    return {
        "val": sorted(picked[:n_val]),
        "test": sorted(picked[n_val : n_val + n_test]),
        "train": sorted(picked[n_val + n_test :]),
    }


#: ``data.limit_by``: which files a ``data.limit`` keeps.
LIMIT_BY = ("random", "name")


def limit_files(
    splits: dict[str, list[Path]], limit: int | None, seed: int, by: str = "random"
) -> dict[str, list[Path]]:
    """Scale every split by the same factor so that at most ``limit`` files are used in all
    (``by="random"``: a seeded choice; ``"name"``: the first ones in name order, as the
    papers' "first 5,000 of ImageNet val"); a non-empty split keeps at least one file."""
    distinct = {id(files): files for files in splits.values()}
    total = sum(len(files) for files in distinct.values())
    if not limit or total <= limit:
        return splits
    rng = np.random.default_rng(seed)
    chosen: dict[int, list[Path]] = {}
    for key, files in distinct.items():
        keep = max(1, int(len(files) * limit / total)) if files else 0
        if by == "name":
            chosen[key] = sorted(files)[:keep]
        else:
            chosen[key] = sorted(files[i] for i in rng.choice(len(files), keep, replace=False))
    return {name: chosen[id(files)] for name, files in splits.items()}


class ImageFiles(Dataset):
    """Photo files decoded and resized in the worker: items are 3×size×size uint8 RGB.

    A file that fails to decode now (it changed since it was vetted) is reported by name
    and replaced by the next file, so a worker never crashes on it.
    """

    def __init__(self, files: list[Path], image_size: int, resize: str = "squash") -> None:
        self.files = list(files)
        self.image_size = image_size
        self.resize = resize

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        for attempt in range(len(self.files)):
            path = self.files[(index + attempt) % len(self.files)]
            try:
                return load_uint8(path, self.image_size, self.resize)
            except UnreadableImageError as error:
                log.warning("skipped unreadable image %s (%s)", error.path, error.reason)
        raise ColorlabError("none of the images in this split can be read any more")


def default_workers() -> int:
    """Threads for vetting files: the machine's cores."""
    return os.cpu_count() or 1


class FolderDataModule(ColorizationDataModule):
    """``data=folder``: the photos below ``root`` (recursively), vetted once at setup.

    Unreadable files are warned about by name, entirely black or white and nearly
    colourless ones (colourfulness below ``min_colorfulness``; 0 disables) are left out;
    `skipped` counts them all.
    """

    def __init__(
        self,
        root: str | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        limit: int | None = None,
        min_colorfulness: float = 5.0,
        resize: str = "squash",
        limit_by: str = "random",
        **common,
    ) -> None:
        super().__init__(**common)
        check_fractions(val_fraction, test_fraction)
        check_choice("resize", resize, RESIZE_MODES)
        check_choice("limit_by", limit_by, LIMIT_BY)
        if not root:
            raise OptionError("root", root, "give the folder of your photos", "is not set")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise OptionError("root", str(root), "give a folder of photos", "is not a folder")
        if limit is not None and limit < 1:
            raise OptionError("limit", limit, "use a positive number of images, or null")
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.limit = limit
        self.limit_by = limit_by
        self.min_colorfulness = min_colorfulness
        self.resize = resize
        self.skipped = SkipReport()

    def load_splits(self) -> None:
        splits = split_files(self.root, self.val_fraction, self.test_fraction, self.seed)
        splits = limit_files(splits, self.limit, self.seed, self.limit_by)
        if not any(splits.values()):
            raise OptionError(
                "root",
                str(self.root),
                "give a folder with " + ", ".join(sorted(IMAGE_EXTENSIONS)) + " files",
                "holds no image files",
            )
        vetted: dict[int, list[Path]] = {}
        for files in splits.values():
            if id(files) not in vetted:
                kept, report = vet_images(files, self.min_colorfulness, default_workers())
                vetted[id(files)] = kept
                self.skipped.merge(report)
        kept_splits = {name: vetted[id(files)] for name, files in splits.items()}
        used = len({p for files in kept_splits.values() for p in files})
        log.log(
            logging.WARNING if self.skipped.total else logging.INFO,
            "%s: %s",
            self.root,
            self.skipped.summary(used),
        )
        if not kept_splits["train"]:
            summary = self.skipped.summary(used)
            if self.skipped.colourless:  # the threshold, not the photos, may be what is wrong
                raise OptionError(
                    "min_colorfulness",
                    self.min_colorfulness,
                    f"lower it (0 keeps every photo) or add colour photos ({summary})",
                    f"leaves no training image in {self.root}",
                )
            which = "training image" if used else "image"  # evaluate reads this folder too
            raise ColorlabError(f"{self.root} has no usable {which} ({summary})")
        self.datasets = {
            name: ImageFiles(files, self.image_size, self.resize)
            for name, files in kept_splits.items()
        }

    def all_images(self) -> ImageFiles:
        files = {
            p
            for split in self.datasets.values()
            if isinstance(split, ImageFiles)
            for p in split.files
        }
        return ImageFiles(sorted(files), self.image_size, self.resize)

    def empty_split_hint(self, split: str) -> str:
        if (self.root / "train").is_dir():
            return f"add photos to {self.root / split} (with a train/ folder, the splits are its folders)"
        return (
            f"add photos to {self.root} or raise the split's share (val_fraction / test_fraction)"
        )
