"""Training rows: the network alone (``model``), Lightning's training steps with the
configured data (``train``) and whole epochs of ``colorlab.train`` (``epoch``)."""

from __future__ import annotations

import copy
import time
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, open_dict

from colorlab.benchmarks.rows import Bench, row
from colorlab.configs import build
from colorlab.data.transforms import prepare_batch
from colorlab.devices import autocast, synchronize
from colorlab.errors import ColorlabError
from colorlab.train import build_module, train


@row("model")
def model_row(cfg: DictConfig, bench: Bench) -> dict[str, Any]:
    """Images per second of the module's training step (`model_step`, backward, optimizer) on
    one batch kept on the device, its simulated hints drawn anew each step where the data
    makes them; a loss with a colour prior fits it on that batch first."""
    device = bench.device
    datamodule = build(cfg.data, "data")
    datamodule.setup()
    dataset = datamodule.datasets["train"]
    indices = [i % len(dataset) for i in range(cfg.data.batch_size)]
    batch = prepare_batch(torch.stack([dataset[i] for i in indices]).to(device))
    module = build_module(cfg).to(device).train()
    if module.loss_fn.needs_prior:
        module.fit_prior([batch["ab"]])
    module.configure_network()
    optimizers = module.configure_optimizers()
    optimizer = optimizers["optimizer"] if isinstance(optimizers, dict) else optimizers
    precision = autocast(device, str(cfg.trainer.get("precision", "32-true")))

    simulation = datamodule.hint_simulation  # simulated hints are part of a training step

    def step() -> None:
        if simulation is not None:
            batch["hints"] = simulation(batch["ab"])
        with precision:
            loss = module.model_step(batch)[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(cfg.bench.warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(cfg.bench.steps):
        step()
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"images_per_s": cfg.bench.steps * len(indices) / seconds, "seconds": seconds}


class Timer(L.Callback):
    """Times training from the first batch or epoch start where at least ``after_steps``
    steps and ``after_epochs`` epochs are done, until fitting ends with every checkpoint
    written (the device synchronised at both ends); counts the images and epochs between."""

    def __init__(self, after_steps: int = 0, after_epochs: int = 0) -> None:
        self.after_steps = after_steps
        self.after_epochs = after_epochs
        self.images = 0
        self.epochs = 0
        self.start: float | None = None
        self.seconds = 0.0

    def _start_if_due(self, trainer, pl_module) -> None:
        due = trainer.global_step >= self.after_steps and trainer.current_epoch >= self.after_epochs
        if self.start is None and due:
            synchronize(pl_module.device)
            self.start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start_if_due(trainer, pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start_if_due(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is not None:
            self.images += len(batch["L"])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.start is not None:
            self.epochs += 1

    def on_fit_end(self, trainer, pl_module) -> None:
        trainer.strategy.checkpoint_io.teardown()  # the last checkpoint written, too
        synchronize(pl_module.device)
        if self.start is not None:
            self.seconds = time.perf_counter() - self.start


@row("train")
def train_row(cfg: DictConfig, bench: Bench) -> dict[str, Any]:
    """Images per second of Lightning training steps fed by the configured data."""
    datamodule = build(cfg.data, "data")
    module = build_module(cfg)
    timer = Timer(after_steps=cfg.bench.warmup)
    trainer: L.Trainer = build(
        cfg.trainer,
        "trainer",
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        max_epochs=-1,
        max_steps=cfg.bench.warmup + cfg.bench.steps,
        max_time=None,
        default_root_dir=str(bench.scratch),
    )
    trainer.fit(module, datamodule=datamodule)
    if not timer.images:
        raise ColorlabError("the train row ran no timed step; raise bench.steps")
    return {
        "images_per_s": timer.images / timer.seconds,
        "seconds": timer.seconds,
        "cache": datamodule.cache_mode(),
    }


@row("epoch")
def epoch_row(cfg: DictConfig, bench: Bench) -> dict[str, Any]:
    """Images per second over whole epochs of ``colorlab.train`` (``bench.epochs`` of them
    after a first, untimed one), and the wall time of the whole run; its best checkpoint
    becomes the colorize rows' unless ``bench.ckpt`` names one."""
    run = copy.deepcopy(cfg)
    with open_dict(run):
        run.run_dir = str(bench.run_dir / "epoch_run")
        run.logger = None
        run.test_after_fit = False
        run.ckpt_path = None
        run.trainer.max_epochs = cfg.bench.epochs + 1
        run.callbacks = {
            **(run.callbacks or {}),
            "bench_timer": {"_target_": f"{__name__}.Timer", "after_epochs": 1},
        }
    start = time.perf_counter()
    summary = train(run)
    wall = time.perf_counter() - start
    timer = next(c for c in summary["callbacks"] if isinstance(c, Timer))
    if not timer.images:
        raise ColorlabError("the epoch row timed no epoch; set bench.epochs ≥ 1")
    bench.ckpt = bench.ckpt or summary["best_checkpoint"]
    return {
        "images_per_s": timer.images / timer.seconds,
        "seconds": timer.seconds,
        "epochs": timer.epochs,
        "wall_s": wall,
    }
