"""Losses compared at the same budget: mse, l1, mse + colourfulness, classification with and
without rebalancing. Each trains the baseline identically (same data, epochs, optimizer,
seed); the last checkpoints are then scored together on the validation split.

    python experiments/compare_losses.py --epochs 6 [--size 64] [--limit 2000] [--out runs/losses]
    python experiments/compare_losses.py loss.colorfulness_weight=0.02 --only mse+colorfulness

Prints one JSON line per variant (training images/s included) and a Markdown table; the
side-by-side picture is ``python -m colorlab.evaluate`` over the printed checkpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from colorlab.app import config_dir
from colorlab.evaluation import evaluate_colorizers, markdown_table
from colorlab.inference import load_colorizer
from colorlab.train import train

DEFAULT_SCENES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scenes"

VARIANTS = {
    "mse": ["loss=mse"],
    "l1": ["loss=l1"],
    "mse+colorfulness": ["loss=mse", "loss.colorfulness_weight=0.1"],
    "classification": ["loss=classification"],
    "classification, no rebalancing": ["loss=classification", "loss.rebalance=null"],
}


def compare(
    epochs: int,
    size: int,
    limit: int,
    out: Path,
    root: Path,
    extra: list[str],
    only: list[str] | None = None,
) -> dict:
    common = [
        "data=folder",
        f"data.root={root}",
        f"data.limit={limit}",
        f"data.image_size={size}",
        "data.batch_size=8",
        "data.num_workers=1",
        "optimizer=adam",
        "model=baseline",
        f"trainer.max_epochs={epochs}",
        "logger=csv",
        "test_after_fit=false",
        "~callbacks.model_summary",
        "~callbacks.progress_bar",
    ]
    checkpoints, speeds = {}, {}
    for name, overrides in VARIANTS.items():
        if only and name not in only:
            continue
        run_dir = out / name.replace(", ", "_").replace(" ", "_").replace("+", "_")
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose("train", overrides=[f"run_dir={run_dir}", *common, *overrides, *extra])
        start = time.perf_counter()
        summary = train(cfg)
        seconds = time.perf_counter() - start
        checkpoints[name] = run_dir / "checkpoints" / "last.ckpt"
        speeds[name] = round(summary["train_batches"] * cfg.data.batch_size / seconds, 1)
    datamodule = instantiate(cfg.data)
    colorizers = {
        "gray": None,
        **{n: load_colorizer(p, device="cpu") for n, p in checkpoints.items()},
    }
    results, _ = evaluate_colorizers(
        colorizers, datamodule.val_dataloader(), torch.device("cpu"), num_images=0
    )
    for name, values in results.items():
        row = {"variant": name, **{k: round(v, 5) for k, v in values.items()}}
        row["train_images_per_s"] = speeds.get(name)
        print(json.dumps(row), flush=True)
    print(markdown_table(results))
    print("checkpoints:", " ".join(str(p) for p in checkpoints.values()))
    return {"metrics": results, "train_images_per_s": speeds, "checkpoints": checkpoints}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("runs/losses"))
    parser.add_argument(
        "--root", type=Path, default=Path(os.environ.get("COLORLAB_SCENES", DEFAULT_SCENES))
    )
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="run these variants")
    parser.add_argument("overrides", nargs="*", help="more config overrides for every variant")
    args = parser.parse_intermixed_args()
    compare(args.epochs, args.size, args.limit, args.out, args.root, args.overrides, args.only)
