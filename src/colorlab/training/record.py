"""A run's own account of itself, kept in its folder whatever the experiment logger (W&B
offline, CSV, none), so that `colorlab.report` can read any run:

- ``run.json``: status (running, finished, interrupted, failed), the command and overrides
  that reproduce it, its name, times, training images/s, best checkpoint, test metrics and
  the W&B run id (rewritten atomically as the run goes);
- ``metrics.jsonl``: one line per epoch with every epoch-level metric logged (train/…, val/…).

A resumed run continues both: the same id and start, its epochs appended.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from colorlab.files import written_atomically

log = logging.getLogger(__name__)

RECORD_FILE = "run.json"
HISTORY_FILE = "metrics.jsonl"
#: ``status`` values of run.json.
RUNNING, FINISHED, INTERRUPTED, FAILED = "running", "finished", "interrupted", "failed"


def read_record(run_dir: str | Path) -> dict[str, Any] | None:
    """run.json of ``run_dir`` as a dict, or None when there is none (or it is unreadable:
    `record_problem` says why)."""
    try:
        record = json.loads((Path(run_dir) / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def record_problem(run_dir: str | Path) -> str | None:
    """Why ``run_dir``'s run.json cannot be read, where it exists (None: fine, or none)."""
    path = Path(run_dir) / RECORD_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return f"{RECORD_FILE} is corrupt ({type(error).__name__}: {error})"
    return None if isinstance(record, dict) else f"{RECORD_FILE} is corrupt (not a mapping)"


def read_history(run_dir: str | Path) -> list[dict[str, float]]:
    """The epochs of metrics.jsonl in order, the last line of each epoch (a run resumed from
    an earlier checkpoint writes its epochs again); a torn last line is ignored, and a line
    without an integer epoch is skipped with a warning naming it."""
    epochs: dict[int, dict[str, float]] = {}
    path = Path(run_dir) / HISTORY_FILE
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        epoch = entry.get("epoch") if isinstance(entry, dict) else None
        if isinstance(epoch, float) and epoch.is_integer():
            epoch = int(epoch)
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            log.warning(
                "%s, line %d: epoch %r is not an integer; line skipped", path, number, epoch
            )
            continue
        epochs[epoch] = entry
    return [epochs[e] for e in sorted(epochs)]


def model_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The trainer's checkpoint callback as the `ModelCheckpoint` it is (None without one)."""
    checkpoint = trainer.checkpoint_callback
    return checkpoint if isinstance(checkpoint, ModelCheckpoint) else None


