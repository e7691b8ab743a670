"""Reading training runs from their folders: what each did (its record, its metrics per epoch,
its config and overrides) and how the runs of a sweep differ."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from colorlab.errors import ColorlabError
from colorlab.training.record import (
    FAILED,
    RECORD_FILE,
    RUNNING,
    read_history,
    read_record,
    record_problem,
)

#: Shown for a folder Hydra made for a run that stopped before training (no run.json).
NOT_STARTED = "failed before training"
#: Shown for a run whose run.json cannot be read.
CORRUPT = "unknown (corrupt run.json)"
#: Overrides that say where a run wrote, not what it was.
_WHERE = re.compile(r"^(hydra\.|run_dir$|console_log$|ckpt_path$)")


@dataclass
class Run:
    """One training run, as its folder tells it."""

    folder: Path
    record: dict[str, Any]
    history: list[dict[str, float]]
    config: dict[str, Any]
    overrides: dict[str, str] = field(default_factory=dict)
    label: str = ""

    @property
    def name(self) -> str:
        return self.record.get("name") or self.folder.name

    @property
    def status(self) -> str:
        return self.record.get("status", NOT_STARTED)

    @property
    def error(self) -> str | None:
        return self.record.get("error")

    @property
    def command(self) -> str | None:
        return self.record.get("command")

    @functools.cached_property
    def checkpoint(self) -> Path | None:
        """The best checkpoint, else last.ckpt, else None (a run that saved none); looked
        up once."""
        for recorded in (self.record.get("best_checkpoint"), self.record.get("last_checkpoint")):
            if recorded and Path(recorded).is_file():
                return Path(recorded)
        folder = self.folder / "checkpoints"
        found = sorted(folder.glob("best*.ckpt")) or sorted(folder.glob("last.ckpt"))
        return found[-1] if found else None

    @property
    def best_epoch(self) -> int | None:
        """The epoch (0-based) whose monitored value was best, from metrics.jsonl."""
        monitor = self.record.get("monitor") or "val/loss"
        scored = [e for e in self.history if _finite(e.get(monitor))]
        if not scored:
            return None
        pick = max if self.record.get("mode") == "max" else min
        return int(pick(scored, key=lambda e: e[monitor])["epoch"])

    def at_best(self, key: str) -> float | None:
        """``key``'s value in the best epoch (the last epoch when none is scored)."""
        if not self.history:
            return None
        epoch = self.best_epoch
        entry = next((e for e in self.history if e["epoch"] == epoch), self.history[-1])
        value = entry.get(key)
        return value if _finite(value) else None

    def series(self, key: str) -> list[tuple[int, float]]:
        """(epoch, value) pairs of ``key`` over the run, epochs counted from 1."""
        return [(int(e["epoch"]) + 1, e[key]) for e in self.history if _finite(e.get(key))]

    def notes(self) -> list[str]:
        """What a reader must know about this run's numbers (e.g. a backbone without its
        pretrained weights)."""
        notes = []
        model = self.config.get("model") or {}
        target = str(model.get("_target_", ""))
        has_backbone = "vgg16" in target or model.get("backbone")
        if has_backbone and model.get("pretrained") is False:
            notes.append(
                f"{self.label}: backbone without its ImageNet weights (model.pretrained=false)"
            )
        best = self.record.get("best_checkpoint")
        if best and not Path(best).is_file() and self.checkpoint is not None:
            notes.append(
                f"{self.label}: its best checkpoint {best} is gone; {self.checkpoint.name} was "
                "scored instead"
            )
        return notes


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def is_run_folder(folder: Path) -> bool:
    """A folder a training run made: run.json, or Hydra's .hydra/ with a train config."""
    return (folder / RECORD_FILE).is_file() or (folder / ".hydra" / "config.yaml").is_file()


