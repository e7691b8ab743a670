"""Output heads: what a `Colorizer` emits, and how that output is decoded to ab.

The head contract: ``head(features)`` maps the decoder's B×C×H×W features to the network's
raw output (whatever its loss trains), and ``head.decode(output, temperature)`` turns that
output into ab (B×2×h×w, (a*, b*) / 128 in (-1, 1)). Every consumer of predictions goes
through `Colorizer.predict_ab`, which calls ``decode``; nothing else interprets raw outputs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorlab.color import ab_gamut, annealed_mean, check_temperature
from colorlab.errors import OptionError

HEADS = ("regression", "classification")


class BranchOutput(NamedTuple):
    """The raw output of a network with two branches (SIGGRAPH17 trained by classification):
    colour-bin logits (B×Q×h×w) for the classification term, and the regression branch's ab
    (B×2×H×W in (-1, 1)), the network's prediction, for every term on ab."""

    logits: Tensor
    ab: Tensor

    def detach(self) -> BranchOutput:
        return BranchOutput(self.logits.detach(), self.ab.detach())


#: What a network's ``forward`` gives and its loss trains: one tensor, or two branches.
HeadOutput = Tensor | BranchOutput


class Head(nn.Module):
    """Base of the heads: ``forward(features)`` -> raw output, `decode` -> ab."""

    #: Whether only a loss's terms on ab (``l1_weight`` …) train what the head predicts with
    #: (a two-branch head under a classification loss); its own term trains another branch.
    predicts_by_ab_terms = False

    def decode(self, output: Tensor, temperature: float | None = None) -> Tensor:
        """The raw output -> ab (B×2×h×w in (-1, 1)); ``temperature`` where the head has one."""
        raise NotImplementedError

    def start_from_prior(self, prior: Tensor) -> None:
        """Start from the training split's colour prior (Q bins; heads without bins: nothing)."""


class RegressionHead(Head):
    """ab directly: a 3×3 conv to 2 channels (a, b) and tanh, upsampled bilinearly by
    ``stride`` (features at 1/stride of the input's size). Output B×2×H×W in (-1, 1)."""

    def __init__(self, in_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 2, 3, padding=1)
        self.activation = nn.Tanh()
        self.stride = stride

    def forward(self, features: Tensor) -> Tensor:
        ab = self.activation(self.conv(features))
        if self.stride > 1:
            ab = F.interpolate(ab, scale_factor=self.stride, mode="bilinear", align_corners=False)
        return ab

    def decode(self, output: Tensor, temperature: float | None = None) -> Tensor:
        """The output is ab already (``temperature`` is ignored)."""
        return output.float()


class ClassificationHead(Head):
    """Colour-bin logits (Zhang et al. 2016) at 1/``downsample`` of the input's resolution.

    Features (at 1/``stride`` of the input's size) are average-pooled by downsample / stride;
    a 3×3 conv + ReLU (``hidden`` channels; none where ``hidden`` is 0) and a 1×1 conv give
    one logit per bin: B×Q×H/d×W/d. The bins are `colorlab.color.ab_gamut`'s (Q = 261), or
    ``bins`` given (a published network's own: then they are kept in the state dict).
    Decoding is the annealed mean at ``temperature`` (T → 0: the most likely bin, T = 1: the
    mean).
    """

    bins: Tensor  # Q×2 bin centres (Lab units)

    def __init__(
        self,
        in_channels: int,
        downsample: int = 4,
        temperature: float = 0.38,
        hidden: int = 128,
        stride: int = 1,
        bins: Tensor | None = None,
    ) -> None:
        super().__init__()
        check_temperature(temperature)
        if downsample % stride:
            raise OptionError(
                "downsample",
                downsample,
                f"this network's features are at 1/{stride} of the input: use a multiple of {stride}",
            )
        # Q×2, Lab units; a network's own bins are part of its weights
        self.register_buffer("bins", ab_gamut() if bins is None else bins, bins is not None)
        self.temperature = float(temperature)
        pool = downsample // stride
        self.pool = nn.AvgPool2d(pool) if pool > 1 else nn.Identity()
        self.hidden: nn.Module = nn.Identity()
        if hidden:
            self.hidden = nn.Sequential(
                nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(inplace=True)
            )
        self.conv = nn.Conv2d(hidden or in_channels, len(self.bins), 1)
        #: Whether `start_from_prior` leaves the logits alone (they come from a trained file).
        self.pretrained = False

    def forward(self, features: Tensor) -> Tensor:
        return self.conv(self.hidden(self.pool(features)))

    @torch.no_grad()
    def start_from_prior(self, prior: Tensor) -> None:
        """Initialise the logits' bias to log(prior) (Q), so that an untrained network
        predicts the training split's colour distribution rather than a uniform one (a
        pretrained head keeps its own)."""
        if self.pretrained:
            return
        bias = self.conv.bias
        assert bias is not None  # the conv is made with a bias
        bias.copy_(prior.clamp(min=1e-8).log().to(bias))

    def decode(self, output: Tensor, temperature: float | None = None) -> Tensor:
        """Logits B×Q×h×w -> ab B×2×h×w by the annealed mean (default: the head's T)."""
        temperature = self.temperature if temperature is None else temperature
        check_temperature(temperature)
        return annealed_mean(output, self.bins, temperature)


def make_head(
    in_channels: int, head: dict[str, Any] | None = None, stride: int = 1, **layout: Any
) -> Head:
    """The head a loss asks for: ``{"kind": "regression"}`` (default) or
    ``{"kind": "classification", "downsample": 4, "temperature": 0.38}``, on features at
    1/``stride`` of the input's size; ``layout``: a network's own classification layout
    (``hidden``, ``bins``)."""
    options = dict(head or {})
    kind = options.pop("kind", "regression")
    if kind == "regression":
        return RegressionHead(in_channels, stride)
    if kind == "classification":
        return ClassificationHead(in_channels, stride=stride, **layout, **options)
    raise OptionError("head", kind, "choose one of: " + ", ".join(HEADS))
