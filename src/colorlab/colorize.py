"""``python -m colorlab.colorize ckpt=C.ckpt input=PATH output=DIR``: colorize photos and videos.

PATH is a file, a folder (searched recursively) or a glob; the jobs are
`colorlab.inference.jobs`. Outputs keep the input's size, orientation, relative path and name
(plus ``colorize.suffix``); inputs are never overwritten.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig
from PIL import Image, UnidentifiedImageError

from colorlab.cli.runner import one_line_errors, run_app
from colorlab.cli.validation import COLORIZE_RULES, named, validate
from colorlab.configs import config_dir
from colorlab.errors import ColorlabError, OptionError
from colorlab.inference.colorizer import TrainedColorizer, load_colorizer
from colorlab.inference.hints import read_hints
from colorlab.inference.jobs import Job, colorize_files, plan_jobs, save_picture
from colorlab.inference.merge import return_freed_memory_to_the_os
from colorlab.inference.temporal import TemporalSettings

#: Names of `plan_jobs`'s errors that are top-level keys, not ``colorize.`` options.
_TOP_LEVEL = ("input", "output")


def colorize(cfg: DictConfig) -> dict[str, int]:
    """Colorize ``cfg.input`` into ``cfg.output``; returns the counts of `colorize_files`."""
    validate(cfg, COLORIZE_RULES)
    options = cfg.colorize
    return_freed_memory_to_the_os()
    # Pillow refuses pictures above 2 × MAX_IMAGE_PIXELS (and warns above it).
    Image.MAX_IMAGE_PIXELS = int(options.max_megapixels * 1e6) // 2
    with named("colorize", _TOP_LEVEL):
        jobs = plan_jobs(str(cfg.input), cfg.output, options.suffix or "", options.format)
        colorizer = load_colorizer(
            cfg.ckpt,
            device=options.device,
            size=options.size,
            temperature=options.temperature,
            trusted=cfg.trust_checkpoint,
        )
        if options.get("hints"):
            return _colorize_with_hints(colorizer, jobs, options.hints, options.hint_size)
        temporal = TemporalSettings.from_config(options)
        counts = colorize_files(colorizer, jobs, options.batch_size, temporal)
    large, limit = counts["too_large"], f"colorize.max_megapixels={options.max_megapixels}"
    if (counts["skipped"] or large) and not counts["images"] and not counts["videos"]:
        if not counts["skipped"]:
            raise ColorlabError(
                f"nothing colorized: all {large} pictures are larger than {limit} allows; "
                "raise it (megapixels per picture)"
            )
        raise ColorlabError(
            f"nothing colorized: all {counts['skipped'] + large} input files were unreadable"
            + (f" or larger than {limit} allows" if large else "")
            + " (see the warnings above)"
        )
    animated = counts["first_frame_only"]
    print(
        f"colorlab: {counts['images']} images and {counts['videos']} videos ({counts['frames']} frames) "
        f"colorized into {cfg.output}; {counts['skipped']} unreadable files skipped"
        + (f"; {large} pictures above {limit} skipped" if large else "")
        + (f"; {animated} animated images reduced to their first frame" if animated else ""),
        flush=True,
    )
    return counts


def _colorize_with_hints(
    colorizer: TrainedColorizer, jobs: list[Job], hints_file: str, hint_size: int
) -> dict[str, int]:
    """``colorize.hints=FILE``: the one photo of ``jobs`` colorized with the file's hints."""
    if len(jobs) != 1 or jobs[0].is_video:
        raise OptionError(
            "colorize.hints",
            hints_file,
            f"hints are for one photo; input names {len(jobs)} files"
            + (" (a video)" if jobs and jobs[0].is_video else ""),
        )
    job = jobs[0]
    try:
        lightness = colorizer.lightness(job.source)
    except (OSError, UnidentifiedImageError) as error:
        raise ColorlabError(f"cannot read {job.source}: {error}") from error
    try:
        hints = read_hints(hints_file, lightness.width, lightness.height)
    except ValueError as error:
        raise ColorlabError(str(error)) from None
    picture = colorizer.colorize_with_hints(lightness, hints, hint_size)
    save_picture(picture, job.target)
    print(f"colorlab: {job.source} colorized with {len(hints)} hints into {job.target}", flush=True)
    return {
        "images": 1,
        "videos": 0,
        "frames": 0,
        "skipped": 0,
        "too_large": 0,
        "hints": len(hints),
    }


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="colorize")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    colorize(cfg)


def main() -> None:
    run_app(_hydra_main)


if __name__ == "__main__":
    main()
