"""Colour-bin classification with class rebalancing (Zhang et al., "Colorful Image
Colorization", ECCV 2016): the colour prior, its rebalancing weights and the loss."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from colorlab.color import (
    ab_gamut,
    ab_grid_index,
    annealed_mean,
    check_temperature,
    soft_encoding_table,
)
from colorlab.errors import OptionError
from colorlab.losses.base import Batch, ColorizationLoss, HeadSpec
from colorlab.models.heads import BranchOutput, HeadOutput

#: ``downsample``: the logits' resolution is 1/downsample of the input's.
DOWNSAMPLES = (1, 2, 4, 8)


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

    bins: Tensor  # Q×2 bin centres (Lab units)
    table_indices: Tensor  # the soft-encoding table over the integer ab grid
    table_weights: Tensor
    prior: Tensor  # Q, the training split's colour distribution (persistent)
    class_weights: Tensor  # Q, the rebalancing weights (persistent)

    def __init__(
        self,
        rebalance: float | None = 0.5,
        temperature: float = 0.38,
        downsample: int = 4,
        neighbours: int = 5,
        sigma: float = 5.0,
        prior_sigma: float = 5.0,
        **terms: Any,
    ) -> None:
        super().__init__(**terms)
        if rebalance is not None and (
            not isinstance(rebalance, (int, float)) or not 0 <= rebalance <= 1
        ):
            raise OptionError(
                "rebalance", rebalance, "use λ in [0, 1] (0.5 the paper's; 1 or null = off)"
            )
        check_temperature(temperature)
        if downsample not in DOWNSAMPLES:
            raise OptionError("downsample", downsample, "use 1, 2, 4 or 8")
        bins = ab_gamut()
        if not isinstance(neighbours, int) or not 1 <= neighbours <= len(bins):
            raise OptionError("neighbours", neighbours, f"use an integer in 1..{len(bins)}")
        for name, value in (("sigma", sigma), ("prior_sigma", prior_sigma)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise OptionError(name, value, "use a positive number (Lab units)")
        self.rebalance = None if rebalance is None or rebalance >= 1 else float(rebalance)
        self.prior_sigma = float(prior_sigma)
        self.head = self.head_for(downsample=downsample, temperature=temperature)
        indices, weights = soft_encoding_table(bins, neighbours, sigma)
        self.register_buffer("bins", bins, persistent=False)
        self.register_buffer("table_indices", indices, persistent=False)
        self.register_buffer("table_weights", weights, persistent=False)
        # Persistent: a checkpoint carries the prior it was trained with.
        self.register_buffer("prior", torch.zeros(len(bins)))
        self.register_buffer("class_weights", torch.ones(len(bins)))

    @classmethod
    def head_for(cls, downsample: int = 4, temperature: float = 0.38, **options: Any) -> HeadSpec:
        """Colour-bin logits at 1/``downsample``, decoded at ``temperature``."""
        return {"kind": "classification", "downsample": downsample, "temperature": temperature}

    @property
    def needs_prior(self) -> bool:
        """Whether training needs `fit_prior` first: the prior is not known yet."""
        return not bool(self.prior.sum() > 0)

    def encode(self, ab: Tensor, size: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        """Soft-encode ab (B×2×H×W) at ``size`` (h, w): bin indices and weights, B×K×h×w each."""
        if tuple(ab.shape[-2:]) != tuple(size):
            ab = F.adaptive_avg_pool2d(ab.float(), (size[0], size[1]))
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
            raise ValueError("the training split gave no pixels for the colour prior")
        self.set_prior(smooth_prior(counts, self.bins, self.prior_sigma))
        return self.prior

    def set_prior(self, prior: Tensor) -> None:
        """Use ``prior`` (Q, sums to 1) and the rebalancing weights that follow from it."""
        self.prior.copy_(prior)
        if self.rebalance is not None:
            self.class_weights.copy_(rebalancing_weights(self.prior, self.rebalance))

    def decode(self, output: HeadOutput, batch: Batch) -> Tensor:
        """Logits -> ab by the annealed mean at the head's temperature, upsampled bilinearly
        to the batch's size (differentiable: the added terms train through it). A two-branch
        output's ab is its regression branch (the added terms, ``l1_weight``, train that)."""
        if isinstance(output, BranchOutput):
            return output.ab.float()
        ab = annealed_mean(output, self.bins, self.head["temperature"])
        return F.interpolate(ab, size=batch["L"].shape[-2:], mode="bilinear", align_corners=False)

    def own_term_names(self) -> tuple[str, ...]:
        return ("classification",)

    def own_terms(self, output: HeadOutput, batch: Batch) -> dict[str, Tensor]:
        """``output``: logits B×Q×h×w (h = H/downsample), or a `BranchOutput` holding them;
        the mean weighted cross-entropy."""
        if self.rebalance is not None and self.needs_prior:
            raise RuntimeError("ClassificationLoss.fit_prior must run before training")
        logits = output.logits if isinstance(output, BranchOutput) else output
        log_p = torch.log_softmax(logits.float(), dim=1)
        indices, weights = self.encode(batch["ab"], logits.shape[-2:])
        cross_entropy = -(log_p.gather(1, indices) * weights).sum(dim=1)  # B×h×w
        if self.rebalance is not None:
            cross_entropy = cross_entropy * self.class_weights[indices[:, 0]]
        return {"classification": cross_entropy.mean()}
