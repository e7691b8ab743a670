"""Experiment loggers from config (W&B that never prompts, hangs or crashes a run; a CSV
logger that continues a resumed run's file)."""

from __future__ import annotations

import csv
import importlib.util
import logging
import netrc
import os
import secrets
import socket
from pathlib import Path
from urllib.parse import urlparse

from hydra.utils import instantiate
from lightning.fabric.loggers.csv_logs import _ExperimentWriter as _FabricExperimentWriter
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from omegaconf import DictConfig, OmegaConf

from colorlab.errors import ColorlabError

log = logging.getLogger(__name__)

_WANDB = ("colorlab.training.loggers.WandbLogger", "lightning.pytorch.loggers.WandbLogger")
_TENSORBOARD = "lightning.pytorch.loggers.TensorBoardLogger"


def wandb_host() -> str:
    return (
        urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
        or "api.wandb.ai"
    )


def wandb_api_key() -> str | None:
    """The W&B API key from ``WANDB_API_KEY`` or ~/.netrc (where ``wandb login`` puts it)."""
    if os.environ.get("WANDB_API_KEY"):
        return os.environ["WANDB_API_KEY"]
    try:
        entry = netrc.netrc(os.environ.get("NETRC")).authenticators(wandb_host())
    except (OSError, netrc.NetrcParseError):
        return None
    return entry[2] if entry else None


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wandb_offline_reason() -> str | None:
    """Why a W&B run must be offline (no key, no network), or None to go online.

    An explicit ``WANDB_MODE`` is the user's choice and is respected (None).
    """
    if os.environ.get("WANDB_MODE"):
        return None
    if not wandb_api_key():
        return "no W&B API key configured (WANDB_API_KEY or `wandb login`)"
    if not reachable(wandb_host()):
        return f"{wandb_host()} is unreachable"
    return None


def check_wandb_online() -> None:
    """With ``WANDB_MODE=online`` (the user's explicit choice), fail at once with one line
    when there is no API key or no way to the server, instead of W&B's minutes-long retries."""
    if os.environ.get("WANDB_MODE") != "online":
        return
    if not wandb_api_key():
        raise ColorlabError(
            "WANDB_MODE=online but no W&B API key is configured (WANDB_API_KEY or `wandb login`); "
            "log in, or unset WANDB_MODE to log offline"
        )
    if not reachable(wandb_host()):
        raise ColorlabError(
            f"WANDB_MODE=online but {wandb_host()} is unreachable; unset WANDB_MODE to log "
            "offline and upload later with `wandb sync`"
        )


def uses_wandb(config: DictConfig | None) -> bool:
    """Whether the ``logger`` group holds a W&B logger."""
    return any(
        isinstance(entry, (dict, DictConfig)) and entry.get("_target_") in _WANDB
        for entry in (config or {}).values()
    )


def new_wandb_id() -> str:
    """A fresh W&B run id (8 lowercase hex characters), kept in run.json for resuming."""
    return secrets.token_hex(4)


def build_loggers(
    config: DictConfig | None,
    group: str | None = None,
    name: str | None = None,
    wandb_id: str | None = None,
) -> list[Logger]:
    """Instantiate every logger under ``config`` (the ``logger`` group: name -> config).

    W&B runs go offline automatically when there is no key or no network; runs of a sweep
    share ``group`` and a W&B run is called ``name`` unless the config names them;
    ``wandb_id`` (the id a resumed run kept) continues that W&B run.
    """
    loggers: list[Logger] = []
    for key, entry in (config or {}).items():
        entry = OmegaConf.to_container(entry, resolve=True)
        if not isinstance(entry, dict) or "_target_" not in entry:
            raise ColorlabError(f"logger.{key!s} has no _target_; see conf/logger/ for examples")
        target = entry["_target_"]
        if target in _WANDB:
            check_wandb_online()
            reason = wandb_offline_reason()
            if reason and not entry.get("offline"):
                log.info("W&B runs offline: %s. Sync later with `wandb sync`.", reason)
                entry["offline"] = True
            if entry.get("offline") and entry.get("log_model"):
                # Lightning refuses log_model offline; W&B itself keeps the artifacts for sync.
                entry.update(offline=False, mode="offline")
            if group and not entry.get("group"):
                entry["group"] = group
            if name and not entry.get("name"):
                entry["name"] = name
            if wandb_id and not entry.get("id"):
                entry.update(id=wandb_id, resume="allow")
            os.makedirs(entry.get("save_dir") or ".", exist_ok=True)
        elif target == _TENSORBOARD and not _has_tensorboard():
            raise ColorlabError(
                "logger=tensorboard needs TensorBoard: pip install 'colorlab[tensorboard]'"
            )
        loggers.append(instantiate(entry))
    return loggers


class WandbLogger(LightningWandbLogger):
    """Lightning's W&B logger, except that ``log_model`` artifacts carry the aliases
    ``best`` (the checkpoint callback's best) and ``last`` (its last.ckpt), beside ``latest``.
    """

    def _scan_and_log_checkpoints(self, checkpoint_callback: ModelCheckpoint) -> None:
        import wandb

        best = checkpoint_callback.best_model_path
        last = checkpoint_callback.last_model_path
        paths = {p for p in (best, last) if p and Path(p).is_file()}
        for path in sorted(paths, key=lambda p: Path(p).stat().st_mtime):
            modified = Path(path).stat().st_mtime
            if self._logged_model_time.get(path) == modified:
                continue  # logged already, unchanged
            score = checkpoint_callback.best_model_score if path == best else None
            metadata = {
                "score": float(score) if score is not None else None,
                "original_filename": Path(path).name,
                "monitor": checkpoint_callback.monitor,
                "mode": checkpoint_callback.mode,
            }
            self._checkpoint_name = self._checkpoint_name or f"model-{self.experiment.id}"
            artifact = wandb.Artifact(name=self._checkpoint_name, type="model", metadata=metadata)
            artifact.add_file(path, name="model.ckpt", policy=self.add_file_policy)
            aliases = ["latest"]
            aliases += ["best"] if path == best else []
            aliases += ["last"] if path == last else []
            self.experiment.log_artifact(artifact, aliases=aliases)
            self._logged_model_time[path] = modified


def _has_tensorboard() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX"))


class AppendingCSVLogger(CSVLogger):
    """Lightning's CSV logger, except that an existing ``metrics.csv`` (a run resumed in its
    own folder) is continued: Lightning's would delete it."""

    @property
    @rank_zero_experiment
    def experiment(self) -> _FabricExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        """Keep an earlier metrics.csv and its columns (new columns rewrite its header)."""
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])
