"""The loss contract: ``loss(output, batch)`` -> scalar, where ``output`` is the network's raw
head output, and the head it trains (`ColorizationLoss.head`).

Every loss is a sum of named, weighted terms: its own (mse, l1, huber, classification) plus
the optional terms every loss can add on the decoded ab (`ColorizationLoss.__init__`):
``l1_weight``, ``colorfulness_weight``, ``perceptual_weight`` and ``adversarial_weight``.
Batches follow `colorlab.data.transforms.prepare_batch`: ``{"L": B×1×H×W in [0, 100],
"ab": B×2×H×W in (-1, 1), "rgb": B×3×H×W in [0, 1]}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from colorlab.color import colorfulness, to_rgb
from colorlab.errors import OptionError
from colorlab.models.heads import BranchOutput, HeadOutput

Batch = dict[str, Tensor]
#: A head spec of `colorlab.models.heads.make_head`.
HeadSpec = dict[str, Any]


def check_weight(name: str, weight: object) -> float:
    """``weight`` as a float; `OptionError` unless it is a finite number ≥ 0 (NaN and infinity are not)."""
    if (
        isinstance(weight, bool)
        or not isinstance(weight, (int, float))
        or not math.isfinite(weight)
        or weight < 0
    ):
        raise OptionError(name, weight, "use a number ≥ 0 (0 = off)")
    return float(weight)


def total(terms: dict[str, Tensor]) -> Tensor:
    """The sum of a loss's (non-empty) terms, a scalar tensor."""
    values = list(terms.values())
    result = values[0]
    for value in values[1:]:
        result = result + value
    return result


def colorfulness_shortfall(ab_pred: Tensor, batch: Batch) -> Tensor:
    """Mean over images of max(0, CF(target) − CF(prediction)) / 100, differentiable.

    CF is `colorlab.color.colorfulness` (Hasler–Süsstrunk, 0–255 RGB); dividing by 100
    brings a typical shortfall (10–30) to the scale of ab errors. Only a prediction less
    colourful than its target is penalised.
    """
    rgb_pred = to_rgb(batch["L"].float(), ab_pred.float())
    target = colorfulness(batch["rgb"].float())
    return ((target - colorfulness(rgb_pred, eps=1e-6)).clamp(min=0) / 100).mean()


