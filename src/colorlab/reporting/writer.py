"""`write_report`: the runs of a sweep (or any runs) as one report — the table, the curves,
and the same test photos colorized by every run through `colorlab.inference.evaluation`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from colorlab.configs import build, check_targets
from colorlab.errors import ColorlabError, UnsafeFileError
from colorlab.files import written_atomically
from colorlab.inference.colorizer import TrainedColorizer, load_colorizer
from colorlab.inference.evaluation import (
    GRAY,
    HintSweep,
    evaluate_colorizers,
    hinted_name,
    paper_square,
)
from colorlab.pictures import labelled_grid
from colorlab.reporting.figures import curve_data, curve_pngs, hint_curve_png
from colorlab.reporting.pages import ReportContent, render_html, render_markdown
from colorlab.reporting.runs import Run, find_runs
from colorlab.reporting.tables import table_rows

log = logging.getLogger(__name__)

#: What a report writes into its folder.
REPORT_OUTPUTS = ("report.html", "report.md", "report.json", "comparison.jpg", "figures")


def write_report(
    runs: list[str | Path],
    output: Path,
    device: torch.device,
    title: str | None = None,
    notes: list[str] | None = None,
    split: str = "test",
    num_images: int = 6,
    data: dict[str, Any] | None = None,
    grid_cell: int | None = None,
    trusted: bool = False,
    hint_points: list[int] | None = None,
) -> dict[str, Any]:
    """Read ``runs`` (run or sweep folders), score each run's best checkpoint on the same
    photos of ``split``, and write report.html, report.md, report.json, comparison.jpg and
    figures/ into ``output``.

    Args:
        data: settings laid over the runs' own data config (e.g. ``image_size``, ``root``;
            None values keep the run's).
        grid_cell: the grid's cell size in pixels (None: `labelled_grid`'s, at least 256).
        trusted: unpickle the runs' checkpoints in full (`colorlab.loading`).
        hint_points: also score the runs that take hints with these numbers of hint points
            (`colorlab.inference.evaluation.HintSweep`), drawn as the figure ``hints``.

    Returns:
        report.json's content: ``runs`` (the table's rows), ``override_keys``, ``curves``
        (metric -> run label -> (epoch, value) pairs), ``hint_curves`` (run label ->
        (points, PSNR) pairs) and ``grid`` (its column titles).
    """
    found = find_runs(list(runs))
    colorizers = _load(found, device, trusted)
    test: dict[str, dict[str, float]] = {}
    gray = None
    grid_rows: list = []
    summary_photos = "No run has a checkpoint yet: nothing was scored on test photos."
    hint_curves: dict[str, list[tuple[int, float]]] = {}
    if colorizers:
        datamodule = build(_data_config(found, data or {}), "data")
        datamodule.setup()
        loader = datamodule.split_dataloader(split, cache="none")
        sweep = None
        if hint_points and any(c.takes_hints for c in colorizers.values()):
            sweep = HintSweep(list(hint_points), paper_square(datamodule.image_size))
        results, grid_rows = evaluate_colorizers(
            {GRAY: None, **colorizers}, loader, device, num_images, hints=sweep
        )
        for label in colorizers:
            swept = [n for n in (sweep.points if sweep else []) if hinted_name(label, n) in results]
            if swept:
                hint_curves[label] = [(0, results[label]["psnr"])] + [
                    (n, results.pop(hinted_name(label, n))["psnr"]) for n in swept
                ]
        gray = results.pop(GRAY)
        test = results
        count = len(loader.dataset)
        summary_photos = (
            f"Test metrics: {_count(count, 'photo')} of the {split} split at {datamodule.image_size} px, "
            "each run at its own size with its ab upsampled, as colorize does."
        )
    override_keys, rows = table_rows(found, test, gray)
    statuses = [run.status for run in found]
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
    content = ReportContent(
        title=title or f"colorlab report: {_count(len(found), 'run')}",
        summary=f"{_count(len(found), 'run')} ({counts}) from {', '.join(map(str, runs))}. {summary_photos}",
        notes=[*(notes or []), *(note for run in found for note in run.notes())],
        override_keys=override_keys,
        rows=rows,
        figures=curve_pngs(found),
    )
    if hint_curves:
        content.figures["hints"] = hint_curve_png(hint_curves)
    grid_titles = ["grayscale input", *colorizers, "ground truth"]
    if grid_rows:
        grid = labelled_grid(grid_rows, grid_titles, cell=grid_cell)
        content.grid_caption = (
            f"{_count(len(grid_rows), 'photo')} of the {split} split: gray | "
            + " | ".join(colorizers)
            + " | ground truth."
        )
        content.grid = _jpeg(grid)  # photos: a quarter of a PNG's size
        _write_bytes(output / "comparison.jpg", content.grid)
    figure_files = {}
    for stem, png in content.figures.items():
        _write_bytes(output / "figures" / f"{stem}.png", png)
        figure_files[stem] = f"figures/{stem}.png"
    report = {
        "runs": rows,
        "override_keys": override_keys,
        "curves": curve_data(found),
        "hint_curves": hint_curves,
        "grid": {"columns": grid_titles if grid_rows else [], "photos": len(grid_rows)},
    }
    _write_text(output / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    _write_text(
        output / "report.md",
        render_markdown(content, figure_files, "comparison.jpg" if grid_rows else None),
    )
    _write_text(output / "report.html", render_html(content))
    return report


def _load(runs: list[Run], device: torch.device, trusted: bool) -> dict[str, TrainedColorizer]:
    """label -> colorizer of each run with a checkpoint (a checkpoint that cannot be read is
    noted on its run and left out; one refused as unsafe stops the report)."""
    colorizers = {}
    for run in runs:
        if run.checkpoint is None:
            continue
        try:
            colorizers[run.label] = load_colorizer(run.checkpoint, device=device, trusted=trusted)
        except UnsafeFileError:
            raise
        except ColorlabError as error:
            run.record["error"] = f"cannot read {run.checkpoint.name}: {error}"
            log.warning("%s: %s", run.folder, run.record["error"])
    return colorizers


def _data_config(runs: list[Run], overrides: dict[str, Any]) -> dict[str, Any]:
    """The data config of the first run that has one, with ``overrides`` laid over it, one
    pass streamed (no cache, no flip); its targets checked (`check_targets`: a run folder is
    a file someone may hand over)."""
    for run in runs:
        config = run.config.get("data")
        if isinstance(config, dict) and "_target_" in config:
            check_targets(config, "data", run.folder / "config.yaml")
            merged = {**config, "cache": "none", "flip": False}
            merged.update({k: v for k, v in overrides.items() if v is not None})
            return merged
    raise ColorlabError(
        "no run's config.yaml names its data (data._target_); the report cannot tell which "
        "photos to colorize"
    )


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'s' * (number != 1)}"


def _jpeg(picture) -> bytes:
    import io

    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _write_bytes(path: Path, data: bytes) -> None:
    with written_atomically(path) as temporary:
        temporary.write_bytes(data)


def _write_text(path: Path, text: str) -> None:
    with written_atomically(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
