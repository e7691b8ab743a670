"""``python -m colorlab.report runs=SWEEP [output=DIR]``: the report of a sweep, or of any runs.

One row per run (the overrides that differ, best epoch, validation and test metrics, time,
speed, folder and the command that reproduces it), curves over epochs (loss, seed_accuracy,
PSNR, colourfulness; one line per run) and the same test photos colorized by every run, as
``report.html`` (self-contained, opens offline) and ``report.md`` with its pictures beside.
It reads what every run keeps in its folder (run.json, metrics.jsonl), whatever its logger.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, ListConfig

from colorlab.cli.runner import one_line_errors, refuse_used_dir, run_app
from colorlab.cli.validation import REPORT_RULES, validate
from colorlab.configs import config_dir, plain
from colorlab.data.datamodule import SPLITS
from colorlab.devices import resolve_device
from colorlab.errors import ColorlabError, check_choice
from colorlab.reporting import REPORT_OUTPUTS, write_report


def report(cfg: DictConfig) -> dict:
    """Write the report of ``cfg.runs`` into ``cfg.output``; returns report.json's content."""
    runs = list(cfg.runs) if isinstance(cfg.runs, (list, ListConfig)) else [cfg.runs]
    if not runs:
        raise ColorlabError('runs is empty; pass runs=SWEEP_FOLDER or "runs=[A,B]"')
    validate(cfg, REPORT_RULES)
    check_choice("split", cfg.split, SPLITS)
    output = Path(str(cfg.output))
    refuse_used_dir(output, REPORT_OUTPUTS, "a report", "choose another output=…")
    content = write_report(
        [str(r) for r in runs],
        output,
        resolve_device(cfg.device),
        title=cfg.title,
        notes=[str(n) for n in cfg.notes or []],
        split=cfg.split,
        num_images=cfg.num_images,
        data=plain(cfg.data) if cfg.data else None,
        grid_cell=cfg.grid_cell,
        trusted=cfg.trust_checkpoint,
        hint_points=list(cfg.hint_points) if cfg.get("hint_points") else None,
    )
    count = sum(row["status"] != "reference" for row in content["runs"])
    print(
        f"colorlab: report of {count} run{'s' * (count != 1)} written to "
        f"{output / 'report.html'} and {output / 'report.md'}",
        flush=True,
    )
    return content


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="report")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    report(cfg)


def main() -> None:
    run_app(_hydra_main)


if __name__ == "__main__":
    main()
