"""`PatchDiscriminator`: the critic of an adversarial loss term (pix2pix's 70×70 PatchGAN), a
plain `nn.Module` that only training uses; inference and exports never build it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


def _conv(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """A spectrally normalised 4×4 conv (the critic's Lipschitz bound, for hinge losses)."""
    return spectral_norm(nn.Conv2d(in_channels, out_channels, 4, stride=stride, padding=1))


class PatchDiscriminator(nn.Module):
    """Scores overlapping patches of a colorized picture as real or generated.

    Input: L (B×1×H×W in [0, 100]) and ab (B×2×H×W in (-1, 1)); output: one logit per patch,
    B×1×h×w (h ≈ H/8 − 2). With the default widths every logit sees a 70×70 patch, as in
    pix2pix (Isola et al. 2017): C64 (no norm) – C128 – C256 – C512 (stride 1) – 1, 4×4 convs,
    LeakyReLU 0.2, spectral normalisation instead of batch norm (stable with hinge losses and
    the same under DDP).
    """

    def __init__(self, widths: Sequence[int] = (64, 128, 256, 512)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i, width in enumerate(widths):
            layers += [_conv(channels, width, 2 if i < len(widths) - 1 else 1), nn.LeakyReLU(0.2)]
            channels = width
        layers.append(_conv(channels, 1, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, L: Tensor, ab: Tensor) -> Tensor:
        """Patch logits B×1×h×w for L (B×1×H×W, 0..100) and ab (B×2×H×W, (-1, 1))."""
        return self.layers(torch.cat([L / 50.0 - 1.0, ab.to(L.dtype)], dim=1))
