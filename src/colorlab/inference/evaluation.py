"""Scoring colorizers on the same photos: metrics per model beside the gray prediction."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from rich.progress import track

from colorlab.color import gray_rgb, to_rgb
from colorlab.data.transforms import prepare_batch
from colorlab.inference.colorizer import TrainedColorizer
from colorlab.metrics import ColorizationMetrics
from colorlab.pictures import to_pil

GRAY = "gray"
#: Columns of metrics.md, in order.
TABLE_COLUMNS = (
    "ab_mse",
    "psnr",
    "ssim",
    "auc",
    "seed_accuracy",
    "colorfulness_pred",
    "delta_colorfulness",
)


def row_names(paths: list[str], colorizers: list[TrainedColorizer]) -> list[str]:
    """``model@run`` per checkpoint; ``model@run:file`` where that alone is ambiguous."""
    labels = [c.label for c in colorizers]
    named = [
        f"{label}:{Path(p).stem}" if labels.count(label) > 1 else label
        for label, p in zip(labels, paths)
    ]
    return [f"{name}#{i}" if named.count(name) > 1 else name for i, name in enumerate(named)]


@torch.no_grad()
def evaluate_colorizers(
    colorizers: dict[str, TrainedColorizer | None],
    loader,
    device: torch.device,
    num_images: int = 8,
) -> tuple[dict[str, dict[str, float]], list[list[Image.Image]]]:
    """Metrics per named colorizer (None = the gray prediction) on ``loader``'s uint8 batches,
    and ``num_images`` rows of pictures (gray | each colorizer | ground truth) spread evenly
    over the data set (the first ones when its length is unknown)."""
    metrics = {name: ColorizationMetrics(ssim=True, auc=True).to(device) for name in colorizers}
    picks = (
        _spread(len(loader.dataset), num_images)
        if hasattr(loader, "dataset")
        else set(range(num_images))
    )
    rows: list[list[Image.Image]] = []
    seen = 0
    for raw in track(loader, description="evaluating"):
        batch = prepare_batch(raw.to(device))
        L, ab, rgb = batch["L"], batch["ab"], batch["rgb"]
        predictions = {}
        for name, colorizer in colorizers.items():
            ab_pred = torch.zeros_like(ab) if colorizer is None else colorizer.predict_ab(L)
            rgb_pred = to_rgb(L, ab_pred)
            metrics[name].update(ab_pred, ab, rgb_pred, rgb)
            predictions[name] = rgb_pred
        for i in (i for i in range(len(raw)) if seen + i in picks):
            cells = [to_pil(gray_rgb(L[i : i + 1])[0])]
            cells += [to_pil(predictions[name][i]) for name in colorizers if name != GRAY]
            rows.append([*cells, to_pil(rgb[i])])
        seen += len(raw)
    return {name: m.compute() for name, m in metrics.items()}, rows


def _spread(length: int, count: int) -> set[int]:
    """``count`` indices spread evenly over ``range(length)``."""
    if count <= 0 or length <= 0:
        return set()
    return {round(i * (length - 1) / max(count - 1, 1)) for i in range(min(count, length))}


def markdown_table(results: dict[str, dict[str, float]]) -> str:
    header = "| model | " + " | ".join(TABLE_COLUMNS) + " |"
    lines = [header, "|" + " --- |" * (len(TABLE_COLUMNS) + 1)]
    for name, values in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[c]:.4f}" for c in TABLE_COLUMNS) + " |")
    target = next(iter(results.values()))["colorfulness_target"]
    lines.append("")
    lines.append(
        f"Ground-truth colourfulness: {target:.2f}. seed_accuracy is the reference's Keras accuracy."
    )
    return "\n".join(lines) + "\n"
