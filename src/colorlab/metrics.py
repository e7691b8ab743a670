"""Colorization metrics: pure functions and one torchmetrics-based accumulator
(`colorlab.color.colorfulness` is the colour maths they share with losses and data), and the
flicker of videos (`warping_error`, `histogram_divergence` for CDC).

Inputs follow `colorlab.color`: ab B×2×H×W in (-1, 1) (a*, b* / 128), rgb B×3×H×W in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from colorlab.color import AB_SCALE, colorfulness

#: Thresholds (Lab units) of the ab error curve whose area `ab_error_auc` measures.
AUC_MAX_THRESHOLD = 150


def seed_accuracy(ab_pred: Tensor, ab: Tensor) -> Tensor:
    """The reference's "accuracy": Keras' categorical accuracy on the 2-channel ab output.

    The fraction of pixels where argmax over (a, b) of the prediction equals argmax over
    (a, b) of the target (ties go to a, as in Keras). A scalar in [0, 1].
    """
    # argmax over two channels is 0 exactly where a >= b (the first maximum wins ties):
    # elementwise, where torch's argmax over a channel dimension is slow on the CPU.
    a_wins_pred = ab_pred[..., 0, :, :] >= ab_pred[..., 1, :, :]
    a_wins = ab[..., 0, :, :] >= ab[..., 1, :, :]
    return (a_wins_pred == a_wins).float().mean()


def ab_error_auc(ab_pred: Tensor, ab: Tensor, max_threshold: int = AUC_MAX_THRESHOLD) -> Tensor:
    """Area under the per-pixel ab error curve (Zhang et al. 2016), per image.

    The curve is the fraction of pixels with ‖ab_pred − ab‖₂ ≤ t (in Lab units) for
    t = 0, 1, …, ``max_threshold``; its area (trapezoids) is divided by ``max_threshold``.

    Returns:
        B values in [0, 1]; 1 for a perfect prediction.
    """
    error = ((ab_pred.float() - ab.float()) * AB_SCALE).norm(dim=-3).flatten(-2)  # B×P
    thresholds = torch.arange(max_threshold + 1, device=error.device, dtype=error.dtype)
    # Fraction of pixels within each threshold, from the sorted errors (no B×P×T tensor).
    sorted_error = error.sort(dim=-1).values
    within = torch.searchsorted(
        sorted_error, thresholds.expand(len(error), -1).contiguous(), right=True
    )
    fraction = within.float() / error.shape[-1]
    return torch.trapezoid(fraction, thresholds, dim=-1) / max_threshold


#: `per_image_metrics`' names, in the order of the W&B test table's columns.
PER_IMAGE_METRICS = ("psnr", "ab_mse", "colorfulness_pred", "delta_colorfulness")


@torch.no_grad()
def per_image_metrics(
    ab_pred: Tensor, ab: Tensor, rgb_pred: Tensor, rgb: Tensor
) -> dict[str, Tensor]:
    """B values each of `PER_IMAGE_METRICS`: PSNR on RGB (dB), ab MSE (on ab / 128), the
    prediction's colourfulness and its distance |CF(pred) − CF(truth)| to the photo's."""
    ab_pred, ab, rgb_pred, rgb = (t.float() for t in (ab_pred, ab, rgb_pred, rgb))
    rgb_mse = (rgb_pred - rgb).square().flatten(1).mean(dim=1)
    colorfulness_pred = colorfulness(rgb_pred)
    return {
        "psnr": -10 * torch.log10(rgb_mse.clamp(min=1e-10)),
        "ab_mse": (ab_pred - ab).square().flatten(1).mean(dim=1),
        "colorfulness_pred": colorfulness_pred,
        "delta_colorfulness": (colorfulness_pred - colorfulness(rgb)).abs(),
    }


class ColorizationMetrics(nn.Module):
    """Accumulates the colorization metrics over batches; `compute` gives plain floats.

    Always: ``ab_mse``, ``psnr`` (mean per-image PSNR on RGB), ``seed_accuracy``,
    ``colorfulness_pred``, ``colorfulness_target``, ``delta_colorfulness``.
    Optional: ``ssim`` (on RGB), ``auc`` (`ab_error_auc`) and ``lpips`` (an LPIPS metric over
    rgb, `colorlab.perceptual_metrics.lpips_metric`). Updates stay on the device (no NaN
    checks that would wait for the GPU each batch).
    """

    def __init__(self, ssim: bool = False, auc: bool = False, lpips: Metric | None = None) -> None:
        super().__init__()
        self.ab_mse = MeanMetric(nan_strategy="disable")
        self.psnr = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))
        self.seed_accuracy = MeanMetric(nan_strategy="disable")
        self.colorfulness_pred = MeanMetric(nan_strategy="disable")
        self.colorfulness_target = MeanMetric(nan_strategy="disable")
        self.ssim = StructuralSimilarityIndexMeasure(data_range=1.0) if ssim else None
        self.auc = MeanMetric(nan_strategy="disable") if auc else None
        self.lpips = lpips

    @torch.no_grad()
    def update(self, ab_pred: Tensor, ab: Tensor, rgb_pred: Tensor, rgb: Tensor) -> None:
        """Add one batch: ab B×2×H×W, rgb B×3×H×W in [0, 1]."""
        ab_pred, ab, rgb_pred, rgb = (t.float() for t in (ab_pred, ab, rgb_pred, rgb))
        n = len(ab)
        self.ab_mse.update((ab_pred - ab).square().mean(), weight=n)
        self.psnr.update(rgb_pred, rgb)
        self.seed_accuracy.update(seed_accuracy(ab_pred, ab), weight=n)
        self.colorfulness_pred.update(colorfulness(rgb_pred))
        self.colorfulness_target.update(colorfulness(rgb))
        if self.ssim is not None:
            self.ssim.update(rgb_pred, rgb)
        if self.auc is not None:
            self.auc.update(ab_error_auc(ab_pred, ab))
        if self.lpips is not None:
            self.lpips.update(rgb_pred.clamp(0, 1), rgb.clamp(0, 1))

    def names(self) -> list[str]:
        """The names `compute` returns."""
        return [name for name, _ in self.named_children()] + ["delta_colorfulness"]

    def compute(self) -> dict[str, float]:
        values = {
            name: float(metric.compute())
            for name, metric in self.named_children()
            if isinstance(metric, Metric)
        }
        values["delta_colorfulness"] = abs(
            values["colorfulness_pred"] - values["colorfulness_target"]
        )
        return values

    def reset(self) -> None:
        for metric in self.children():
            if isinstance(metric, Metric):
                metric.reset()


# -- video: flicker -----------------------------------------------------------------------------
@torch.no_grad()
def warping_error(rgb: Tensor, rgb_next_warped: Tensor, trusted: Tensor) -> Tensor:
    """The warping error of one frame pair (Lai et al. 2018): the mean squared difference of
    frame t (rgb, N×3×H×W in [0, 1]) and frame t+1 warped back onto it by the input's flow,
    over the pixels the flow can be trusted at (``trusted``, N×1×H×W bool) and the three
    channels. N values; NaN where no pixel is trusted."""
    mask = trusted.float()
    squared = (rgb.float() - rgb_next_warped.float()).square() * mask
    return squared.flatten(1).sum(1) / (3 * mask.flatten(1).sum(1))


def colour_histograms(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 -> 3×256 fractions: each channel's histogram, summing to 1."""
    pixels = rgb.reshape(-1, 3)
    counts = np.stack([np.bincount(pixels[:, c], minlength=256) for c in range(3)])
    return counts / len(pixels)


def histogram_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Mean over channels of the Jensen–Shannon divergence (natural log, in [0, ln 2]) of two
    `colour_histograms`: the term of CDC, the colour-distribution consistency of video
    colorization (Liu et al. 2021; the NTIRE 2023 challenge, ColorMNet)."""
    m = (p + q) / 2

    def kl(a: np.ndarray) -> np.ndarray:
        ratio = np.divide(a, m, out=np.ones_like(a), where=a > 0)
        return (a * np.log(ratio)).sum(axis=1)

    return float(np.mean(0.5 * kl(p) + 0.5 * kl(q)))
