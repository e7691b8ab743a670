"""``python -m colorlab.evaluate "ckpt=[A.ckpt,B.ckpt]" data=...``: compare checkpoints.

Every checkpoint colorizes the same photos (loaded at ``data.image_size``), each model at
its own size with its ab upsampled to the photo's, as `colorlab.colorize` does; a "gray"
row (ab = 0) is added. Writes metrics.json, metrics.md and comparison.png.

``videos=FOLDER`` scores colour videos instead (`colorlab.inference.video_evaluation`): their
grey frames colorized by every checkpoint with every ``evaluate.temporal`` setting, beside the
truth's own flicker; metrics.json and metrics.md.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, ListConfig

from colorlab.cli.runner import one_line_errors, refuse_used_dir, run_app
from colorlab.cli.validation import EVALUATE_RULES, named, validate
from colorlab.configs import build, config_dir
from colorlab.devices import resolve_device
from colorlab.errors import ColorlabError, OptionError, check_choice
from colorlab.inference.colorizer import TrainedColorizer, load_colorizer
from colorlab.inference.evaluation import (
    GRAY,
    HintSweep,
    evaluate_colorizers,
    hinted_name,
    markdown_table,
    paper_square,
    row_names,
    table_columns,
)
from colorlab.inference.flow import flow_estimator
from colorlab.inference.temporal import TEMPORAL_MODES, TemporalSettings
from colorlab.inference.video_evaluation import (
    CUT_CHANGE,
    evaluate_videos,
    find_videos,
    video_table,
)
from colorlab.perceptual_metrics import FID_NETWORK
from colorlab.pictures import labelled_grid
from colorlab.training.loggers import build_loggers

log = logging.getLogger(__name__)

EVALUATION_OUTPUTS = ("metrics.json", "metrics.md", "comparison.png")
#: ``split`` values: a split of the data, or ``all`` (every photo of every split once).
EVALUATION_SPLITS = ("train", "val", "test", "all")


def check_run_dir(run_dir: Path, ckpt_path: str | None = None) -> None:
    """Refuse a folder that holds an evaluation (also before Hydra writes into it)."""
    refuse_used_dir(run_dir, EVALUATION_OUTPUTS, "an evaluation", "choose another hydra.run.dir")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    paths = list(cfg.ckpt) if isinstance(cfg.ckpt, (list, ListConfig)) else [cfg.ckpt]
    if not paths:
        raise ColorlabError('ckpt is empty; pass ckpt=A.ckpt or "ckpt=[A.ckpt,B.ckpt]"')
    validate(cfg, EVALUATE_RULES)
    check_choice("split", cfg.split, EVALUATION_SPLITS)
    out = Path(cfg.run_dir)
    check_run_dir(out)
    device = resolve_device(cfg.device)
    loaded = [
        load_colorizer(p, device=device, temperature=cfg.temperature, trusted=cfg.trust_checkpoint)
        for p in paths
    ]
    labels = row_names(paths, loaded)
    colorizers: dict[str, TrainedColorizer | None] = {GRAY: None, **dict(zip(labels, loaded))}
    if cfg.get("videos"):
        return _evaluate_videos(cfg, out, labels, loaded, paths, device)
    sweep = _hint_sweep(cfg, loaded)

    datamodule = build(cfg.data, "data")
    datamodule.setup()
    loader = datamodule.split_dataloader(cfg.split)
    results, rows = evaluate_colorizers(
        colorizers,
        loader,
        device,
        cfg.num_images,
        fid=cfg.fid,
        lpips=cfg.lpips_net if cfg.lpips else None,
        hints=sweep,
    )

    out.mkdir(parents=True, exist_ok=True)
    checkpoints = {label: str(path) for label, path in zip(labels, paths)}
    (out / "metrics.json").write_text(
        json.dumps(
            {
                "checkpoints": checkpoints,
                "split": cfg.split,
                "images": len(loader.dataset),
                "protocol": _protocol(cfg, results),
                "metrics": results,
                **({"hint_sweep": _hint_table(sweep, labels, results)} if sweep else {}),
            },
            indent=2,
        )
    )
    table = markdown_table(results, fid_images=len(loader.dataset))
    (out / "metrics.md").write_text(table)
    titles = ["grayscale input", *labels, "ground truth"]
    labelled_grid(rows, titles).save(out / "comparison.png")
    _log_to_loggers(cfg, results, rows, titles)
    print(table, flush=True)
    print(
        f"colorlab: evaluation written to {out} (metrics.json, metrics.md, comparison.png)",
        flush=True,
    )
    return {"metrics": results, "run_dir": str(out)}


def _evaluate_videos(
    cfg: DictConfig,
    out: Path,
    labels: list[str],
    loaded: list[TrainedColorizer],
    paths: list[str],
    device: torch.device,
) -> dict[str, Any]:
    """``videos=FOLDER``: every checkpoint × ``evaluate.temporal`` setting on the colour
    videos' grey frames; metrics.json and metrics.md."""
    options = cfg.evaluate
    videos = find_videos(cfg.videos)
    modes = list(options.temporal)
    with named("evaluate"):
        for mode in modes:
            check_choice("temporal", mode, TEMPORAL_MODES)
        temporal = TemporalSettings.from_config(options, mode="flow")
        estimator = flow_estimator(options.warp_flow, device)
    results = evaluate_videos(
        videos, dict(zip(labels, loaded)), temporal, modes, estimator, options.batch_size
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(
        json.dumps(
            {
                "checkpoints": {label: str(path) for label, path in zip(labels, paths)},
                "videos_folder": str(cfg.videos),
                "protocol": {
                    "temporal": modes,
                    "temporal_options": {k: v for k, v in asdict(temporal).items() if k != "mode"},
                    "warp_flow": options.warp_flow,
                    "cut_histogram_change": CUT_CHANGE,
                },
                **results,
            },
            indent=2,
        )
    )
    table = video_table(results["metrics"], modes)
    (out / "metrics.md").write_text(table)
    print(table, flush=True)
    print(
        f"colorlab: {len(results['videos'])} videos scored ({results['cuts']} cuts found, "
        f"{results['skipped']} unreadable skipped) into {out} (metrics.json, metrics.md)",
        flush=True,
    )
    return {"metrics": results["metrics"], "run_dir": str(out)}


def _hint_sweep(cfg: DictConfig, loaded: list[TrainedColorizer]) -> HintSweep | None:
    """``evaluate.hint_points``'s sweep, or None; a sweep no model can take is refused."""
    options = cfg.get("evaluate") or {}
    points = options.get("hint_points")
    if not points:
        return None
    if not any(c.takes_hints for c in loaded):
        raise OptionError(
            "evaluate.hint_points",
            list(points),
            "no checkpoint given takes hints (train with model.hints=true, or zoo:siggraph17)",
        )
    square = options.get("hint_square") or paper_square(cfg.data.image_size)
    return HintSweep(list(points), int(square), int(cfg.seed))


def _hint_table(
    sweep: HintSweep, labels: list[str], results: dict[str, dict[str, float]]
) -> dict[str, dict[str, dict[str, float]]]:
    """metrics.json's ``hint_sweep``: per model that takes hints, per point count (0 = none)."""
    table = {}
    for label in labels:
        counts = {"0": results[label]}
        counts |= {
            str(n): results[hinted_name(label, n)]
            for n in sweep.points
            if hinted_name(label, n) in results
        }
        if len(counts) > 1:
            table[label] = counts
    return table


def _protocol(cfg: DictConfig, results: dict[str, dict[str, float]]) -> dict[str, Any]:
    """How the photos were prepared and scored, for comparing numbers with other tables."""
    first = next(iter(results.values()))
    protocol = {
        "name": cfg.get("protocol_name", "colorlab"),
        "image_size": cfg.data.image_size,
        "resize": cfg.data.get("resize", "squash"),
    }
    if "fid" in first:
        protocol["fid_network"] = FID_NETWORK
    if "lpips" in first:
        protocol["lpips_net"] = cfg.lpips_net
    return protocol


def _log_to_loggers(cfg: DictConfig, results, rows, titles) -> None:
    from lightning.pytorch.loggers import WandbLogger

    for logger in build_loggers(cfg.get("logger")):
        if isinstance(logger, WandbLogger):
            import wandb

            metrics = table_columns(results)
            logger.log_table(
                "evaluate/metrics",
                columns=["model", *metrics],
                data=[[n, *(v[c] for c in metrics)] for n, v in results.items()],
            )
            logger.log_table(
                "evaluate/comparison",
                columns=titles,
                data=[[wandb.Image(p) for p in row] for row in rows],
            )
            wandb.finish()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="evaluate")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    evaluate(cfg)


def main() -> None:
    run_app(_hydra_main)


if __name__ == "__main__":
    main()
