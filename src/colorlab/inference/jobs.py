"""Colorize jobs: which files an input names, where each output goes (refusing any plan that
would collide, overwrite or leave the output folder), and running them with a progress bar.

Inputs are a file, a folder (searched recursively) or a glob. Outputs keep the input's size,
orientation, relative path and name (plus a suffix); inputs are never overwritten.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor

from colorlab.data.images import (
    IMAGE_EXTENSIONS,
    TooLargeImageError,
    UnreadableImageError,
    frame_count,
    open_rgb,
)
from colorlab.errors import ColorlabError, OptionError, check_choice
from colorlab.files import written_atomically
from colorlab.inference.colorizer import TrainedColorizer
from colorlab.inference.merge import Lightness
from colorlab.inference.temporal import TemporalSettings
from colorlab.inference.video import VIDEO_EXTENSIONS, colorize_video, is_video

log = logging.getLogger(__name__)

#: Pictures in flight (read, batched or being written) hold at most this many pixels in all.
BATCH_PIXELS = 32_000_000
OUTPUT_FORMATS = ("png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp")
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    ".jpg": {"quality": 95},
    ".jpeg": {"quality": 95},
    ".webp": {"quality": 95},
}


@dataclass(frozen=True)
class Job:
    """One input file and where its colorized version goes."""

    source: Path
    target: Path

    @property
    def is_video(self) -> bool:
        return is_video(self.source)


def find_inputs(pattern: str) -> list[tuple[Path, Path]]:
    """(file, path relative to the output folder) for a file, a folder or a glob."""
    media = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    path = Path(pattern).expanduser()
    if path.is_file():
        return [(path, Path(path.name))]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in media)
        return [(p, p.relative_to(path)) for p in files]
    matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
    return [(p, Path(p.name)) for p in matches if p.is_file() and p.suffix.lower() in media]


def plan_jobs(
    pattern: str, output: str | Path, suffix: str = "", fmt: str | None = None
) -> list[Job]:
    """Where every input goes. Refused up front (`ColorlabError`): two inputs that would
    land on one output, and an output that exists already (an input, a link to one, or
    any file this run did not make)."""
    if fmt is not None:
        check_choice("format", str(fmt).lower().lstrip("."), OUTPUT_FORMATS)
    inputs = find_inputs(pattern)
    if not inputs:
        raise OptionError(
            "input", pattern, "give a file, a folder or a glob", "matches no image or video file"
        )
    output = Path(output).expanduser()
    if output.exists() and not output.is_dir():
        raise OptionError(
            "output", str(output), "give a folder for the colorized files", "is a file"
        )
    if suffix and ("/" in suffix or "\\" in suffix or suffix in (".", "..")):
        raise OptionError(
            "suffix", suffix, "use letters, digits, _ or - (it goes inside file names)"
        )
    jobs = []
    for source, relative in inputs:
        extension = (
            source.suffix if is_video(source) or not fmt else "." + str(fmt).lower().lstrip(".")
        )
        jobs.append(Job(source, output / relative.parent / f"{relative.stem}{suffix}{extension}"))
    inside = output.resolve()
    for job in jobs:
        if inside not in job.target.resolve().parents:
            raise OptionError(
                "suffix",
                suffix,
                f"keep the outputs inside {output}",
                f"puts {job.target} outside {output}",
            )
    claimed: dict[Path, Path] = {}
    for job in jobs:
        other = claimed.setdefault(job.target.resolve(), job.source)
        if other != job.source:
            raise ColorlabError(
                f"{other} and {job.source} would both be written to {job.target}; "
                "give a folder as input (sub-folders are kept) or colorize them separately"
            )
    sources = {job.source.resolve() for job in jobs}
    for job in jobs:
        if job.target.resolve() in sources or job.target.exists() or job.target.is_symlink():
            what = "an input" if job.target.resolve() in sources else "an existing file"
            raise ColorlabError(
                f"output {job.target} would overwrite {what}; choose an empty output folder "
                "or set colorize.suffix"
            )
    return jobs


def save_picture(picture: Image.Image, target: Path) -> None:
    """Write ``picture`` to a temporary file beside ``target``, then rename it into place;
    an OS error (no space, no permission) is a `ColorlabError` naming the path."""
    try:
        with written_atomically(target) as temporary:
            picture.save(temporary, **_SAVE_OPTIONS.get(target.suffix.lower(), {}))
    except OSError as error:
        raise ColorlabError(f"cannot write {target}: {error.strerror or error}") from error


def default_threads() -> int:
    """Threads that read, merge and write pictures: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def _pixels_in_header(path: Path) -> int:
    """Width × height from the file's header (0 when it cannot be read: the read says why)."""
    try:
        with Image.open(path) as image:
            return image.width * image.height
    except Exception:  # noqa: BLE001 - any failure is reported by the read itself
        return 0


