"""Does the baseline learn? Train it at 64 px for a fixed time on CPU, compare with gray.

    python experiments/learning_check.py synthetic --minutes 2
    python experiments/learning_check.py scenes --minutes 2 [--root ../shared/data/scenes]
    python experiments/learning_check.py synthetic --minutes 2 loss=classification

Prints images/s and the val metrics of the best checkpoint next to the gray prediction
(ab = 0): ab-MSE and colourfulness in the summary, every metric under ``metrics``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from colorlab.configs import config_dir
from colorlab.inference import load_colorizer
from colorlab.inference.evaluation import evaluate_colorizers
from colorlab.train import train

DEFAULT_SCENES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scenes"


def learning_check(
    data: str,
    minutes: float,
    root: Path | None = None,
    run_dir: Path | None = None,
    extra: list[str] = (),
) -> dict:
    data_args = (
        ["data=synthetic", "data.num_images=2000"]
        if data == "synthetic"
        else [
            "data=folder",
            f"data.root={root or os.environ.get('COLORLAB_SCENES', DEFAULT_SCENES)}",
            "data.limit=2000",
        ]
    )
    run_dir = run_dir or Path(tempfile.mkdtemp(prefix=f"learning-{data}-"))
    overrides = [
        f"run_dir={run_dir}",
        *data_args,
        "model=baseline",
        "data.image_size=64",
        "data.batch_size=32",
        "data.num_workers=1",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=1000",
        f"trainer.max_time=00:00:{int(minutes):02d}:{int(minutes * 60) % 60:02d}",
        "logger=csv",
        "test_after_fit=false",
        "~callbacks.model_summary",
        "~callbacks.progress_bar",
        *extra,
    ]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    start = time.perf_counter()
    summary = train(cfg)
    seconds = time.perf_counter() - start
    colorizer = load_colorizer(summary["best_checkpoint"], device="cpu")
    datamodule = instantiate(cfg.data)
    results, _ = evaluate_colorizers(
        {"gray": None, "model": colorizer}, datamodule.val_dataloader(), colorizer.device, 0
    )
    mse = {name: values["ab_mse"] for name, values in results.items()}
    trained = summary["epochs"]
    images = summary["train_batches"] * cfg.data.batch_size
    return {
        "data": data,
        "train_seconds": round(seconds, 1),
        "epochs": int(trained),
        "train_images_per_s": round(images / seconds, 1),
        "val_ab_mse_model": round(mse["model"], 5),
        "val_ab_mse_gray": round(mse["gray"], 5),
        "ratio": round(mse["model"] / mse["gray"], 3),
        "val_colorfulness_model": round(results["model"]["colorfulness_pred"], 2),
        "val_colorfulness_target": round(results["model"]["colorfulness_target"], 2),
        "metrics": {name: {k: round(v, 5) for k, v in m.items()} for name, m in results.items()},
        "samples": summary["samples"],
        "run_dir": str(run_dir),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", choices=["synthetic", "scenes"])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="more config overrides, e.g. optimizer=adam")
    args = parser.parse_intermixed_args()
    print(
        json.dumps(
            learning_check(args.data, args.minutes, args.root, extra=args.overrides), indent=2
        )
    )
