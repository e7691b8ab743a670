"""Objectives compared at the same budget: the losses (mse, l1, classification) and their
added terms (colourfulness, perceptual, adversarial, classification + L1), and
``experiment=vivid``. Each trains the same network identically (same data, epochs, optimizer,
seed); the last checkpoints are then scored together on the validation split. A variant whose
``last.ckpt`` exists under ``--out`` is not trained again (``--retrain`` to force).

    python experiments/compare_losses.py --epochs 3 [--size 64] [--limit 2000] [--out runs/losses]
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

from colorlab.configs import config_dir
from colorlab.inference import load_colorizer
from colorlab.inference.evaluation import evaluate_colorizers, markdown_table
from colorlab.train import train
from colorlab.training.record import read_record

#: What every variant but a recipe (``experiment=…``) trains with.
BASELINE = ["model=baseline", "optimizer=adam"]
DEFAULT_SCENES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scenes"

VARIANTS = {
    "mse": ["loss=mse"],
    "l1": ["loss=l1"],
    "mse+colorfulness": ["loss=mse", "loss.colorfulness_weight=0.1"],
    "classification": ["loss=classification"],
    "classification, no rebalancing": ["loss=classification", "loss.rebalance=null"],
    "l1+colorfulness": ["loss=l1", "loss.colorfulness_weight=0.02"],
    "l1+colorfulness 0.05": ["loss=l1", "loss.colorfulness_weight=0.05"],
    "l1+colorfulness 0.1": ["loss=l1", "loss.colorfulness_weight=0.1"],
    "l1+perceptual": ["loss=l1", "loss.perceptual_weight=0.1"],
    "l1+adversarial": ["loss=l1", "loss.adversarial_weight=0.01", "loss.adversarial_start_epoch=1"],
    "l1+perceptual+adversarial+colorfulness": [
        "loss=l1",
        "loss.perceptual_weight=0.1",
        "loss.adversarial_weight=0.01",
        "loss.adversarial_start_epoch=1",
        "loss.colorfulness_weight=0.02",
    ],
    "classification+l1": ["loss=classification", "loss.l1_weight=1.0"],
    "vivid": ["experiment=vivid"],
    "hints": ["experiment=hints"],
    # hints as SIGGRAPH17 takes them: the points alone, not spread (model.hint_spread=null)
    "hints, points alone": ["experiment=hints", "model.hint_spread=null"],
    # hints with a full-resolution prediction: the U-Net's L1 regression, or the bins at 1/1
    "hints, l1": ["experiment=hints", "loss=l1", "loss.l1_weight=0"],
    "hints, bins at full resolution": ["experiment=hints", "loss.downsample=1"],
    "vivid, l1 3": ["experiment=vivid", "loss.l1_weight=3.0"],
    "vivid, l1 5": ["experiment=vivid", "loss.l1_weight=5.0"],
    "vivid, l1 6": ["experiment=vivid", "loss.l1_weight=6.0"],
    "vivid, l1 10": ["experiment=vivid", "loss.l1_weight=10.0"],
    # the published architectures with their papers' recipes, and at vivid's learning rate
    "eccv16": ["experiment=eccv16"],
    "siggraph17": ["experiment=siggraph17"],
    "eccv16, lr 1e-3": ["experiment=eccv16", "optimizer.lr=1e-3"],
    "siggraph17, lr 1e-3": ["experiment=siggraph17", "optimizer.lr=1e-3"],
    "unet l1+colorfulness 0.03": [
        "experiment=vivid",
        "loss=l1",
        "loss.l1_weight=0",  # vivid's added L1 term: the loss is L1 already
        "loss.colorfulness_weight=0.03",
    ],
}


def compare(
    epochs: int,
    size: int,
    limit: int,
    out: Path,
    root: Path,
    extra: list[str],
    only: list[str] | None = None,
    retrain: bool = False,
) -> dict:
    common = [
        "data=folder",
        f"data.root={root}",
        f"data.limit={limit}",
        f"data.image_size={size}",
        "data.batch_size=8",
        "data.num_workers=1",
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
            # the baseline with Adam, unless the variant is a recipe of its own (experiment=…)
            network = [] if any(o.startswith("experiment=") for o in overrides) else BASELINE
            cfg = compose(
                "train", overrides=[f"run_dir={run_dir}", *common, *network, *overrides, *extra]
            )
        checkpoints[name] = run_dir / "checkpoints" / "last.ckpt"
        if checkpoints[name].is_file() and not retrain:
            continue
        start = time.perf_counter()
        train(cfg)
        seconds = time.perf_counter() - start
        # the run's own record times the training phases only (no decoding, no validation)
        speeds[name] = read_record(run_dir)["train_images_per_s"]
        (run_dir / "speed.json").write_text(
            json.dumps({"train_images_per_s": speeds[name], "wall_s": round(seconds, 1)})
        )
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
        speed_file = checkpoints[name].parents[1] / "speed.json" if name in checkpoints else None
        if speed_file and speed_file.is_file():
            row["train_images_per_s"] = json.loads(speed_file.read_text())["train_images_per_s"]
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
    parser.add_argument("--retrain", action="store_true", help="train variants trained before")
    parser.add_argument("overrides", nargs="*", help="more config overrides for every variant")
    args = parser.parse_intermixed_args()
    compare(
        args.epochs,
        args.size,
        args.limit,
        args.out,
        args.root,
        args.overrides,
        args.only,
        args.retrain,
    )
