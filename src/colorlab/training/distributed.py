"""Which process of a distributed run this is, and what only one of them may do."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from colorlab.errors import ColorlabError

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger(__name__)

#: Variables by which launchers tell a process its rank: torchrun (RANK), srun (SLURM_PROCID,
#: what Lightning's SLURM environment reads), Lightning's own launcher (NODE_RANK, LOCAL_RANK).
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK")


def launched_as_rank_zero() -> bool:
    """Whether this process is global rank 0 as its launcher's environment says, before a
    Trainer exists (which then knows ``trainer.is_global_zero``). A single process is."""
    return all(int(os.environ.get(name) or 0) == 0 for name in RANK_VARIABLES)


def check_launchable(trainer: L.Trainer) -> None:
    """Refuse a run whose trainer would start DDP processes itself inside a Hydra multirun.

    Lightning starts ranks > 0 by re-running the command line, which in a multirun would
    start the whole sweep again in each of them. A cluster launcher (SLURM through
    ``hydra/launcher=slurm``) starts every rank itself and is fine.
    """
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    environment = getattr(trainer.strategy, "cluster_environment", None)
    if trainer.world_size > 1 and not (environment and environment.creates_processes_externally):
        raise ColorlabError(
            f"a multirun cannot start {trainer.world_size} DDP processes per run on this machine "
            "(trainer.devices / trainer.num_nodes > 1): Lightning would re-run the whole sweep in "
            "each; use a cluster launcher (hydra/launcher=slurm) or train the runs one at a time"
        )


def requeued_checkpoint(run_dir: Path) -> str | None:
    """The run's ``last.ckpt`` when SLURM has restarted its job (requeued after preemption or
    at its time limit: ``SLURM_RESTART_COUNT`` ≥ 1), so that the job resumes its own run
    instead of refusing the folder it wrote; else None."""
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    last = run_dir / "checkpoints" / "last.ckpt"
    if restarts < 1 or not last.is_file():
        return None
    log.info("SLURM restarted this job (%d times): resuming from %s", restarts, last)
    return str(last)
