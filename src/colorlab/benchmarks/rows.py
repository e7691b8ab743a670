"""The registry of benchmark rows: each row is a function ``(cfg, bench) -> record`` that
measures one thing and returns its numbers (``images_per_s``, ``seconds``, notes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from colorlab.errors import ColorlabError


@dataclass
class Bench:
    """What the rows of one ``colorlab.bench`` run share: the device, folders, the checkpoint
    the colorize rows use (``bench.ckpt``, or the one the epoch row trained) and whether it
    may be unpickled in full (``trust_checkpoint``)."""

    device: torch.device
    run_dir: Path
    scratch: Path
    ckpt: str | None = None
    trusted: bool = False

    def checkpoint(self) -> str:
        """The checkpoint of the colorize rows (`NEEDS_CHECKPOINT`: checked before any row)."""
        if not self.ckpt:
            raise ColorlabError("this row needs a checkpoint: bench.ckpt=PATH or the epoch row")
        return self.ckpt


Row = Callable[[DictConfig, Bench], dict[str, Any]]
#: name -> row, in the order ``bench.rows`` may list them.
ROWS: dict[str, Row] = {}
#: Rows that need a checkpoint: the epoch row's, or ``bench.ckpt``.
NEEDS_CHECKPOINT: set[str] = set()


def row(name: str, needs_checkpoint: bool = False) -> Callable[[Row], Row]:
    """Register a row function under ``name``."""

    def register(function: Row) -> Row:
        ROWS[name] = function
        if needs_checkpoint:
            NEEDS_CHECKPOINT.add(name)
        return function

    return register
