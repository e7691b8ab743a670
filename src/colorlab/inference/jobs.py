"""Colorize jobs: which files an input names, where each output goes (refusing any plan that
would collide, overwrite or leave the output folder), and running them with a progress bar.

Inputs are a file, a folder (searched recursively) or a glob. Outputs keep the input's size,
orientation, relative path and name (plus a suffix); inputs are never overwritten.
"""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from colorlab.data.images import IMAGE_EXTENSIONS, UnreadableImageError, frame_count, open_rgb
from colorlab.errors import ColorlabError, OptionError, check_choice
from colorlab.files import written_atomically
from colorlab.inference.colorizer import TrainedColorizer
from colorlab.inference.video import VIDEO_EXTENSIONS, AbSmoother, colorize_video, is_video

log = logging.getLogger(__name__)

#: Pictures are batched up to ``batch_size`` and up to this many pixels in all.
BATCH_PIXELS = 32_000_000
OUTPUT_FORMATS = ("png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp")
_SAVE_OPTIONS = {".jpg": {"quality": 95}, ".jpeg": {"quality": 95}, ".webp": {"quality": 95}}


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


def _save(picture: Image.Image, target: Path) -> None:
    """Write ``picture`` to a temporary file beside ``target``, then rename it into place;
    an OS error (no space, no permission) is a `ColorlabError` naming the path."""
    try:
        with written_atomically(target) as temporary:
            picture.save(temporary, **_SAVE_OPTIONS.get(target.suffix.lower(), {}))
    except OSError as error:
        raise ColorlabError(f"cannot write {target}: {error.strerror or error}") from error


def colorize_files(
    colorizer: TrainedColorizer,
    jobs: list[Job],
    batch_size: int = 8,
    temporal_smoothing: float = 0.0,
) -> dict[str, int]:
    """Run the jobs with a progress bar; returns counts of images, videos, frames and skipped files."""
    if batch_size < 1:
        raise OptionError("batch_size", batch_size, "use at least 1")
    counts = {"images": 0, "videos": 0, "frames": 0, "skipped": 0, "first_frame_only": 0}
    images = [job for job in jobs if not job.is_video]
    videos = [job for job in jobs if job.is_video]
    AbSmoother(temporal_smoothing)  # a wrong value is a config error, not a bad video
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        task = progress.add_task("images", total=len(images)) if images else None
        chunk: list[tuple[Job, Image.Image]] = []

        def flush() -> None:
            pictures = [picture for _, picture in chunk]
            for (job, _), result in zip(chunk, colorizer.colorize_batch(pictures)):
                _save(result, job.target)
                counts["images"] += 1
                progress.advance(task)
            chunk.clear()

        for job in images:
            try:
                picture = open_rgb(job.source)
            except UnreadableImageError as error:
                log.warning("skipped unreadable image %s (%s)", error.path, error.reason)
                counts["skipped"] += 1
                progress.advance(task)
                continue
            if (frames := frame_count(job.source)) > 1:
                log.warning("%s has %d frames: only the first is colorized", job.source, frames)
                counts["first_frame_only"] += 1
            pixels = sum(p.width * p.height for _, p in chunk)
            if chunk and pixels + picture.width * picture.height > BATCH_PIXELS:
                flush()  # a large photo is colorized on its own: one photo's buffers at a time
            chunk.append((job, picture))
            if len(chunk) >= batch_size:
                flush()
        if chunk:
            flush()
        for job in videos:
            frames = progress.add_task(f"{job.source.name}", total=None)
            try:
                counts["frames"] += colorize_video(
                    colorizer,
                    job.source,
                    job.target,
                    batch_size,
                    temporal_smoothing,
                    on_frames=lambda n, t=frames: progress.advance(t, n),
                )
                counts["videos"] += 1
            except ColorlabError as error:
                log.warning("skipped video: %s", error)
                counts["skipped"] += 1
    return counts
