"""``python -m colorlab.train [overrides]``: fit a colorizer, then test its best checkpoint."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.trainer.states import TrainerStatus
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from colorlab.cli.runner import (
    one_line_errors,
    one_line_message,
    refuse_used_dir,
    run_app,
)
from colorlab.cli.validation import TRAIN_RULES, check_metric_names, validate
from colorlab.configs import build, config_dir, plain
from colorlab.errors import ColorlabError, RunInterrupted
from colorlab.inference.network import display_name
from colorlab.training.callbacks import ColorizationSamples
from colorlab.training.checkpoints import AtomicCheckpointIO, check_resumable
from colorlab.training.distributed import (
    check_launchable,
    launched_as_rank_zero,
    requeued_checkpoint,
)
from colorlab.training.loggers import build_loggers, new_wandb_id, uses_wandb
from colorlab.training.module import ColorizationModule
from colorlab.training.record import (
    FAILED,
    FINISHED,
    HISTORY_FILE,
    INTERRUPTED,
    RECORD_FILE,
    RunRecord,
    hydra_job,
    model_checkpoint,
    read_record,
)

#: What a training run writes into its run dir (Hydra's own .hydra/ and train.log aside).
RUN_OUTPUTS = (
    "config.yaml",
    RECORD_FILE,
    HISTORY_FILE,
    "checkpoints",
    "samples",
    "csv",
    "wandb",
    "tensorboard",
)


def sweep_group() -> str | None:
    """A name shared by the runs of one Hydra multirun (its sweep folder), else None."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    sweep = Path(HydraConfig.get().sweep.dir)
    return f"sweep-{sweep.parent.name}_{sweep.name}"


def check_run_dir(run_dir: Path, ckpt_path: str | None) -> None:
    """Refuse ``run_dir`` if it holds a run that this one does not resume (``ckpt_path``
    inside it, or the run's last.ckpt for a job SLURM restarted). Also checked by
    `colorlab.cli.hydra_callbacks.RefuseUsedRunDir` before Hydra writes its .hydra/ there."""
    ckpt_path = ckpt_path or requeued_checkpoint(run_dir)
    resuming_here = ckpt_path and run_dir.resolve() in Path(ckpt_path).resolve().parents
    if not resuming_here:
        refuse_used_dir(
            run_dir,
            RUN_OUTPUTS,
            "a training run",
            "choose another hydra.run.dir, or resume that run with "
            f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        )