class ColorizationLoss(nn.Module):
    """Base class of colorlab's losses: a loss's own terms plus optional weighted terms on
    the decoded ab.

    Subclasses implement `own_terms` and, where the output is not ab itself, `decode`;
    `head_for` says which head a loss built with given options trains, without building it
    (a checkpoint's network is rebuilt from its configs alone). A loss that needs statistics
    of the training split (a colour prior) says so with `needs_prior` and fits them in
    `fit_prior`; by default it needs none.

    Args:
        l1_weight: L1 between the decoded ab and the truth (classification + L1: vivid where
            the model is sure, close where it is not).
        colorfulness_weight: `colorfulness_shortfall` of the decoded prediction.
        perceptual_weight: `colorlab.losses.perceptual.PerceptualTerm` (VGG-16 features of
            the predicted and true RGB; needs the torchvision VGG-16 weights).
        adversarial_weight: the generator's loss against a PatchGAN critic
            (`colorlab.losses.adversarial.AdversarialTerm`), trained alongside from
            ``adversarial_start_epoch`` with ``adversarial_mode`` and ``discriminator_lr``.
    """

    #: The head spec the network must have (set per instance by subclasses with options).
    head: HeadSpec = {"kind": "regression"}

    def __init__(
        self,
        l1_weight: float = 0.0,
        colorfulness_weight: float = 0.0,
        perceptual_weight: float = 0.0,
        adversarial_weight: float = 0.0,
        adversarial_start_epoch: int = 0,
        adversarial_mode: str = "hinge",
        discriminator_lr: float = 2e-4,
    ) -> None:
        super().__init__()
        self.l1_weight = check_weight("l1_weight", l1_weight)
        self.colorfulness_weight = check_weight("colorfulness_weight", colorfulness_weight)
        self.perceptual_weight = check_weight("perceptual_weight", perceptual_weight)
        self.adversarial_weight = check_weight("adversarial_weight", adversarial_weight)
        self.perceptual = None
        if self.perceptual_weight:
            from colorlab.losses.perceptual import PerceptualTerm

            self.perceptual = PerceptualTerm()
        self.adversarial = None
        if self.adversarial_weight:
            from colorlab.losses.adversarial import AdversarialTerm

            self.adversarial = AdversarialTerm(
                adversarial_mode, adversarial_start_epoch, discriminator_lr
            )
        #: Whether the adversarial term counts now (the module sets it per epoch).
        self.adversarial_active = False

    @classmethod
    def head_for(cls, **options: Any) -> HeadSpec:
        """The head a loss built with ``options`` trains (the regression head by default)."""
        return {"kind": "regression"}

    @property
    def needs_prior(self) -> bool:
        """Whether `fit_prior` must run over the training split before training."""
        return False

    def fit_prior(
        self,
        ab_batches: Iterable[Tensor],
        sum_over_ranks: Callable[[Tensor], Tensor] | None = None,
    ) -> Tensor:
        """Statistics of the training split's ab batches (B×2×H×W); see `needs_prior`."""
        raise NotImplementedError(f"{type(self).__name__} fits no prior")

    def own_terms(self, output: HeadOutput, batch: Batch) -> dict[str, Tensor]:
        """The loss's own named terms on the raw output."""
        raise NotImplementedError

    def own_term_names(self) -> tuple[str, ...]:
        """The names `own_terms` returns, so that a config's ``monitor`` may name them
        (``train/loss_NAME``). A loss that does not say trains and logs them all the same;
        only a monitor naming one is refused before training."""
        return ()

    def term_names(self) -> list[str]:
        """The names of every term training logs (``train/loss_NAME``), the critic's too."""
        names = list(self.own_term_names())
        added = (
            ("l1", self.l1_weight),
            ("colorfulness", self.colorfulness_weight),
            ("perceptual", self.perceptual_weight),
            ("adversarial", self.adversarial_weight),
        )
        names += [name for name, weight in added if weight and name not in names]
        return names + (["discriminator"] if self.adversarial is not None else [])

    def decode(self, output: HeadOutput, batch: Batch) -> Tensor:
        """The raw output as ab (B×2×H×W at the batch's size), differentiably; ab itself by
        default (a two-branch output's: its regression branch)."""
        return (output.ab if isinstance(output, BranchOutput) else output).float()

    def terms(self, output: HeadOutput, batch: Batch) -> dict[str, Tensor]:
        """Every named, weighted term (scalars); they sum to the loss."""
        terms = self.own_terms(output, batch)
        if not (self.l1_weight or self.colorfulness_weight or self.perceptual or self.adversarial):
            return terms
        ab_pred = self.decode(output, batch)
        if self.l1_weight:
            terms["l1"] = terms.get("l1", 0) + self.l1_weight * F.l1_loss(ab_pred, batch["ab"])
        if self.colorfulness_weight:
            terms["colorfulness"] = self.colorfulness_weight * colorfulness_shortfall(
                ab_pred, batch
            )
        if self.perceptual is not None:
            rgb_pred = to_rgb(batch["L"].float(), ab_pred.float())
            terms["perceptual"] = self.perceptual_weight * self.perceptual(rgb_pred, batch["rgb"])
        if self.adversarial is not None and self.adversarial_active:
            terms["adversarial"] = self.adversarial_weight * self.adversarial.generator_loss(
                batch["L"], ab_pred
            )
        return terms

    def forward(self, output: HeadOutput, batch: Batch) -> Tensor:
        return total(self.terms(output, batch))


def loss_name(config: dict[str, Any]) -> str:
    """How runs, rows and checkpoints name a loss config: its kind (``mse``, ``l1``,
    ``huber``, ``classification``) and its added terms, e.g. ``l1+perceptual+adversarial``
    (``+cf`` for colourfulness)."""
    kind = config.get("kind") or str(config.get("_target_", "loss")).rsplit(".", 1)[-1]
    name = kind.removesuffix("Loss").lower()
    for key, short in _ADDED_TERMS:
        if config.get(key) and not (short == "l1" and name == "l1"):
            name += f"+{short}"
    return name


_ADDED_TERMS = (
    ("l1_weight", "l1"),
    ("perceptual_weight", "perceptual"),
    ("adversarial_weight", "adversarial"),
    ("colorfulness_weight", "cf"),
)
