"""``python -m colorlab.colorize ckpt=C.ckpt input=PATH output=DIR``: colorize photos and videos.

PATH is a file, a folder (searched recursively) or a glob. Outputs keep the input's size,
orientation, relative path and name (plus ``colorize.suffix``); inputs are never overwritten.
"""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import DictConfig
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from colorlab.app import config_dir, one_line_errors, run_app
from colorlab.data.images import IMAGE_EXTENSIONS, UnreadableImageError, frame_count, open_rgb
from colorlab.errors import ColorlabError, check_choice
from colorlab.files import written_atomically
from colorlab.inference import TrainedColorizer, load_colorizer, return_freed_memory_to_the_os
from colorlab.validation import COLORIZE_RULES, validate
from colorlab.video import VIDEO_EXTENSIONS, AbSmoother, colorize_video, is_video

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
        check_choice("colorize.format", str(fmt).lower().lstrip("."), OUTPUT_FORMATS)
    inputs = find_inputs(pattern)
    if not inputs:
        raise ColorlabError(f"input={pattern} matches no image or video file")
    output = Path(output).expanduser()
    if output.exists() and not output.is_dir():
        raise ColorlabError(f"output={output} is a file; give a folder for the colorized files")
    jobs = []
    for source, relative in inputs:
        extension = (
            source.suffix if is_video(source) or not fmt else "." + str(fmt).lower().lstrip(".")
        )
        jobs.append(Job(source, output / relative.parent / f"{relative.stem}{suffix}{extension}"))
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
        raise ColorlabError(f"colorize.batch_size={batch_size} must be at least 1")
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


def colorize(cfg: DictConfig) -> dict[str, int]:
    validate(cfg, COLORIZE_RULES)
    options = cfg.colorize
    return_freed_memory_to_the_os()
    # Pillow refuses pictures above 2 × MAX_IMAGE_PIXELS (and warns above it).
    Image.MAX_IMAGE_PIXELS = int(options.max_megapixels * 1e6) // 2
    jobs = plan_jobs(str(cfg.input), cfg.output, options.suffix or "", options.format)
    colorizer = load_colorizer(
        cfg.ckpt, device=options.device, size=options.size, temperature=options.temperature
    )
    counts = colorize_files(colorizer, jobs, options.batch_size, options.temporal_smoothing)
    if counts["skipped"] and not counts["images"] and not counts["videos"]:
        raise ColorlabError(
            f"nothing colorized: all {counts['skipped']} input files were unreadable (see the warnings above)"
        )
    animated = counts["first_frame_only"]
    print(
        f"colorlab: {counts['images']} images and {counts['videos']} videos ({counts['frames']} frames) "
        f"colorized into {cfg.output}; {counts['skipped']} unreadable files skipped"
        + (f"; {animated} animated images reduced to their first frame" if animated else ""),
        flush=True,
    )
    return counts


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="colorize")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    colorize(cfg)


def main() -> None:
    run_app(_hydra_main)


if __name__ == "__main__":
    main()
