"""The report's table: one row per run (its differing overrides, best epoch, validation and
test metrics, time and speed, folder and command), the best value of each metric marked."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from colorlab.reporting.runs import Run, differing_overrides

GRAY_LABEL = "gray (ab = 0)"


@dataclass(frozen=True)
class Column:
    """A metric column: ``key`` in a row, its ``title``, which way is ``better`` (None: not
    ranked) and how its values are written."""

    key: str
    title: str
    better: str | None = None
    digits: int = 4

    def format(self, value: Any) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "—"
        if self.key == "wall_s":
            return duration(value)
        if isinstance(value, int):
            return str(value)
        return f"{value:.{self.digits}f}"


METRIC_COLUMNS = (
    Column("best_epoch", "best epoch"),
    Column("val/loss", "val loss", "min"),
    Column("val/seed_accuracy", "val seed_accuracy", "max"),
    Column("val/psnr", "val PSNR dB", "max", 2),
    Column("test/psnr", "test PSNR dB", "max", 2),
    Column("test/ssim", "test SSIM", "max", 3),
    Column("test/seed_accuracy", "test seed_accuracy", "max"),
    Column("test/colorfulness_pred", "test colourfulness", None, 1),
    Column("test/delta_colorfulness", "test ΔCF", "min", 1),
    Column("test/ab_mse", "test ab MSE", "min"),
    Column("wall_s", "wall time"),
    Column("train_images_per_s", "train img/s", None, 1),
)


def duration(seconds: float) -> str:
    """``75`` -> ``1 min 15 s``, ``7300`` -> ``2 h 01 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def table_rows(
    runs: list[Run], test: dict[str, dict[str, float]], gray: dict[str, float] | None
) -> tuple[list[str], list[dict[str, Any]]]:
    """The override columns and one row per run (plus the gray row where ``gray`` is given).

    Args:
        runs: the runs, labelled (`label_runs`).
        test: run label -> metrics of the report's own evaluation (`ColorizationMetrics`
            names), for the runs that have a checkpoint.
        gray: the same metrics of the gray prediction, or None.
    """
    keys = differing_overrides(runs)
    rows = []
    for run in runs:
        scores = test.get(run.label, {})
        row: dict[str, Any] = {
            "label": run.label,
            "name": run.name,
            "status": run.status,
            "error": run.error,
            "overrides": {key: run.overrides.get(key, "—") for key in keys},
            "best_epoch": run.best_epoch + 1 if run.best_epoch is not None else None,
            **{k: run.at_best(k) for k in ("val/loss", "val/seed_accuracy", "val/psnr")},
            **{f"test/{name}": value for name, value in scores.items()},
            "wall_s": run.record.get("wall_s"),
            "train_images_per_s": run.record.get("train_images_per_s"),
            "loss_config": _loss_of(run),
            "checkpoint": str(run.checkpoint) if run.checkpoint else None,
            "folder": str(run.folder),
            "command": run.command,
        }
        rows.append(row)
    if gray is not None:
        rows.append(
            {
                "label": GRAY_LABEL,
                "name": GRAY_LABEL,
                "status": "reference",
                "overrides": {key: "" for key in keys},
                **{f"test/{name}": value for name, value in gray.items()},
            }
        )
    return keys, rows


def _loss_of(run: Run) -> str:
    """The run's loss as a comparable string (its config's ``loss`` node)."""
    return repr(sorted((run.config.get("loss") or {}).items()))


def best_cells(rows: list[dict[str, Any]]) -> set[tuple[int, str]]:
    """(row index, column key) of the best run value of each ranked column (ties all
    marked; the gray reference row is not ranked, nor the loss of runs with different
    losses, whose values do not compare)."""
    marked = set()
    losses = {row.get("loss_config") for row in rows if row.get("status") != "reference"}
    for column in METRIC_COLUMNS:
        if column.better is None or (column.key == "val/loss" and len(losses) > 1):
            continue
        values = [
            (i, row.get(column.key))
            for i, row in enumerate(rows)
            if row.get("status") != "reference"
        ]
        numbers = [
            (i, float(v)) for i, v in values if isinstance(v, (int, float)) and math.isfinite(v)
        ]
        if len(numbers) < 2:
            continue
        pick = max if column.better == "max" else min
        best = pick(v for _, v in numbers)
        marked |= {(i, column.key) for i, v in numbers if v == best}
    return marked