class _ImagePipeline:
    """Pictures through colorize in three overlapped stages: read (decode and lightness, in
    threads), the model (batches, in the calling thread), merge and write (in threads).

    Pictures in flight (from their read to their write) hold at most `BATCH_PIXELS` pixels,
    or one picture when it is larger, so memory stays bounded as it was without threads.
    """

    def __init__(
        self,
        colorizer: TrainedColorizer,
        threads: int,
        batch_size: int,
        counts: dict[str, int],
        advance: Callable[[], None],
    ):
        self.colorizer, self.batch_size = colorizer, batch_size
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="colorize")
        self.counts, self.advance = counts, advance
        self.reading: deque[tuple[Job, Future, int]] = deque()
        self.batch: list[tuple[Job, Lightness, int]] = []
        self.writing: deque[tuple[Future, int]] = deque()
        self.pixels = 0
        self.lookahead = 2 * threads

    def _read(self, job: Job) -> tuple[Lightness, int]:
        """The picture's lightness and its number of frames."""
        picture = open_rgb(job.source)
        return self.colorizer.lightness(picture), frame_count(job.source)

    def _write(self, job: Job, ab_small: Tensor, lightness: Lightness) -> None:
        save_picture(self.colorizer.merge(ab_small, lightness), job.target)

    def add(self, job: Job) -> None:
        pixels = _pixels_in_header(job.source)
        while self.reading or self.batch or self.writing:
            if len(self.reading) < self.lookahead and self.pixels + pixels <= BATCH_PIXELS:
                break
            self._step()
        self.pixels += pixels
        self.reading.append((job, self.pool.submit(self._read, job), pixels))

    def finish(self) -> None:
        """Complete all work added."""
        while self.reading or self.batch or self.writing:
            self._step()

    def close(self) -> None:
        """Stop the threads: work not started is dropped (after an error), started work ends."""
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _step(self) -> None:
        """Move the oldest piece of work that can move one stage on."""
        if self.writing and (self.writing[0][0].done() or not (self.reading or self.batch)):
            future, pixels = self.writing.popleft()
            future.result()  # a write error stops the run here
            self.pixels -= pixels
            self.counts["images"] += 1
            self.advance()
        elif self.reading:
            job, future, pixels = self.reading.popleft()
            try:
                lightness, frames = future.result()
                self.batch.append((job, lightness, pixels))
                if frames > 1:
                    log.warning("%s has %d frames: only the first is colorized", job.source, frames)
                    self.counts["first_frame_only"] += 1
            except UnreadableImageError as error:
                too_large = isinstance(error, TooLargeImageError)
                kind = "too large" if too_large else "unreadable"
                log.warning("skipped %s image %s (%s)", kind, error.path, error.reason)
                self.pixels -= pixels
                self.counts["too_large" if too_large else "skipped"] += 1
                self.advance()
            if len(self.batch) >= self.batch_size:
                self._flush()
        elif self.batch:
            self._flush()

    def _flush(self) -> None:
        ab_small = self.colorizer.predict_lightness_ab([light for _, light, _ in self.batch])
        for (job, light, pixels), ab in zip(self.batch, ab_small):
            self.writing.append((self.pool.submit(self._write, job, ab[None], light), pixels))
        self.batch.clear()


def colorize_files(
    colorizer: TrainedColorizer,
    jobs: list[Job],
    batch_size: int = 8,
    temporal: TemporalSettings | None = None,
    threads: int | None = None,
) -> dict[str, int]:
    """Run the jobs with a progress bar; returns counts of images, videos, frames, skipped
    (unreadable) files and pictures too large to decode (``too_large``). Pictures are read,
    merged and written in ``threads`` threads (default: one per core, `default_threads`)
    while the model runs batches of ``batch_size``; videos' colour follows over frames as
    ``temporal`` says (default `TemporalSettings`: motion-compensated)."""
    if batch_size < 1:
        raise OptionError("batch_size", batch_size, "use at least 1")
    counts = {
        "images": 0,
        "videos": 0,
        "frames": 0,
        "skipped": 0,
        "too_large": 0,
        "first_frame_only": 0,
    }
    images = [job for job in jobs if not job.is_video]
    videos = [job for job in jobs if job.is_video]
    temporal = temporal or TemporalSettings()
    if videos:  # a missing flow weights file is a config error, not a bad video
        temporal.prepare(colorizer.device)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        if images:
            task = progress.add_task("images", total=len(images))
            pipeline = _ImagePipeline(
                colorizer,
                threads or default_threads(),
                batch_size,
                counts,
                lambda: progress.advance(task),
            )
            try:
                for job in images:
                    pipeline.add(job)
                pipeline.finish()
            finally:
                pipeline.close()
        for job in videos:
            frames = progress.add_task(f"{job.source.name}", total=None)
            try:
                counts["frames"] += colorize_video(
                    colorizer,
                    job.source,
                    job.target,
                    batch_size,
                    temporal,
                    on_frames=functools.partial(progress.advance, frames),
                )
                counts["videos"] += 1
            except ColorlabError as error:
                log.warning("skipped video: %s", error)
                counts["skipped"] += 1
    return counts
