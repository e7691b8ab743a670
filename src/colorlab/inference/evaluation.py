"""Scoring colorizers on the same photos: metrics per model beside the gray prediction."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from PIL import Image
from rich.progress import track
from torch import Tensor

from colorlab.color import gray_rgb, to_rgb
from colorlab.data.hints import HintSimulation
from colorlab.data.transforms import prepare_batch
from colorlab.errors import ColorlabError
from colorlab.inference.colorizer import TrainedColorizer
from colorlab.metrics import ColorizationMetrics
from colorlab.perceptual_metrics import FID_NETWORK, FrechetDistances, lpips_metric
from colorlab.pictures import to_pil

log = logging.getLogger(__name__)

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
#: Columns of the metrics that need pretrained networks, where they were computed.
OPTIONAL_COLUMNS = ("fid", "lpips")


def hinted_name(name: str, points: int) -> str:
    """The row of colorizer ``name`` given ``points`` hints: ``name · 10 hints``."""
    return f"{name} · {points} hint{'s' if points != 1 else ''}"


def paper_square(image_size: int) -> int:
    """The side of a sweep point's square at ``image_size`` px: the paper's test's 6 px at
    256, scaled (at least 1)."""
    return max(1, round(6 * image_size / 256))


class HintSweep:
    """The evaluation's hint points (Zhang et al. 2017's test): for each count in ``points``,
    that many points sampled from the truth per photo (squares of ``square`` pixels at
    Gaussian positions around the centre, coloured with their true mean ab), seeded by
    ``seed`` so that every model gets the same ones."""

    def __init__(self, points: list[int], square: int = 2, seed: int = 0) -> None:
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in points):
            raise ValueError(f"hint points {points!r} are not integers >= 0")
        self.points = sorted({n for n in points if n > 0})
        self.simulations = {
            n: HintSimulation(sizes=(square, square), max_points=n) for n in self.points
        }
        self.generators = {n: torch.Generator().manual_seed(seed + n) for n in self.points}

    def draw(self, ab: Tensor) -> dict[int, Tensor]:
        """Hint maps (B×3×H×W) of each count for a batch's true ab (B×2×H×W)."""
        counts = torch.full((ab.shape[0],), 0, dtype=torch.long)
        return {
            n: self.simulations[n].points(ab, counts + n, self.generators[n]) for n in self.points
        }


def table_columns(results: dict[str, dict[str, float]]) -> list[str]:
    """`TABLE_COLUMNS`, then those of `OPTIONAL_COLUMNS` the results hold."""
    first = next(iter(results.values()), {})
    return [*TABLE_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in first)]


def _unless_unavailable(build, what: str):
    """``build()``, or None with one warning line where its weights cannot be had."""
    try:
        return build()
    except ColorlabError as error:
        log.warning("%s skipped, the other metrics are reported: %s", what, error)
        return None


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
    fid: bool = False,
    lpips: str | None = None,
    hints: HintSweep | None = None,
) -> tuple[dict[str, dict[str, float]], list[list[Image.Image]]]:
    """Metrics per named colorizer (None = the gray prediction) on ``loader``'s uint8 batches,
    and ``num_images`` rows of pictures (gray | each colorizer | ground truth) spread evenly
    over the data set (the first ones when its length is unknown).

    ``fid``: also each row's FID against the photos (`FrechetDistances`); ``lpips``: also
    LPIPS with that network (``alex``, ``vgg``, ``squeeze``). Where their weights cannot be
    had, one warning line each and the other metrics. ``hints``: also a row per hint count
    for each colorizer that takes hints (`hinted_name`; the table's metrics, without FID and
    LPIPS).
    """
    fid_sets = (
        _unless_unavailable(lambda: FrechetDistances(colorizers, device), "FID") if fid else None
    )
    lpips_nets = None
    if lpips:
        lpips_nets = _unless_unavailable(
            lambda: {name: lpips_metric(lpips).to(device) for name in colorizers}, "LPIPS"
        )
    metrics = {
        name: ColorizationMetrics(
            ssim=True, auc=True, lpips=lpips_nets[name] if lpips_nets else None
        ).to(device)
        for name in colorizers
    }
    picks = (
        _spread(len(loader.dataset), num_images)
        if hasattr(loader, "dataset")
        else set(range(num_images))
    )
    hinted = [
        (name, n, taker)
        for name, taker in colorizers.items()
        if taker is not None and taker.takes_hints
        for n in (hints.points if hints else [])
    ]
    for name, n, _ in hinted:
        metrics[hinted_name(name, n)] = ColorizationMetrics(ssim=True, auc=True).to(device)
    rows: list[list[Image.Image]] = []
    seen = 0
    for raw in track(loader, description="evaluating"):
        batch = prepare_batch(raw.to(device))
        L, ab, rgb = batch["L"], batch["ab"], batch["rgb"]
        if hinted and hints is not None:
            drawn = hints.draw(ab)
            for name, n, taker in hinted:
                ab_pred = taker.predict_ab(L, hints=drawn[n])
                metrics[hinted_name(name, n)].update(ab_pred, ab, to_rgb(L, ab_pred), rgb)
        predictions = {}
        for name, colorizer in colorizers.items():
            ab_pred = torch.zeros_like(ab) if colorizer is None else colorizer.predict_ab(L)
            rgb_pred = to_rgb(L, ab_pred)
            metrics[name].update(ab_pred, ab, rgb_pred, rgb)
            if fid_sets is not None:
                fid_sets.update(name, rgb_pred)
            predictions[name] = rgb_pred
        if fid_sets is not None:
            fid_sets.update_photos(rgb)
        for i in (i for i in range(len(raw)) if seen + i in picks):
            cells = [to_pil(gray_rgb(L[i : i + 1])[0])]
            cells += [to_pil(predictions[name][i]) for name in colorizers if name != GRAY]
            rows.append([*cells, to_pil(rgb[i])])
        seen += len(raw)
    results = {name: m.compute() for name, m in metrics.items()}
    if fid_sets is not None:
        for name, value in fid_sets.compute().items():
            results[name]["fid"] = value
    return results, rows


def _spread(length: int, count: int) -> set[int]:
    """``count`` indices spread evenly over ``range(length)``."""
    if count <= 0 or length <= 0:
        return set()
    return {round(i * (length - 1) / max(count - 1, 1)) for i in range(min(count, length))}


def markdown_table(results: dict[str, dict[str, float]], fid_images: int | None = None) -> str:
    """The metrics table (a row per colorizer) and a line on what the numbers are; with FID,
    the network and the number of photos (``fid_images``) it was computed over."""
    columns = table_columns(results)
    header = "| model | " + " | ".join(columns) + " |"
    lines = [header, "|" + " --- |" * (len(columns) + 1)]
    for name, values in results.items():
        cells = (f"{values[c]:.4f}" if c in values else "–" for c in columns)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    target = next(iter(results.values()))["colorfulness_target"]
    lines.append("")
    lines.append(
        f"Ground-truth colourfulness: {target:.2f}. seed_accuracy is the reference's Keras accuracy."
    )
    if "fid" in columns:
        over = f" over {fid_images} photos" if fid_images is not None else ""
        lines.append(f"FID: {FID_NETWORK}{over}; lower is better.")
    if "lpips" in columns:
        lines.append("LPIPS: mean per image (torchmetrics); lower is better.")
    return "\n".join(lines) + "\n"
