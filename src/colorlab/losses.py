"""Losses: ``loss(output, batch)`` -> scalar, where ``output`` is the network's raw head output.

A loss also says which head it trains (`ColorizationLoss.head`), so choosing a loss in the
config (``loss=classification``) is enough to give the network the matching head. To add a
loss: subclass `ColorizationLoss`, set ``head`` to a head spec of
`colorlab.models.heads.make_head`, implement ``forward(output, batch)`` and add a
``conf/loss/NAME.yaml`` naming the class with ``_target_``.

Batches follow `colorlab.color.lab_batch`: ``{"L": B×1×H×W in [0, 100], "ab": B×2×H×W in
(-1, 1), "rgb": B×3×H×W in [0, 1]}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorlab.color import ab_gamut, ab_grid_index, soft_encoding_table, to_rgb
from colorlab.errors import ColorlabError, check_choice
from colorlab.metrics import colorfulness

Batch = dict[str, Tensor]


class ColorizationLoss(nn.Module):
    """Base class: ``forward(output, batch)`` -> scalar loss; ``head`` is the head it trains."""

    #: The head spec the network must have (see `colorlab.models.heads.make_head`).
    head: dict[str, Any] = {"kind": "regression"}

    def forward(self, output: Tensor, batch: Batch) -> Tensor:
        raise NotImplementedError


# -- regression --------------------------------------------------------------------------------
REGRESSION_KINDS = ("mse", "l1", "huber")


def colorfulness_shortfall(ab_pred: Tensor, batch: Batch) -> Tensor:
    """Mean over images of max(0, CF(target) − CF(prediction)) / 100, differentiable.

    CF is `colorlab.metrics.colorfulness` (Hasler–Süsstrunk, 0–255 RGB); dividing by 100
    brings a typical shortfall (10–30) to the scale of ab errors. Only a prediction less
    colourful than its target is penalised.
    """
    rgb_pred = to_rgb(batch["L"].float(), ab_pred.float())
    target = colorfulness(batch["rgb"].float())
    return ((target - colorfulness(rgb_pred, eps=1e-6)).clamp(min=0) / 100).mean()


class RegressionLoss(ColorizationLoss):
    """Per-pixel regression of ab (the reference's MSE, or L1 / Huber), optionally plus a
    colourfulness term.

    Args:
        kind: ``mse``, ``l1`` or ``huber``.
        delta: Huber's threshold in ab units (0.1 = 12.8 Lab units).
        colorfulness_weight: weight of `colorfulness_shortfall` (0 = off).
    """

    head = {"kind": "regression"}

    def __init__(
        self, kind: str = "mse", delta: float = 0.1, colorfulness_weight: float = 0.0
    ) -> None:
        super().__init__()
        check_choice("loss.kind", kind, REGRESSION_KINDS)
        if not isinstance(colorfulness_weight, (int, float)) or colorfulness_weight < 0:
            raise ColorlabError(
                f"loss.colorfulness_weight={colorfulness_weight!r} must be a number ≥ 0 (0 = off)"
            )
        self.kind = kind
        self.delta = float(delta)
        self.colorfulness_weight = float(colorfulness_weight)

    def forward(self, output: Tensor, batch: Batch) -> Tensor:
        ab_pred, ab = output.float(), batch["ab"]
        if self.kind == "mse":
            loss = F.mse_loss(ab_pred, ab)
        elif self.kind == "l1":
            loss = F.l1_loss(ab_pred, ab)
        else:
            loss = F.huber_loss(ab_pred, ab, delta=self.delta)
        if self.colorfulness_weight:
            loss = loss + self.colorfulness_weight * colorfulness_shortfall(ab_pred, batch)
        return loss


# -- classification -----------------------------------------------------------------------------
def smooth_prior(counts: Tensor, bins: Tensor, sigma: float = 5.0) -> Tensor:
    """Bin counts (Q) -> a probability distribution over the bins, smoothed by a Gaussian of
    ``sigma`` Lab units in ab space (Zhang et al. 2016). Sums to 1."""
    distances = torch.cdist(bins.double(), bins.double())
    kernel = torch.exp(-distances.square() / (2 * sigma**2))
    smoothed = kernel @ (counts.double() / counts.sum().clamp(min=1))
    return (smoothed / smoothed.sum()).float()


def rebalancing_weights(prior: Tensor, mix: float) -> Tensor:
    """Class weights w ∝ ((1 − λ)·p + λ/Q)⁻¹, normalised so that E_p[w] = Σ p·w = 1.

    λ = ``mix`` in [0, 1]: 0 weighs each bin by its rarity alone, 1 weighs all bins equally
    (no rebalancing). The paper's is 0.5.
    """
    weights = 1.0 / ((1 - mix) * prior.double() + mix / len(prior))
    return (weights / (prior.double() * weights).sum()).float()


class ClassificationLoss(ColorizationLoss):
    """Cross-entropy over the colour bins against soft-encoded targets, with class
    rebalancing (Zhang et al., "Colorful Image Colorization", ECCV 2016).

    The target ab is average-pooled to the logits' resolution (1/``downsample``), each pixel
    is soft-encoded onto its ``neighbours`` nearest bins (Gaussian, ``sigma`` Lab units,
    through a lookup table over the integer ab grid: no per-step distance computation), and
    its cross-entropy is weighted by the rebalancing weight of its nearest bin. The weights
    come from the colour prior of the training split (`fit_prior`), which lives in the
    module's buffers and therefore in every checkpoint.

    Args:
        rebalance: λ, the uniform share of the rebalancing distribution (0.5 in the paper);
            1 or None switches rebalancing off.
        temperature: annealed-mean T the head decodes with (0.38 in the paper).
        downsample: the logits' (and the loss's) resolution is 1/downsample of the input's.
        neighbours, sigma: soft encoding (5 bins, 5 Lab units).
        prior_sigma: Gaussian smoothing of the prior (5 Lab units).
    """

    def __init__(
        self,
        rebalance: float | None = 0.5,
        temperature: float = 0.38,
        downsample: int = 4,
        neighbours: int = 5,
        sigma: float = 5.0,
        prior_sigma: float = 5.0,
    ) -> None:
        super().__init__()
        if rebalance is not None and (
            not isinstance(rebalance, (int, float)) or not 0 <= rebalance <= 1
        ):
            raise ColorlabError(
                f"loss.rebalance={rebalance!r} must be λ in [0, 1] (0.5 the paper's; 1 or null = off)"
            )
        if not isinstance(downsample, int) or downsample < 1 or downsample & (downsample - 1):
            raise ColorlabError(f"loss.downsample={downsample!r} must be 1, 2, 4 or 8")
        bins = ab_gamut()
        if not isinstance(neighbours, int) or not 1 <= neighbours <= len(bins):
            raise ColorlabError(f"loss.neighbours={neighbours!r} must be in 1..{len(bins)}")
        if not isinstance(sigma, (int, float)) or sigma <= 0:
            raise ColorlabError(f"loss.sigma={sigma!r} must be a positive number (Lab units)")
        self.rebalance = None if rebalance is None or rebalance >= 1 else float(rebalance)
        self.prior_sigma = float(prior_sigma)
        self.head = {"kind": "classification", "downsample": downsample, "temperature": temperature}
        indices, weights = soft_encoding_table(bins, neighbours, sigma)
        self.register_buffer("bins", bins, persistent=False)
        self.register_buffer("table_indices", indices, persistent=False)
        self.register_buffer("table_weights", weights, persistent=False)
        # Persistent: a checkpoint carries the prior it was trained with.
        self.register_buffer("prior", torch.zeros(len(bins)))
        self.register_buffer("class_weights", torch.ones(len(bins)))

    @property
    def needs_prior(self) -> bool:
        """Whether training needs `fit_prior` first: the prior is not known yet."""
        return not bool(self.prior.sum() > 0)

    def encode(self, ab: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Soft-encode ab (B×2×H×W) at ``size`` (h, w): bin indices and weights, B×K×h×w each."""
        if tuple(ab.shape[-2:]) != tuple(size):
            ab = F.adaptive_avg_pool2d(ab.float(), size)
        cells = ab_grid_index(ab)  # B×h×w
        return (
            self.table_indices[cells].permute(0, 3, 1, 2),
            self.table_weights[cells].permute(0, 3, 1, 2),
        )

    def bin_counts(self, ab: Tensor) -> Tensor:
        """How many pixels of ab (B×2×H×W, at the loss's resolution) fall nearest to each bin."""
        size = (ab.shape[-2] // self.head["downsample"], ab.shape[-1] // self.head["downsample"])
        nearest = self.encode(ab, size)[0][:, 0]
        return torch.bincount(nearest.flatten(), minlength=len(self.bins)).float()

    @torch.no_grad()
    def fit_prior(
        self,
        ab_batches: Iterable[Tensor],
        sum_over_ranks: Callable[[Tensor], Tensor] | None = None,
    ) -> Tensor:
        """Set the colour prior (and the rebalancing weights) from the training split's ab.

        Args:
            ab_batches: B×2×H×W ab batches, on this module's device.
            sum_over_ranks: under DDP, sums the bin counts of every rank's shard.

        Returns:
            The smoothed prior (Q, sums to 1).
        """
        counts = torch.zeros(len(self.bins), device=self.bins.device)
        for ab in ab_batches:
            counts += self.bin_counts(ab)
        if sum_over_ranks is not None:
            counts = sum_over_ranks(counts)
        if not counts.sum() > 0:
            raise ColorlabError("the training split gave no pixels for the colour prior")
        self.set_prior(smooth_prior(counts, self.bins, self.prior_sigma))
        return self.prior

    def set_prior(self, prior: Tensor) -> None:
        """Use ``prior`` (Q, sums to 1) and the rebalancing weights that follow from it."""
        self.prior.copy_(prior)
        if self.rebalance is not None:
            self.class_weights.copy_(rebalancing_weights(self.prior, self.rebalance))

    def forward(self, output: Tensor, batch: Batch) -> Tensor:
        """``output``: logits B×Q×h×w (h = H/downsample); mean weighted cross-entropy."""
        if self.rebalance is not None and self.needs_prior:
            raise RuntimeError("ClassificationLoss.fit_prior must run before training")
        log_p = torch.log_softmax(output.float(), dim=1)
        indices, weights = self.encode(batch["ab"], output.shape[-2:])
        cross_entropy = -(log_p.gather(1, indices) * weights).sum(dim=1)  # B×h×w
        if self.rebalance is not None:
            cross_entropy = cross_entropy * self.class_weights[indices[:, 0]]
        return cross_entropy.mean()
