"""Photos prepared once into LitData shards (``python -m colorlab.prepare``): each split of a
folder, found, vetted and split exactly as ``data=folder`` does, written as chunks of encoded
JPEG bytes (optionally shrunk first), one LitData set per split under the output folder.

A prepared output holds ``train/``, ``val/``, ``test/`` (each a LitData set: chunk files and
``index.json``) and ``prepared.json`` (what was written, and from where), written last. The
splits are written into a hidden ``.partial/`` folder and moved into place only when every
split is complete, so that an interrupted prepare leaves no set that looks whole: the next run
removes ``.partial/`` and starts over, and never holds a photo twice.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from colorlab.data.datamodule import SPLITS, check_fractions
from colorlab.data.folder import limit_files, split_files, vet_images
from colorlab.data.images import UnreadableImageError, open_rgb, resize
from colorlab.errors import ColorlabError, OptionError

log = logging.getLogger(__name__)

#: How ``litdata.optimize`` starts its workers: forked on Linux (a worker then needs no new
#: interpreter importing torch again, seconds each), spawned elsewhere (LitData's default).
START_METHOD = "fork" if sys.platform.startswith("linux") else None

#: The file a complete prepared set ends with.
PREPARED = "prepared.json"
PARTIAL = ".partial"


@dataclass(frozen=True)
class Encoder:
    """One photo -> ``{"jpeg": bytes}``: its file's bytes when it is a JPEG kept at its size
    (no ``image_size``, or a short side already within it), else re-encoded (quality 95), its
    short side first shrunk to ``image_size`` (the aspect ratio kept: the data module squashes
    or crops). A file that cannot be decoded now gives ``None`` (LitData skips it)."""

    image_size: int | None = None

    def __call__(self, path: str) -> dict[str, Any] | None:
        try:
            if Path(path).suffix.lower() in (".jpg", ".jpeg") and self._fits(path):
                return {"jpeg": Path(path).read_bytes()}
            image = open_rgb(path, draft_size=self.image_size)
        except (UnreadableImageError, OSError) as error:
            log.warning("skipped unreadable image %s (%s)", path, error)
            return None
        short = min(image.size)
        if self.image_size is not None and short > self.image_size:
            scale = self.image_size / short
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=95)
        return {"jpeg": buffer.getvalue()}

    def _fits(self, path: str) -> bool:
        """Whether a JPEG file needs no shrinking (its header read, not its pixels)."""
        if self.image_size is None:
            return True
        with Image.open(path) as image:
            return image.format == "JPEG" and min(image.size) <= self.image_size


def is_prepared(folder: Path) -> bool:
    """Whether ``folder`` holds a complete prepared set."""
    return (folder / PREPARED).is_file()


def prepare(
    input_dir: str | Path,
    output_dir: str | Path,
    image_size: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    limit: int | None = None,
    min_colorfulness: float = 5.0,
    seed: int = 42,
    workers: int = 2,
    chunk_bytes: str = "64MB",
) -> dict[str, Any]:
    """Write the photos of ``input_dir`` into ``output_dir`` as LitData shards (see module).
    Returns the summary also written to ``prepared.json``: photos (distinct) and per split,
    what was left out and why, bytes written, seconds. A folder that already holds a prepared
    set is refused."""
    import litdata

    source, out = Path(input_dir).expanduser(), Path(output_dir).expanduser()
    check_fractions(val_fraction, test_fraction)
    if image_size is not None and image_size < 8:
        raise OptionError("image_size", image_size, "use at least 8 (pixels), or null")
    if not source.is_dir():
        raise OptionError("input", str(input_dir), "give a folder of photos", "is not a folder")
    if is_prepared(out):
        raise ColorlabError(
            f"{out} already holds a prepared set ({PREPARED}); choose another output, or delete "
            "it to prepare again"
        )
    partial = out / PARTIAL
    if partial.exists():  # only a prepare makes it: what it left, splits moved out included
        log.warning("%s: an earlier prepare was interrupted; starting over", out)
        for split in SPLITS:
            shutil.rmtree(out / split, ignore_errors=True)
        shutil.rmtree(partial)
    if out.exists() and any(out.iterdir()):
        raise ColorlabError(f"{out} is not empty and holds no prepared set; choose another output")
    start = time.perf_counter()
    splits = limit_files(split_files(source, val_fraction, test_fraction, seed), limit, seed)
    if not any(splits.values()):
        raise ColorlabError(f"{source} holds no image files")
    summary: dict[str, Any] = {
        "input": str(source.resolve()),
        "image_size": image_size,
        "splits": {},
    }
    skipped: dict[str, list] = {"unreadable": [], "black_or_white": [], "colourless": []}
    encoder = Encoder(image_size)
    written: dict[int, str] = {}
    for split in SPLITS:
        files = splits[split]
        if id(files) in written:  # test/ reuses val/ when a folder has no test/
            if (partial / written[id(files)]).exists():
                shutil.copytree(partial / written[id(files)], partial / split)
            summary["splits"][split] = summary["splits"][written[id(files)]]
            continue
        kept, report = vet_images(files, min_colorfulness, workers)
        skipped["unreadable"] += [path for path, _ in report.unreadable]
        skipped["black_or_white"] += report.black_or_white
        skipped["colourless"] += report.colourless
        if kept:
            start_method = multiprocessing.get_start_method(allow_none=True)
            try:
                litdata.optimize(
                    fn=encoder,
                    inputs=[str(p) for p in kept],
                    output_dir=str(partial / split),
                    chunk_bytes=chunk_bytes,
                    num_workers=max(1, min(workers, len(kept))),
                    reorder_files=False,
                    verbose=True,  # its progress bar
                    start_method=START_METHOD,
                )
            finally:  # optimize sets the process's start method: put it back
                multiprocessing.set_start_method(start_method, force=True)
        summary["splits"][split] = _count(partial / split)
        written[id(files)] = split
    if not summary["splits"]["train"]:
        raise ColorlabError(f"{source} has no usable training photo ({_reasons(skipped)})")
    summary["photos"] = sum(summary["splits"][split] for split in set(written.values()))
    summary["skipped"] = {reason: len(paths) for reason, paths in skipped.items()}
    summary["skipped_files"] = skipped
    summary["bytes"] = sum(f.stat().st_size for f in partial.rglob("*") if f.is_file())
    summary["seconds"] = round(time.perf_counter() - start, 1)
    (partial / PREPARED).write_text(json.dumps(summary, indent=2))
    # into place: the splits, then prepared.json (what marks the set complete), then the rest
    for split in SPLITS:
        if (partial / split).exists():
            (partial / split).rename(out / split)
    (partial / PREPARED).rename(out / PREPARED)
    shutil.rmtree(partial)
    return summary


def _count(folder: Path) -> int:
    """Photos in one written LitData set (0 when nothing was written)."""
    index = folder / "index.json"
    if not index.is_file():
        return 0
    return sum(chunk["chunk_size"] for chunk in json.loads(index.read_text())["chunks"])


def _reasons(skipped: dict[str, list]) -> str:
    return ", ".join(
        f"{len(paths)} {reason.replace('_', ' ')}" for reason, paths in skipped.items()
    )


def decode_photo(item: dict[str, Any], size: int, mode: str) -> Image.Image:
    """A prepared item's photo, resized to ``size``×``size`` (``mode`` as `resize`)."""
    image = Image.open(io.BytesIO(item["jpeg"]))
    image.draft("RGB", (size, size))
    return resize(image.convert("RGB"), size, mode)