def run_name(cfg: DictConfig) -> str:
    """``run_name``, or what the run is: ``model-loss-<epochs>ep``, e.g. ``vgg16-mse-200ep``."""
    if cfg.get("run_name"):
        return str(cfg.run_name)
    epochs = cfg.trainer.get("max_epochs")
    name = display_name(plain(cfg.model), plain(cfg.loss))
    return f"{name}-{epochs}ep" if epochs not in (None, -1) else name


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then (``test_after_fit``) test the best checkpoint. The run's account (status,
    metrics per epoch, speed) is kept in its folder (`colorlab.training.record`).

    Returns:
        ``run_dir``, ``best_checkpoint``, ``best_score`` (of the checkpoint's monitor),
        ``samples`` (latest sample picture), ``epochs`` and ``train_batches`` run, the
        trainer's final ``metrics``, and the ``callbacks`` the config built.
    """
    validate(cfg, TRAIN_RULES)
    L.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.run_dir)
    ckpt_path = cfg.get("ckpt_path") or requeued_checkpoint(run_dir)
    if ckpt_path and Path(ckpt_path).is_dir():
        last = next(Path(ckpt_path).glob("**/last.ckpt"), None)
        raise ColorlabError(
            f"ckpt_path={ckpt_path} is a folder; give the .ckpt file to resume"
            + (f", such as {last}" if last else "")
        )
    if ckpt_path and not Path(ckpt_path).is_file():
        raise ColorlabError(
            f"ckpt_path={ckpt_path} does not exist; give the path of a .ckpt file to resume"
        )
    rank_zero = launched_as_rank_zero()  # ranks > 0 of DDP find rank 0's config.yaml here
    if rank_zero:
        check_run_dir(run_dir, ckpt_path)

    # A resumed run continues its W&B run: the id its run.json kept.
    earlier = read_record(Path(ckpt_path).resolve().parents[1]) if ckpt_path else None
    wandb_id = None
    if uses_wandb(cfg.get("logger")):
        wandb_id = (earlier or {}).get("wandb_id") or new_wandb_id()
    record = RunRecord(run_dir, run_name(cfg), hydra_job(), wandb_id)
    with _recorded(record, rank_zero):
        datamodule = build(cfg.data, "data")
        module = build_module(cfg)
        check_metric_names(cfg, module.logged_metrics())
        if ckpt_path:
            check_resumable(ckpt_path, dict(module.hparams), cfg.trust_checkpoint)
        if rank_zero:
            run_dir.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        callbacks = [
            build(entry, f"callbacks.{key}") for key, entry in (cfg.get("callbacks") or {}).items()
        ]
        loggers = build_loggers(
            cfg.get("logger"), group=sweep_group(), name=record.name, wandb_id=wandb_id
        )
        for logger in loggers:
            logger.log_hyperparams(plain(cfg))
        trainer: L.Trainer = instantiate(
            cfg.trainer,
            callbacks=[*callbacks, record],
            logger=loggers or False,
            plugins=[AtomicCheckpointIO(cfg.trust_checkpoint)],
            **_strategy_for(module, cfg.trainer.get("strategy")),
        )
        check_launchable(trainer)
        try:
            _fit(trainer, module, datamodule, ckpt_path)
            checkpoint = model_checkpoint(trainer)
            # Every rank tests the checkpoint rank 0 chose, once rank 0 has written it (fit's
            # teardown waits for its checkpoint writer; the barrier waits for that teardown).
            best = trainer.strategy.broadcast(checkpoint.best_model_path if checkpoint else "")
            trainer.strategy.barrier("checkpoints written")
            if cfg.test_after_fit and not trainer.interrupted:
                trainer.test(module, datamodule=datamodule, ckpt_path=best or None)
        finally:
            _finish_wandb(loggers)

    samples = next((c.latest for c in callbacks if isinstance(c, ColorizationSamples)), None)
    score = checkpoint.best_model_score if checkpoint else None
    summary = {
        "run_dir": str(run_dir),
        "best_checkpoint": best or None,
        "best_score": float(score) if score is not None else None,
        "samples": str(samples) if samples else None,
        "epochs": trainer.current_epoch,
        "train_batches": trainer.fit_loop.total_batch_idx + 1,
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
        "callbacks": callbacks,  # what it built, for callers that read them (the bench)
    }
    monitor = checkpoint.monitor if checkpoint else "score"
    best_text = (
        f"best {monitor} {summary['best_score']:.4f}" if score is not None else "no best score"
    )
    if trainer.is_global_zero:
        print(
            f"colorlab: run dir {run_dir} | {best_text} | checkpoint {best or 'none'} | samples {samples or 'none'}",
            flush=True,
        )
    return summary


def build_module(cfg: DictConfig) -> ColorizationModule:
    """The `ColorizationModule` a training config describes; `ColorlabError` where the
    image size does not suit the model."""
    module = ColorizationModule(
        model=plain(cfg.model),
        loss=plain(cfg.loss),
        optimizer=plain(cfg.optimizer),
        scheduler=plain(cfg.get("scheduler")),
        image_size=cfg.data.image_size,
        channels_last=cfg.channels_last,
        compile=cfg.get("compile", False),
    )
    multiple = module.net.multiple
    if cfg.data.image_size % multiple:
        raise ColorlabError(
            f"data.image_size={cfg.data.image_size} is not allowed for this model; use a "
            f"multiple of {multiple} (e.g. {max(multiple, cfg.data.image_size // multiple * multiple)})"
        )
    return module


@contextlib.contextmanager
def _recorded(record: RunRecord, rank_zero: bool) -> Iterator[None]:
    """The run's end in its run.json: finished, interrupted, or failed with its one-line
    error. A failure before fitting (a wrong value, a missing file, a refused resume) leaves
    run.json as it was (none for a new run: fixed, it can run in the same folder)."""
    try:
        yield
    except RunInterrupted:
        if rank_zero:
            record.finish(INTERRUPTED)
        raise
    except BaseException as error:
        if rank_zero and record.started:
            record.finish(FAILED, error=one_line_message(error))
        raise
    if rank_zero:
        record.finish(FINISHED)


def _strategy_for(module: ColorizationModule, strategy: str | None) -> dict[str, str]:
    """An adversarial run under DDP: the colorizer's and the critic's backward passes each
    leave the other's parameters without gradients, which DDP must be told to expect."""
    if module.loss_fn.adversarial is not None and strategy == "ddp":
        return {"strategy": "ddp_find_unused_parameters_true"}
    return {}


def _fit(trainer: L.Trainer, module, datamodule, ckpt_path: str | None) -> None:
    """`Trainer.fit`, turning SIGTERM (which Lightning ends as a silent exit 0) and Ctrl-C
    (exit 1) into `RunInterrupted` once `Checkpoints` has saved last.ckpt."""
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except SystemExit as error:
        sigterm = isinstance(error, SIGTERMException)
        if not sigterm and trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        checkpoint = model_checkpoint(trainer)
        last = checkpoint.last_model_path if checkpoint else ""
        resume = f"resume with ckpt_path={last}" if last else "no checkpoint was written"
        raise RunInterrupted(
            f"interrupted by {'SIGTERM' if sigterm else 'SIGINT'} in epoch {trainer.current_epoch}; "
            + resume,
            143 if sigterm else 130,
        ) from None


def _finish_wandb(loggers: list) -> None:
    """Close the W&B run so that the next run of a sweep starts a fresh one."""
    from lightning.pytorch.loggers import WandbLogger

    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> float | None:
    return train(cfg)["best_score"]


def main() -> None:
    run_app(_hydra_main)


if __name__ == "__main__":
    main()