def find_runs(paths: list[str | Path]) -> list[Run]:
    """The runs in ``paths`` (each a run folder, or a sweep folder holding run folders at any
    depth), in sweep order (folder names compared as numbers where they are numbers)."""
    folders: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise ColorlabError(f"runs={path} does not exist or is not a folder")
        found = [path] if is_run_folder(path) else _run_folders_below(path)
        if not found:
            raise ColorlabError(
                f"runs={path} holds no training run (no {RECORD_FILE} or .hydra/ in it or in "
                "its sub-folders); give a run folder or a multirun sweep folder"
            )
        folders += [f for f in found if f not in folders]
    runs = [read_run(folder) for folder in folders]
    label_runs(runs)
    return runs


def _run_folders_below(path: Path) -> list[Path]:
    found = []
    for child in sorted(path.iterdir(), key=_natural):
        if child.is_dir() and not child.name.startswith("."):
            found += [child] if is_run_folder(child) else _run_folders_below(child)
    return found


def _natural(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def read_run(folder: Path) -> Run:
    """The run in ``folder``: its run.json (or, for a run that never started, what Hydra
    kept and the error its train.log ends with)."""
    problem = record_problem(folder)
    record = {"status": CORRUPT, "error": problem} if problem else read_record(folder) or {}
    overrides = record.get("overrides")
    hydra_dir = folder / ".hydra"
    if overrides is None and (hydra_dir / "overrides.yaml").is_file():
        overrides = list(OmegaConf.load(hydra_dir / "overrides.yaml"))
    if not record:
        record = {"status": NOT_STARTED, "error": _last_error(folder)}
        if overrides:
            record["command"] = "python -m colorlab.train " + " ".join(overrides)
    config_file = folder / "config.yaml"
    if not config_file.is_file():
        config_file = hydra_dir / "config.yaml"
    config: dict[str, Any] = {}
    if config_file.is_file():
        try:
            loaded = OmegaConf.to_container(OmegaConf.load(config_file), resolve=False)
            config = {str(k): v for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        except Exception:  # an unreadable config only loses the run's notes and data
            config = {}
    return Run(
        folder=folder,
        record=record,
        history=read_history(folder),
        config=config,
        overrides=parse_overrides([str(o) for o in overrides or []]),
    )


def _last_error(folder: Path) -> str | None:
    try:
        lines = (folder / "train.log").read_text(errors="replace").splitlines()
    except OSError:
        return None
    errors = [line for line in lines if "error" in line.lower()]
    return errors[-1].removeprefix("colorlab: error: ").strip() if errors else None


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """``["model=vgg16", "+x=1", "~callbacks.a"]`` -> ``{"model": "vgg16", "x": "1",
    "callbacks.a": "(removed)"}``, leaving out where the run wrote (``hydra.*``, ``run_dir``)."""
    parsed = {}
    for override in overrides:
        key, sep, value = str(override).partition("=")
        if key.startswith("~"):
            key, value = key[1:], "(removed)"
        key = key.lstrip("+")
        if (sep or value) and not _WHERE.match(key):
            parsed[key] = value
    return parsed


def differing_overrides(runs: list[Run]) -> list[str]:
    """The override keys whose values are not the same in every run, in first-seen order."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.overrides if k not in keys]
    return [k for k in keys if len({run.overrides.get(k) for run in runs}) > 1]


#: Longer labels (runs that differ in many overrides) give way to the run's name.
MAX_LABEL = 40


def label_runs(runs: list[Run]) -> None:
    """Give each run a short unique label: its differing overrides (``model=unet loss=l1``)
    where they are short for every run, else the runs' names; the folder name is added
    where labels repeat."""
    keys = differing_overrides(runs)
    labels = [
        " ".join(f"{k}={run.overrides[k]}" for k in keys if k in run.overrides) for run in runs
    ]
    short = bool(labels) and all(labels) and max(map(len, labels)) <= MAX_LABEL
    for run, label in zip(runs, labels, strict=True):
        run.label = label if short else run.name
    labels = [run.label for run in runs]
    for run in runs:
        if labels.count(run.label) > 1:
            run.label = f"{run.label} ({run.folder.name})"


__all__ = [
    "CORRUPT",
    "FAILED",
    "NOT_STARTED",
    "RUNNING",
    "Run",
    "differing_overrides",
    "find_runs",
    "is_run_folder",
    "label_runs",
    "parse_overrides",
    "read_run",
]
