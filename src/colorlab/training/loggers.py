"""Experiment loggers from config (W&B that never prompts, hangs or crashes a run; a CSV
logger that continues a resumed run's file)."""

from __future__ import annotations

import csv
import importlib.util
import logging
import netrc
import os
import socket
from urllib.parse import urlparse

from hydra.utils import instantiate
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from omegaconf import DictConfig, OmegaConf

from colorlab.errors import ColorlabError

log = logging.getLogger(__name__)

_WANDB = "lightning.pytorch.loggers.WandbLogger"
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


def build_loggers(config: DictConfig | None, group: str | None = None) -> list[Logger]:
    """Instantiate every logger under ``config`` (the ``logger`` group: name -> config).

    W&B runs go offline automatically when there is no key or no network, and runs of
    a sweep share ``group`` unless the config names one.
    """
    loggers: list[Logger] = []
    for name, entry in (config or {}).items():
        entry = OmegaConf.to_container(entry, resolve=True)
        if not isinstance(entry, dict) or "_target_" not in entry:
            raise ColorlabError(f"logger.{name} has no _target_; see conf/logger/ for examples")
        target = entry["_target_"]
        if target == _WANDB:
            check_wandb_online()
            reason = wandb_offline_reason()
            if reason and not entry.get("offline"):
                log.info("W&B runs offline: %s. Sync later with `wandb sync`.", reason)
                entry["offline"] = True
            if group and not entry.get("group"):
                entry["group"] = group
            os.makedirs(entry.get("save_dir") or ".", exist_ok=True)
        elif target == _TENSORBOARD and not _has_tensorboard():
            raise ColorlabError(
                "logger=tensorboard needs TensorBoard: pip install 'colorlab[tensorboard]'"
            )
        loggers.append(instantiate(entry))
    return loggers


def _has_tensorboard() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX"))


class AppendingCSVLogger(CSVLogger):
    """Lightning's CSV logger, except that an existing ``metrics.csv`` (a run resumed in its
    own folder) is continued: Lightning's would delete it."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
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
