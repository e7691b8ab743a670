"""Colour over time in a video: each frame's ab at the model's size, given the frames before.

`TemporalSettings` (``colorize.temporal`` and its options) makes a fresh filter per video:

- ``none``: frame by frame;
- ``ema``: ab_t = α·ab_{t−1} + (1 − α)·pred_t, motion ignored (α = ``temporal_smoothing``);
- ``flow``: the previous frame's output ab warped onto this frame along the optical flow of
  the grey frames (`colorlab.inference.flow`) and blended with this frame's prediction,
  ``flow.weight`` of it, where the flow is trusted: consistent forwards and backwards, and the
  previous L warped the same way within ``flow.max_l_error`` of this frame's. Elsewhere
  (occluded, disoccluded or new content) the frame keeps its own prediction; a frame with
  fewer trusted pixels than ``flow.min_trusted`` is a cut and starts afresh.

A filter holds one frame (its L and ab at the model's size), whatever the video's length.
Frames are L N×1×s×s in [0, 100] and ab N×2×s×s in (-1, 1), in order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from colorlab.errors import OptionError, check_choice
from colorlab.inference.flow import FLOW_METHODS, FlowEstimator, consistent, flow_estimator, warp

#: ``colorize.temporal`` values.
TEMPORAL_MODES = ("flow", "ema", "none")


class TemporalFilter(Protocol):
    """Consecutive frames' L and predicted ab -> their ab over time (same shape)."""

    def __call__(self, L: Tensor, ab: Tensor) -> Tensor: ...


class FrameByFrame:
    """``none``: each frame's own prediction."""

    def __call__(self, L: Tensor, ab: Tensor) -> Tensor:
        return ab


class AbSmoother:
    """``ema``: an exponential moving average of ab, ab_t = α·ab_{t−1} + (1 − α)·pred_t."""

    def __init__(self, alpha: float) -> None:
        if not 0 <= alpha < 1:
            raise OptionError("temporal_smoothing", alpha, "use a number in [0, 1) (0 = off)")
        self.alpha = alpha
        self.state: Tensor | None = None

    def __call__(self, L: Tensor, ab: Tensor) -> Tensor:
        if self.alpha == 0:
            return ab
        out = torch.empty_like(ab)
        for t in range(len(ab)):
            self.state = (
                ab[t] if self.state is None else self.alpha * self.state + (1 - self.alpha) * ab[t]
            )
            out[t] = self.state
        return out


def motion(
    current: Tensor, previous: Tensor, estimator: FlowEstimator, max_l_error: float = 10.0
) -> tuple[Tensor, Tensor]:
    """The flow from each ``current`` frame to its ``previous`` one (N×2×s×s, both N×1×s×s L)
    and where it is trusted (N×1×s×s bool): consistent with the flow back, and the previous L
    warped along it within ``max_l_error`` of the current one. One estimator call."""
    flows = estimator(torch.cat([current, previous]), torch.cat([previous, current]))
    backward, forward = flows.split(len(current))  # current -> previous, and back
    trusted = consistent(backward, forward)
    trusted &= (current - warp(previous, backward)).abs() <= max_l_error
    return backward, trusted


class FlowFilter:
    """``flow``: motion-compensated colour (see the module). ``cuts`` counts the frames that
    started afresh; ``trusted`` is the last frame's trusted fraction."""

    def __init__(
        self,
        estimator: FlowEstimator,
        weight: float = 0.8,
        min_trusted: float = 0.5,
        max_l_error: float = 10.0,
    ) -> None:
        self.estimator, self.weight = estimator, weight
        self.min_trusted, self.max_l_error = min_trusted, max_l_error
        self.cuts, self.trusted = 0, 1.0
        self._L: Tensor | None = None  # the previous frame: 1×1×s×s, and its output 1×2×s×s
        self._ab: Tensor | None = None

    def __call__(self, L: Tensor, ab: Tensor) -> Tensor:
        L, out = L.float(), ab.float().clone()
        frames = L if self._L is None else torch.cat([self._L, L])
        first = len(frames) - len(L)  # 1 when the previous batch's last frame leads
        if len(frames) > 1:
            backward, trusted = motion(frames[1:], frames[:-1], self.estimator, self.max_l_error)
            fractions = trusted.float().mean(dim=(1, 2, 3)).tolist()  # one host sync a batch
        before = self._ab
        for t in range(len(L)):
            pair = t + first - 1  # index of (frame t, frame t − 1) in the pairs
            if pair >= 0 and before is not None:  # frame t − 1's output is ``before``
                self.trusted = fractions[pair]
                if self.trusted < self.min_trusted:
                    self.cuts += 1
                else:
                    mask = trusted[pair : pair + 1]
                    carried = warp(before, backward[pair : pair + 1])
                    blend = self.weight * carried + (1 - self.weight) * out[t : t + 1]
                    out[t : t + 1] = torch.where(mask, blend, out[t : t + 1])
            before = out[t : t + 1]
        self._L, self._ab = L[-1:].clone(), out[-1:].clone()
        return out.to(ab.dtype)


@functools.lru_cache(maxsize=4)
def _estimator(method: str, device: str) -> FlowEstimator:
    return flow_estimator(method, device)  # RAFT's network is built once per process


@dataclass(frozen=True)
class TemporalSettings:
    """How a video's colour follows over frames (``colorize.temporal`` and its options; see
    the module). Values are checked here; `OptionError`s name the ``colorize.`` keys."""

    mode: str = "flow"
    smoothing: float = 0.5
    flow_method: str = "auto"
    flow_weight: float = 0.8
    min_trusted: float = 0.5
    max_l_error: float = 10.0

    def __post_init__(self) -> None:
        check_choice("temporal", self.mode, TEMPORAL_MODES)
        AbSmoother(self.smoothing)
        check_choice("flow.method", self.flow_method, FLOW_METHODS)
        if not 0 <= self.flow_weight < 1:
            raise OptionError("flow.weight", self.flow_weight, "use a number in [0, 1)")
        if not 0 <= self.min_trusted <= 1:
            raise OptionError("flow.min_trusted", self.min_trusted, "use a fraction in [0, 1]")
        if not self.max_l_error > 0:
            raise OptionError("flow.max_l_error", self.max_l_error, "use a number > 0 (L units)")

    @classmethod
    def from_config(cls, options, mode: str | None = None) -> TemporalSettings:
        """From the ``colorize`` node of a config (its missing keys take the defaults);
        ``mode`` instead of its ``temporal``."""
        flow = options.get("flow") or {}
        defaults = cls()
        return cls(
            mode=mode or options.get("temporal", defaults.mode),
            smoothing=options.get("temporal_smoothing", defaults.smoothing),
            flow_method=flow.get("method", defaults.flow_method),
            flow_weight=flow.get("weight", defaults.flow_weight),
            min_trusted=flow.get("min_trusted", defaults.min_trusted),
            max_l_error=flow.get("max_l_error", defaults.max_l_error),
        )

    def prepare(self, device: torch.device | str) -> None:
        """Load what the filters will need (RAFT's weights), so that a missing file fails
        before any video is read."""
        if self.mode == "flow":
            _estimator(self.flow_method, str(torch.device(device)))

    def new_filter(self, device: torch.device | str) -> TemporalFilter:
        """A fresh filter for one video, its flow computed on ``device`` (RAFT) or the CPU."""
        if self.mode == "none":
            return FrameByFrame()
        if self.mode == "ema":
            return AbSmoother(self.smoothing)
        estimator = _estimator(self.flow_method, str(torch.device(device)))
        return FlowFilter(estimator, self.flow_weight, self.min_trusted, self.max_l_error)
