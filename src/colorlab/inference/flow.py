"""Optical flow between grey frames, warping by it, and where it can be trusted.

A flow ``F`` from frame ``a`` to frame ``b`` is N×2×h×w in pixels, (dx, dy), such that
``a(x) ≈ b(x + F(x))`` (OpenCV's and torchvision's convention): `warp` ``(b, F)`` brings
``b`` onto ``a``'s pixels. Frames here are lightness, N×1×h×w in [0, 100].

Estimators: OpenCV's Farneback (CPU, no weights; ``opencv-python-headless``) and
torchvision's RAFT (``raft_small``, its C_T_V2 weights from torch.hub's folder; on the
colorizer's device). `consistent` is the forward–backward check of Sundaram et al. 2010:
occluded and disoccluded pixels, where the two flows disagree, are not trusted.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from colorlab.errors import ColorlabError, check_choice, first_line
from colorlab.loading import read_state_dict
from colorlab.weights import cached_file, hub_file

#: ``flow.method`` values: ``auto`` is RAFT on a GPU when its weights file is present, else
#: Farneback.
FLOW_METHODS = ("auto", "farneback", "raft")
RAFT_FILE = "raft_small_C_T_V2-01064c6d.pth"
RAFT_URL = "https://download.pytorch.org/models/" + RAFT_FILE
#: RAFT's correlation pyramid needs frames of at least this many pixels a side.
RAFT_MIN_SIDE = 128

FlowEstimator = Callable[[Tensor, Tensor], Tensor]
"""``(a, b) -> F``: N×1×h×w lightness pairs -> N×2×h×w flow from a to b (see module)."""


def _grey8(L: Tensor) -> np.ndarray:
    """N×1×h×w lightness in [0, 100] -> N×h×w uint8 (0..255)."""
    return (L[:, 0].float() * 2.55).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


class FarnebackFlow:
    """OpenCV's dense Farneback flow (CPU; the parameters OpenCV's samples use for video)."""

    def __init__(self) -> None:
        try:
            import cv2
        except ImportError as error:  # a dependency of colorlab: a broken install
            raise ColorlabError(
                f"Farneback flow needs OpenCV ({error}); pip install opencv-python-headless"
            ) from error
        self._cv2 = cv2

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        flows = [
            self._cv2.calcOpticalFlowFarneback(x, y, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            for x, y in zip(_grey8(a), _grey8(b))
        ]
        return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(a.device)


class RaftFlow:
    """torchvision's RAFT-small with its released C_T_V2 weights, read without pickle from
    ``$TORCH_HOME/hub/checkpoints/raft_small_C_T_V2-01064c6d.pth`` (downloaded there once
    where there is a network). Frames are resized to multiples of 8 of at least
    `RAFT_MIN_SIDE` a side, and the flow back to theirs."""

    def __init__(self, device: torch.device, updates: int = 12) -> None:
        from torchvision.models.optical_flow import raft_small

        self.device, self.updates = torch.device(device), updates
        self.net = raft_small(weights=None, progress=False)
        self.net.load_state_dict(raft_weights())
        self.net.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        h, w = a.shape[-2:]
        # RAFT needs sides of at least 128 px in multiples of 8: smaller frames are enlarged
        # and the flow brought back to their pixels.
        scale = max(1.0, RAFT_MIN_SIDE / min(h, w))
        size = (8 * math.ceil(h * scale / 8), 8 * math.ceil(w * scale / 8))

        def prepared(L: Tensor) -> Tensor:  # 3 channels in [-1, 1], as RAFT was trained
            L = F.interpolate(
                L.to(self.device, torch.float32), size=size, mode="bilinear", align_corners=False
            )
            return (L / 50 - 1).expand(-1, 3, -1, -1)

        flow = self.net(prepared(a), prepared(b), num_flow_updates=self.updates)[-1]
        if tuple(flow.shape[-2:]) != (h, w):
            flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
            flow = (
                flow * torch.tensor([w / size[1], h / size[0]], device=flow.device)[:, None, None]
            )
        return flow.to(a.device)


def raft_weights() -> dict[str, Tensor]:
    """RAFT-small's released state dict; a missing file that cannot be downloaded is one
    `ColorlabError` line naming it, where to put it and the way around it."""
    where = (
        f"put {RAFT_FILE} (from {RAFT_URL}) at {hub_file(RAFT_FILE)}, or use flow.method=farneback"
    )
    try:
        path = cached_file(RAFT_FILE, RAFT_URL, RAFT_FILE.rsplit("-", 1)[-1].split(".")[0])
    except Exception as error:  # URLError, socket and SSL errors, a wrong hash, a full disk
        raise ColorlabError(
            f"RAFT's weights are not here and cannot be downloaded ({first_line(error)}): {where}"
        ) from error
    try:
        return read_state_dict(path)
    except ColorlabError as error:
        raise ColorlabError(f"RAFT's weights: {error}; {where}") from error


def flow_estimator(method: str, device: torch.device | str = "cpu") -> FlowEstimator:
    """The estimator of ``method`` (`FLOW_METHODS`); ``auto``: RAFT on a CUDA device when its
    weights file is in torch.hub's folder, Farneback otherwise."""
    check_choice("method", method, FLOW_METHODS)
    device = torch.device(device)
    if method == "auto":
        method = "raft" if device.type == "cuda" and hub_file(RAFT_FILE).is_file() else "farneback"
    return RaftFlow(device) if method == "raft" else FarnebackFlow()


def _sampling_grid(flow: Tensor) -> Tensor:
    """N×2×h×w flow -> N×h×w×2 grid of x + F(x) in grid_sample's [-1, 1] (align_corners)."""
    n, _, h, w = flow.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=flow.device, dtype=flow.dtype),
        torch.arange(w, device=flow.device, dtype=flow.dtype),
        indexing="ij",
    )
    x = (xs + flow[:, 0]) * (2 / max(w - 1, 1)) - 1
    y = (ys + flow[:, 1]) * (2 / max(h - 1, 1)) - 1
    return torch.stack((x, y), dim=-1)


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """``image`` (N×C×h×w) sampled at x + F(x) for every pixel x (bilinear, edges extended):
    the frame that ``flow`` points into, brought onto the pixels the flow starts from."""
    grid = _sampling_grid(flow.to(image.device, torch.float32))
    return F.grid_sample(
        image.float(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )


def consistent(forward: Tensor, backward: Tensor) -> Tensor:
    """Where ``forward`` (a -> b) can be trusted, N×1×h×w bool on a's pixels: it points inside
    b and ``backward`` (b -> a) at its end leads back to the start, |F + B(x + F)|² ≤
    0.01 (|F|² + |B(x + F)|²) + 0.5 px² (Sundaram et al. 2010)."""
    if forward.shape != backward.shape or forward.shape[1] != 2:
        raise ValueError(f"flows must be N×2×h×w of one shape: {forward.shape}, {backward.shape}")
    back = warp(backward, forward)
    forward = forward.float()
    gap = (forward + back).square().sum(1, keepdim=True)
    scale = forward.square().sum(1, keepdim=True) + back.square().sum(1, keepdim=True)
    inside = (_sampling_grid(forward).abs() <= 1).all(dim=-1)[:, None]
    return (gap <= 0.01 * scale + 0.5) & inside
