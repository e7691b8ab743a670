"""The adversarial term: a `PatchDiscriminator` judges (L, ab) pairs, the colorizer is
rewarded for fooling it. Trained by `ColorizationModule` with manual optimization (the
critic has its own optimizer and learning rate), from ``start_epoch`` on (DeOldify's "NoGAN":
train the colorizer on its other terms first)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from colorlab.errors import OptionError, check_choice
from colorlab.models.discriminator import PatchDiscriminator

#: ``adversarial_mode``: hinge (SNGAN) or least squares (LSGAN).
MODES = ("hinge", "lsgan")


class AdversarialTerm(nn.Module):
    """The critic and its two losses.

    Args:
        mode: ``hinge`` or ``lsgan``.
        start_epoch: the first epoch in which the critic trains and the term counts.
        lr: the critic's learning rate (Adam, β = (0.5, 0.999) as in pix2pix).
    """

    def __init__(self, mode: str = "hinge", start_epoch: int = 0, lr: float = 2e-4) -> None:
        super().__init__()
        check_choice("adversarial_mode", mode, MODES)
        if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or start_epoch < 0:
            raise OptionError("adversarial_start_epoch", start_epoch, "use an integer ≥ 0")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr <= 1:
            raise OptionError("discriminator_lr", lr, "use a number in (0, 1]")
        self.mode = mode
        self.start_epoch = start_epoch
        self.lr = float(lr)
        self.discriminator = PatchDiscriminator()

    def generator_loss(self, L: Tensor, ab_pred: Tensor) -> Tensor:
        """How far the critic is from taking ``ab_pred`` for real (to minimise)."""
        logits = self.discriminator(L, ab_pred).float()
        return -logits.mean() if self.mode == "hinge" else (logits - 1).square().mean()

    def discriminator_loss(self, L: Tensor, ab: Tensor, ab_pred: Tensor) -> Tensor:
        """The critic's loss on the true ab and a (detached) prediction."""
        real = self.discriminator(L, ab).float()
        fake = self.discriminator(L, ab_pred.detach()).float()
        if self.mode == "hinge":
            return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        return (real - 1).square().mean() + fake.square().mean()
