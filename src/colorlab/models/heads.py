"""Output heads: what a `Colorizer` emits, and how that output is decoded to ab.

The head contract: ``head(features)`` maps the decoder's B×C×H×W features to the network's
raw output (whatever its loss trains), and ``head.decode(output, temperature)`` turns that
output into ab (B×2×h×w, (a*, b*) / 128 in (-1, 1)). Every consumer of predictions goes
through `Colorizer.predict_ab`, which calls ``decode``; nothing else interprets raw outputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from colorlab.color import ab_gamut, annealed_mean, check_temperature
from colorlab.errors import OptionError

HEADS = ("regression", "classification")


class Head(nn.Module):
    """Base of the heads: ``forward(features)`` -> raw output, `decode` -> ab."""

    def decode(self, output: Tensor, temperature: float | None = None) -> Tensor:
        """The raw output -> ab (B×2×h×w in (-1, 1)); ``temperature`` where the head has one."""
        raise NotImplementedError

    def start_from_prior(self, prior: Tensor) -> None:
        """Start from the training split's colour prior (Q bins; heads without bins: nothing)."""


class RegressionHead(Head):
    """ab directly: a 3×3 conv to 2 channels (a, b) and tanh. Output B×2×H×W in (-1, 1)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 2, 3, padding=1)
        self.activation = nn.Tanh()

    def forward(self, features: Tensor) -> Tensor:
        return self.activation(self.conv(features))

    def decode(self, output: Tensor, temperature: float | None = None) -> Tensor:
        """The output is ab already (``temperature`` is ignored)."""
        return output.float()


class ClassificationHead(Head):
    """Colour-bin logits (Zhang et al. 2016) at 1/``downsample`` of the decoder's resolution.

    Features are average-pooled by ``downsample``; a 3×3 conv + ReLU (``hidden`` channels)
    and a 1×1 conv give one logit per bin of `colorlab.color.ab_gamut` (Q = 261):
    B×Q×H/d×W/d. Decoding is the annealed mean at ``temperature`` (T → 0: the most likely
    bin, T = 1: the mean).
    """

    bins: Tensor  # Q×2 bin centres (Lab units)

    def __init__(
        self, in_channels: int, downsample: int = 4, temperature: float = 0.38, hidden: int = 128
    ) -> None:
        super().__init__()
        check_temperature(temperature)
        self.register_buffer("bins", ab_gamut(), persistent=False)  # Q×2, Lab units
        self.temperature = float(temperature)
        self.pool = nn.AvgPool2d(downsample) if downsample > 1 else nn.Identity()
        self.hidden = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.conv = nn.Conv2d(hidden, len(self.bins), 1)

    def forward(self, features: Tensor) -> Tensor:
        return self.conv(self.hidden(self.pool(features)))

    @torch.no_grad()
    def start_from_prior(self, prior: Tensor) -> None:
        """Initialise the logits' bias to log(prior) (Q), so that an untrained network
        predicts the training split's colour distribution rather than a uniform one."""
        bias = self.conv.bias
        assert bias is not None  # the conv is made with a bias
        bias.copy_(prior.clamp(min=1e-8).log().to(bias))

    def decode(self, output: Tensor, temperature: float | None = None) -> Tensor:
        """Logits B×Q×h×w -> ab B×2×h×w by the annealed mean (default: the head's T)."""
        temperature = self.temperature if temperature is None else temperature
        check_temperature(temperature)
        return annealed_mean(output, self.bins, temperature)


def make_head(in_channels: int, head: dict[str, Any] | None = None) -> Head:
    """The head a loss asks for: ``{"kind": "regression"}`` (default) or
    ``{"kind": "classification", "downsample": 4, "temperature": 0.38}``."""
    options = dict(head or {})
    kind = options.pop("kind", "regression")
    if kind == "regression":
        return RegressionHead(in_channels)
    if kind == "classification":
        return ClassificationHead(in_channels, **options)
    raise OptionError("head", kind, "choose one of: " + ", ".join(HEADS))
