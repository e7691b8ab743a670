"""``python -m colorlab.bench [train overrides] [bench.KEY=VALUE]``: how fast colorlab trains
and colorizes, with the configuration ``colorlab.train`` would use.

Rows (``bench.rows``):

- ``model``: the network alone: forward, loss, backward and optimizer step on one batch that
  stays on the device (the ceiling for everything else).
- ``train``: end-to-end training steps through Lightning: data (cache or workers) → device →
  augmentation and Lab → step; no validation.
- ``epoch``: whole epochs of ``colorlab.train``: validation, checkpoints and sample pictures
  included (the first epoch, with start-up and compilation, is not timed; ``wall_s`` is the
  whole run, start-up included).
- ``colorize``: ``colorize.py``'s path over JPEG photos read from disk (decode, model, merge at
  full resolution, encode), from the ``epoch`` row's checkpoint or ``bench.ckpt``.
- ``memory`` (not by default): peak resident memory of ``python -m colorlab.colorize`` on one
  photo of ``bench.megapixels``.

Prints a table and one JSON line per row (``images_per_s``, ``vs_model``), also appended to
``<run dir>/bench.jsonl``.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from PIL import Image
from rich.console import Console
from rich.table import Table

from colorlab.app import config_dir, one_line_errors, run_app
from colorlab.colorize import colorize_files, plan_jobs
from colorlab.data.synthetic import render_scenes
from colorlab.errors import ColorlabError, check_choice
from colorlab.inference import load_colorizer, loss_name
from colorlab.models import model_name
from colorlab.module import ColorizationModule
from colorlab.train import build_module, train
from colorlab.validation import TRAIN_RULES, validate

ROWS = ("model", "train", "epoch", "colorize", "memory")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_device(cfg: DictConfig) -> torch.device:
    """The device ``cfg.trainer`` trains on (its first GPU, or the CPU)."""
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _autocast(cfg: DictConfig, device: torch.device):
    precision = str(cfg.trainer.get("precision", "32-true"))
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


# -- rows ------------------------------------------------------------------------------------
def model_row(cfg: DictConfig, device: torch.device) -> dict[str, Any]:
    """Images per second of the network's training step on one batch kept on the device."""
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    dataset = datamodule.datasets["train"]
    indices = [i % len(dataset) for i in range(cfg.data.batch_size)]
    raw = torch.stack([dataset[i] for i in indices]).to(device)
    batch = datamodule.prepare_batch(raw)
    module: ColorizationModule = build_module(cfg).to(device).train()
    if getattr(module.loss_fn, "needs_prior", False):
        module.loss_fn.fit_prior([batch["ab"]])
    module.configure_network()
    optimizers = module.configure_optimizers()
    optimizer = optimizers["optimizer"] if isinstance(optimizers, dict) else optimizers
    autocast = _autocast(cfg, device)

    def step() -> None:
        with autocast:
            loss = module.loss_fn(module.net(batch["L"]), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(cfg.bench.warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(cfg.bench.steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - start
    return {"images_per_s": cfg.bench.steps * len(indices) / seconds, "seconds": seconds}


class Timer(L.Callback):
    """Times training from the first batch or epoch start where at least ``after_steps``
    steps and ``after_epochs`` epochs are done, until fitting ends with every checkpoint
    written (the device synchronised at both ends); counts the images and epochs in between.
    The latest instance is `Timer.latest` (``colorlab.train`` builds its callbacks itself)."""

    latest: Timer | None = None

    def __init__(self, after_steps: int = 0, after_epochs: int = 0) -> None:
        self.after_steps = after_steps
        self.after_epochs = after_epochs
        self.images = 0
        self.epochs = 0
        self.start: float | None = None
        self.seconds = 0.0
        Timer.latest = self

    def _start_if_due(self, trainer, pl_module) -> None:
        due = trainer.global_step >= self.after_steps and trainer.current_epoch >= self.after_epochs
        if self.start is None and due:
            _sync(pl_module.device)
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
        _sync(pl_module.device)
        if self.start is not None:
            self.seconds = time.perf_counter() - self.start


def train_row(cfg: DictConfig, device: torch.device) -> dict[str, Any]:
    """Images per second of Lightning training steps fed by the configured data."""
    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    timer = Timer(after_steps=cfg.bench.warmup)
    trainer: L.Trainer = instantiate(
        cfg.trainer,
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
        default_root_dir=tempfile.gettempdir(),
    )
    trainer.fit(module, datamodule=datamodule)
    if not timer.images:
        raise ColorlabError("the train row ran no timed step; raise bench.steps")
    return {
        "images_per_s": timer.images / timer.seconds,
        "seconds": timer.seconds,
        "cache": datamodule.cache_mode(),
    }


def epoch_row(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Images per second over whole epochs of ``colorlab.train`` (``bench.epochs`` of them
    after a first, untimed one), and the wall time of the whole run."""
    run = copy.deepcopy(cfg)
    with open_dict(run):
        run.run_dir = str(run_dir)
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
    timer = Timer.latest
    if timer is None or not timer.images:
        raise ColorlabError("the epoch row timed no epoch; set bench.epochs ≥ 1")
    return {
        "images_per_s": timer.images / timer.seconds,
        "seconds": timer.seconds,
        "epochs": timer.epochs,
        "wall_s": wall,
        "checkpoint": summary["best_checkpoint"],
    }


def _write_photos(folder: Path, count: int, size: int, device: torch.device) -> None:
    folder.mkdir(parents=True)
    for start in range(0, count, 8):
        scenes = render_scenes(11, range(start, min(start + 8, count)), size, device=device)
        for i, scene in enumerate(scenes.permute(0, 2, 3, 1).cpu().numpy()):
            Image.fromarray(scene).save(folder / f"photo_{start + i:04d}.jpg", quality=90)


def colorize_row(cfg: DictConfig, ckpt: str, device: torch.device, work: Path) -> dict[str, Any]:
    """Photos per second through colorize's own path, from JPEG files on disk to files."""
    options = cfg.bench
    _write_photos(work / "photos", options.colorize_images, options.colorize_size, device)
    colorizer = load_colorizer(ckpt, device=device)
    warm = plan_jobs(str(work / "photos" / "photo_000[0-3].jpg"), work / "warm-up", "", None)
    colorize_files(colorizer, warm, options.colorize_batch, 0.0)
    jobs = plan_jobs(str(work / "photos"), work / "colorized", "", None)
    _sync(device)
    start = time.perf_counter()
    counts = colorize_files(colorizer, jobs, options.colorize_batch, 0.0)
    _sync(device)
    seconds = time.perf_counter() - start
    return {"images_per_s": counts["images"] / seconds, "seconds": seconds}


# The child reports its own peak: VmHWM of /proc/self/status is per address space.
_PEAK_RSS_CHILD = """
import sys
from colorlab.colorize import main
sys.argv = sys.argv[1:]
code = 0
try:
    main()
except SystemExit as error:
    code = error.code or 0
status = open("/proc/self/status").read()
print("peak_rss_kb", status.split("VmHWM:")[1].split()[0])
sys.exit(code)
"""


def memory_row(ckpt: str, megapixels: float, device: torch.device, work: Path) -> dict[str, Any]:
    """Peak resident memory of ``python -m colorlab.colorize`` on one 4:3 JPEG photo."""
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(width * 3 / 4))
    y, x = np.ogrid[0:height, 0:width]
    picture = np.empty((height, width, 3), np.uint8)
    picture[..., 0] = (127 + 120 * np.sin(x / 700.0)).astype(np.uint8)
    picture[..., 1] = (127 + 120 * np.cos(y / 500.0)).astype(np.uint8)
    picture[..., 2] = ((x + y) % 256).astype(np.uint8)
    Image.fromarray(picture).save(work / "large.jpg", quality=90)
    del picture
    command = [
        sys.executable,
        "-c",
        _PEAK_RSS_CHILD,
        "colorize",
        f"ckpt={ckpt}",
        f"input={work / 'large.jpg'}",
        f"output={work / 'large-out'}",
        f"colorize.device={device.type}",
        f"colorize.max_megapixels={max(179, 2 * megapixels)}",
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise ColorlabError(f"colorize failed in the memory row: {result.stderr.strip()[-500:]}")
    peak_kb = int(result.stdout.split("peak_rss_kb")[-1].split()[0])
    return {
        "megapixels": round(width * height / 1e6, 1),
        "peak_rss_gb": round(peak_kb / 1024**2, 2),
        "seconds": seconds,
    }


# -- the command -----------------------------------------------------------------------------
def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def bench(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run the rows ``cfg.bench.rows``; returns their records (as printed)."""
    validate(cfg, TRAIN_RULES)
    rows = list(cfg.bench.rows)
    for position, row in enumerate(rows):
        check_choice("bench.rows", row, ROWS)
        if row in ("colorize", "memory") and not cfg.bench.ckpt and "epoch" not in rows[:position]:
            raise ColorlabError(
                f"the {row} row needs a checkpoint: put the epoch row before it in bench.rows, "
                "or pass bench.ckpt=PATH"
            )
    L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision("high")
    device = training_device(cfg)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    common = {
        "model": model_name(cfg.model),
        "loss": loss_name(cfg.loss),
        "data": cfg.data._target_.rsplit(".", 1)[-1].removesuffix("DataModule").lower(),
        "image_size": cfg.data.image_size,
        "batch_size": cfg.data.batch_size,
        "precision": str(cfg.trainer.precision),
        "compile": cfg.get("compile", False),
        "device": _device_name(device),
    }
    records: list[dict[str, Any]] = []
    model_speed = None
    ckpt = cfg.bench.get("ckpt")
    with tempfile.TemporaryDirectory(prefix="colorlab-bench-") as scratch:
        for row in rows:
            if row == "model":
                result = model_row(cfg, device)
                model_speed = result["images_per_s"]
            elif row == "train":
                result = train_row(cfg, device)
            elif row == "epoch":
                result = epoch_row(cfg, run_dir / "epoch_run")
                ckpt = ckpt or result.pop("checkpoint")
                result.pop("checkpoint", None)
            elif row == "colorize":
                result = colorize_row(cfg, ckpt, device, Path(scratch) / "colorize")
                result["photo_size"] = cfg.bench.colorize_size
            else:
                result = memory_row(ckpt, cfg.bench.megapixels, device, Path(scratch))
            record = {"row": row, **common, **_rounded(result)}
            if model_speed and row in ("train", "epoch"):
                record["vs_model"] = round(result["images_per_s"] / model_speed, 3)
            records.append(record)
    _report(records, run_dir / "bench.jsonl")
    return records


def _rounded(result: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}


_NOTES = ("cache", "epochs", "wall_s", "photo_size", "megapixels", "peak_rss_gb")


def _report(records: list[dict[str, Any]], jsonl: Path) -> None:
    table = Table(title=f"colorlab.bench on {records[0]['device']}" if records else "")
    for column in ("row", "images/s", "vs model", "seconds", "notes"):
        table.add_column(column, justify="left" if column in ("row", "notes") else "right")
    for record in records:
        notes = {k: record[k] for k in _NOTES if k in record}
        table.add_row(
            record["row"],
            f"{record['images_per_s']:.1f}" if "images_per_s" in record else "",
            f"{record['vs_model']:.2f}" if "vs_model" in record else "",
            f"{record['seconds']:.1f}",
            ", ".join(f"{k} {v}" for k, v in notes.items()),
        )
    Console().print(table)
    with open(jsonl, "a") as out:
        for record in records:
            line = json.dumps(record)
            print(line, flush=True)
            out.write(line + "\n")
    print(f"colorlab: benchmark written to {jsonl}", flush=True)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="bench")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    OmegaConf.resolve(cfg.bench)
    bench(cfg)


def main() -> None:
    run_app(_hydra_main)


if __name__ == "__main__":
    main()
