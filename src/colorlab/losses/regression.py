"""Per-pixel regression of ab: the reference's MSE, or L1 / Huber (plus any added term of
`colorlab.losses.base.ColorizationLoss`)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from colorlab.errors import OptionError, check_choice
from colorlab.losses.base import Batch, ColorizationLoss
from colorlab.models.heads import HeadOutput

REGRESSION_KINDS = ("mse", "l1", "huber")


class RegressionLoss(ColorizationLoss):
    """Per-pixel regression of ab by the regression head's tanh output.

    Args:
        kind: ``mse``, ``l1`` or ``huber``.
        delta: Huber's threshold in ab units (0.1 = 12.8 Lab units).
        **terms: added terms (``colorfulness_weight``, ``perceptual_weight``,
            ``adversarial_weight`` …), see `ColorizationLoss`.
    """

    def __init__(self, kind: str = "mse", delta: float = 0.1, **terms: Any) -> None:
        super().__init__(**terms)
        check_choice("kind", kind, REGRESSION_KINDS)
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or delta <= 0:
            raise OptionError("delta", delta, "use a positive number (ab units)")
        self.kind = kind
        self.delta = float(delta)
        self.head = self.head_for()

    def own_term_names(self) -> tuple[str, ...]:
        return (self.kind,)

    def own_terms(self, output: HeadOutput, batch: Batch) -> dict[str, Tensor]:
        ab_pred, ab = self.decode(output, batch), batch["ab"]
        if self.kind == "mse":
            return {"mse": F.mse_loss(ab_pred, ab)}
        if self.kind == "l1":
            return {"l1": F.l1_loss(ab_pred, ab)}
        return {"huber": F.huber_loss(ab_pred, ab, delta=self.delta)}