def hydra_job() -> dict[str, Any]:
    """The overrides, config-group choices and command of the current Hydra job ({} outside
    a Hydra app, e.g. a config composed by a script)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    hydra = HydraConfig.get()
    overrides = list(hydra.overrides.task)
    choices = {k: v for k, v in hydra.runtime.choices.items() if not k.startswith("hydra/")}
    return {
        "overrides": overrides,
        "choices": choices,
        "command": shlex.join(["python", "-m", f"colorlab.{hydra.job.name}", *overrides]),
    }


class RunRecord(L.Callback):
    """Writes run.json and metrics.jsonl into ``run_dir`` (rank 0 only).

    Args:
        run_dir: the run's folder.
        name: the run's name (also the W&B run's), e.g. ``vgg16-mse-200ep``.
        job: `hydra_job` of the run (overrides, choices, command).
        wandb_id: the W&B run id, kept so that a resumed run continues the same W&B run.
    """

    def __init__(
        self, run_dir: str | Path, name: str, job: dict[str, Any], wandb_id: str | None = None
    ) -> None:
        self.run_dir = Path(run_dir)
        self.name = name
        self.trainer: L.Trainer | None = None
        #: Whether fitting began in this process (a failure before it leaves run.json as is).
        self.started = False
        earlier = read_record(self.run_dir) or {}
        self.record: dict[str, Any] = {
            "name": name,
            **job,
            "status": RUNNING,
            "started": earlier.get("started", time.time()),
            "wall_s": earlier.get("wall_s", 0.0),
            "train_s": earlier.get("train_s", 0.0),
            "train_images": earlier.get("train_images", 0),
            "wandb_id": wandb_id,
        }
        self._segment_start = time.perf_counter()
        self._wall_before = self.record["wall_s"]
        self._epoch_start: float | None = None

    # -- writing -------------------------------------------------------------------------
    def write(self, trainer: L.Trainer | None = None, **fields: Any) -> None:
        """Update and rewrite run.json (rank 0 only)."""
        if trainer is not None and not trainer.is_global_zero:
            return
        self.record.update(fields)
        self.record["train_s"] = round(self.record["train_s"], 3)
        self.record["wall_s"] = round(
            self._wall_before + time.perf_counter() - self._segment_start, 2
        )
        train_s = self.record["train_s"]
        self.record["train_images_per_s"] = (
            round(self.record["train_images"] / train_s, 2) if train_s > 0 else None
        )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with written_atomically(self.run_dir / RECORD_FILE) as temporary:
            temporary.write_text(json.dumps(self.record, indent=2) + "\n")

    def finish(self, status: str, error: str | None = None) -> None:
        """The run ended: ``status``, its test metrics, or its error."""
        trainer = self.trainer
        fields: dict[str, Any] = {"status": status, "finished": time.time(), "error": error}
        if trainer is not None:
            if status != FINISHED:  # fit did not end: its checkpoints as they are
                fields.update(_checkpoints(trainer))
            test = _numbers(trainer.callback_metrics, "test/")
            if test:
                fields["test"] = test
        self.write(trainer, **fields)

    # -- hooks ---------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.trainer = trainer

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = True
        checkpoint = model_checkpoint(trainer)
        if checkpoint is not None:
            self.record.update(monitor=checkpoint.monitor, mode=checkpoint.mode)
        self.write(trainer, status=RUNNING, finished=None, error=None)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Before testing, which loads the best checkpoint and with it that epoch's state.
        self.write(trainer, **_checkpoints(trainer))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        images = batch["L"] if isinstance(batch, dict) else batch
        self.record["train_images"] += len(images) * trainer.world_size

    def _end_training_phase(self) -> None:
        if self._epoch_start is not None:
            self.record["train_s"] += time.perf_counter() - self._epoch_start
            self._epoch_start = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._end_training_phase()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._end_training_phase()
        if not trainer.is_global_zero:
            return
        metrics = _numbers(trainer.callback_metrics, "train/", "val/")
        entry = {"epoch": trainer.current_epoch, "step": trainer.global_step, **metrics}
        with open(self.run_dir / HISTORY_FILE, "a") as file:
            file.write(json.dumps(entry) + "\n")
        self.write(trainer, epochs=trainer.current_epoch + 1)


def _checkpoints(trainer: L.Trainer) -> dict[str, Any]:
    """The checkpoint callback's best and last checkpoints, its monitor and best score."""
    checkpoint = model_checkpoint(trainer)
    if checkpoint is None:
        return {"epochs": trainer.current_epoch}
    score = checkpoint.best_model_score
    return {
        "epochs": trainer.current_epoch,
        "best_checkpoint": checkpoint.best_model_path or None,
        "last_checkpoint": checkpoint.last_model_path or None,
        "monitor": checkpoint.monitor,
        "mode": checkpoint.mode,
        "best_score": float(score) if score is not None else None,
    }


def _numbers(metrics: dict[str, Any], *prefixes: str) -> dict[str, float]:
    """The finite scalar metrics whose names start with one of ``prefixes``, as floats."""
    values = {}
    for key, value in metrics.items():
        if key.startswith(prefixes) and getattr(value, "numel", lambda: 1)() == 1:
            number = float(value)
            if math.isfinite(number):
                values[key] = round(number, 6)
    return values
