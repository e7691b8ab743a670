"""Hydra callbacks: checks that must run before Hydra writes anything into a run folder.

Hydra turns a callback's exception into a warning and goes on, so a refusal here ends the
process itself, as the runner would: one line, exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from colorlab.cli.runner import exit_if_expected
from colorlab.errors import ColorlabError
from colorlab.training import search
from colorlab.training.distributed import launched_as_rank_zero


class RefuseUsedRunDir(Callback):
    """Refuse a folder that holds an earlier run before Hydra rewrites its record there
    (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``), so that a refused command
    leaves every file of that folder as it was.

    Args:
        check: dotted path of the app's ``check_run_dir(run_dir, ckpt_path)``, which raises
            a `ColorlabError` for a folder it must not use (the app checks it again itself).
    """

    def __init__(self, check: str) -> None:
        self.check = check

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not launched_as_rank_zero():  # DDP's other ranks start in rank 0's folder
            return
        try:
            run_dir = Path(str(config.hydra.run.dir)).absolute()  # as Hydra will make it
            get_method(self.check)(run_dir, config.get("ckpt_path"))
        except ColorlabError as error:
            exit_if_expected(error)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if OmegaConf.select(config, "hydra.sweeper.storage"):
            return  # a search with a study continues in its own folder (hparams_search)
        sweep = Path(str(config.hydra.sweep.dir)).absolute()
        if (sweep / "multirun.yaml").is_file():
            exit_if_expected(
                ColorlabError(
                    f"{sweep} already holds a sweep (multirun.yaml); choose another hydra.sweep.dir"
                )
            )


class StudyFolder(search.StudyFolder):
    """`colorlab.training.search.StudyFolder` (a search's study continued in its sweep
    folder) whose user errors, such as a storage that cannot be opened, end the process in
    one line before any trial starts."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            super().on_multirun_start(config, **kwargs)
        except ColorlabError as error:
            exit_if_expected(error)
