"""``python -m colorlab.bench [train overrides] [bench.KEY=VALUE]``: how fast colorlab trains
and colorizes, with the configuration ``colorlab.train`` would use.

Rows (``bench.rows``) are the functions of `colorlab.benchmarks`: ``model``, ``train``,
``epoch``, ``colorize`` and (on request) ``onnx``, ``video``, ``data`` and ``memory``. Prints a table and one JSON line per row
(``images_per_s``, ``vs_model``), also appended to ``<run dir>/bench.jsonl``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from colorlab.benchmarks import NEEDS_CHECKPOINT, ROWS, Bench
from colorlab.cli.runner import one_line_errors, run_app
from colorlab.cli.validation import BENCH_RULES, TRAIN_RULES, validate
from colorlab.configs import config_dir
from colorlab.devices import accelerator_device
from colorlab.errors import ColorlabError, check_choice
from colorlab.inference.network import display_name
from colorlab.losses import loss_name
from colorlab.models import model_name

#: Rows whose speed is compared with the ``model`` row's (``vs_model``).
_VS_MODEL = ("train", "epoch")
_NOTES = (
    "cache",
    "epochs",
    "wall_s",
    "photo_size",
    "threads",
    "floor_images_per_s",
    "vs_floor",
    "network_images_per_s",
    "torch_images_per_s",
    "megapixels",
    "peak_rss_gb",
    "video_size",
    "none_frames_per_s",
    "ema_frames_per_s",
    "flow_vs_none",
    "batches_per_s",
    "folder_images_per_s",
    "cache_images_per_s",
    "vs_folder",
    "sized_images_per_s",
    "sized_vs_folder",
)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def check_rows(cfg: DictConfig) -> list[str]:
    """``bench.rows`` as a list of known rows, each checkpoint row after a row that makes
    one or with ``bench.ckpt`` (`ColorlabError` otherwise)."""
    rows = list(cfg.bench.rows)
    for position, name in enumerate(rows):
        check_choice("bench.rows", name, ROWS)  # an OptionError is a ColorlabError
        if name in NEEDS_CHECKPOINT and not cfg.bench.ckpt and "epoch" not in rows[:position]:
            raise ColorlabError(
                f"the {name} row needs a checkpoint: put the epoch row before it in bench.rows, "
                "or pass bench.ckpt=PATH"
            )
    return rows


def bench(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run the rows ``cfg.bench.rows``; returns their records (as printed)."""
    validate(cfg, TRAIN_RULES + BENCH_RULES)
    rows = check_rows(cfg)
    L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision("high")
    device = accelerator_device(cfg.trainer.get("accelerator", "auto"))
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    common = {
        "model": model_name(cfg.model),
        "loss": loss_name(cfg.loss),
        "configuration": display_name(cfg.model, cfg.loss),
        "data": cfg.data._target_.rsplit(".", 1)[-1].removesuffix("DataModule").lower(),
        "image_size": cfg.data.image_size,
        "batch_size": cfg.data.batch_size,
        "precision": str(cfg.trainer.precision),
        "compile": cfg.get("compile", False),
        "device": _device_name(device),
    }
    records: list[dict[str, Any]] = []
    model_speed = None
    with tempfile.TemporaryDirectory(prefix="colorlab-bench-") as scratch:
        context = Bench(device, run_dir, Path(scratch), cfg.bench.get("ckpt"), cfg.trust_checkpoint)
        for name in rows:
            result = ROWS[name](cfg, context)
            if name == "model":
                model_speed = result["images_per_s"]
            record = {"row": name, **common, **_rounded(result)}
            if model_speed and name in _VS_MODEL:
                record["vs_model"] = round(result["images_per_s"] / model_speed, 3)
            records.append(record)
    _report(records, run_dir / "bench.jsonl")
    return records


def _rounded(result: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}


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
