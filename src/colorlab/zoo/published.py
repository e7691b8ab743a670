"""The published networks with their authors' weights: `load_published` (the authors' forward
pass, in Lab units) and `published_network` (what ``zoo:NAME`` is wherever colorlab takes a
checkpoint: the same colorize path as a trained run's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from colorlab.color import AB_SCALE
from colorlab.configs import build
from colorlab.errors import ColorlabError
from colorlab.inference.network import TrainedNetwork, head_of
from colorlab.loading import state_dict_problem
from colorlab.zoo.files import ZOO_PREFIX, published, released_weights
from colorlab.zoo.networks import ECCV16, SIGGRAPH17, load_released

#: The size the authors' demo runs the networks at (L resized to it, ab upsampled back).
DEMO_SIZE = 256
#: The loss config a published network is described by: a classification network whose
#: bins decode by their mean (T = 1: the authors' forward pass takes the softmax's
#: expectation; the ECCV16 paper's annealed mean is ``temperature=0.38``).
_LOSS = {"_target_": "colorlab.losses.ClassificationLoss", "rebalance": None, "temperature": 1.0}


def published_configs(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model and loss configs that rebuild published network ``name`` in its released
    layout (what exported files of it store)."""
    published(name)
    model = {
        "_target_": f"colorlab.zoo.{name}",
        "layout": "released",
        "native_size": DEMO_SIZE,
        "pretrained": False,
    }
    return model, dict(_LOSS)


def build_published(name: str, weights: str | Path | None = None) -> ECCV16 | SIGGRAPH17:
    """Published network ``name`` as a colorlab model, its released weights loaded
    (`colorlab.zoo.files.released_weights`), in eval mode."""
    model, loss = published_configs(name)
    net = build(model, "model", head=head_of(loss))
    state = released_weights(name, weights)
    try:
        load_released(net, state)
    except RuntimeError as error:
        entry = published(name)
        raise ColorlabError(
            f"{weights or entry.path} is not {name}'s released layout ({state_dict_problem(error)}); "
            f"put {entry.file_name} (from {entry.url}) there"
        ) from error
    return net.eval()


class PublishedNetwork(nn.Module):
    """The authors' forward pass over a published colorlab model: ``net(L)`` (ECCV16) or
    ``net(L, ab=None, mask=None)`` (SIGGRAPH17) with L B×1×H×W in 0..100 (H, W multiples of
    8), hint ab B×2×H×W in Lab units, mask B×1×H×W of 0/1 -> ab B×2×H×W in Lab units."""

    def __init__(self, net: ECCV16 | SIGGRAPH17) -> None:
        super().__init__()
        self.net = net

    def forward(self, L: Tensor, ab: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        if isinstance(self.net, SIGGRAPH17):
            hints = None
            if ab is not None or mask is not None:
                ab = torch.zeros_like(L).expand(-1, 2, -1, -1) if ab is None else ab / AB_SCALE
                mask = torch.zeros_like(L) if mask is None else mask
                hints = torch.cat([ab, mask], dim=1)
            output = self.net(L, hints)
        elif ab is not None or mask is not None:
            raise ValueError("eccv16 takes no hints (siggraph17 does)")
        else:
            output = self.net(L)
        return self.net.decode(output, L.shape[-2:]) * AB_SCALE


def load_published(name: str, weights: str | Path | None = None) -> PublishedNetwork:
    """Published network ``name`` (``eccv16``, ``siggraph17``) with its authors' weights:
    from ``weights``, else torch.hub's folder (``torch.hub.get_dir()/checkpoints/<file>``,
    downloaded once where there is a network). The authors' forward pass (`PublishedNetwork`),
    in eval mode on the CPU."""
    return PublishedNetwork(build_published(name, weights)).eval()


def published_network(name: str, device: str | torch.device = "cpu") -> TrainedNetwork:
    """``zoo:NAME`` as inference takes a checkpoint: the network at the demo's 256 px."""
    model, loss = published_configs(name)
    net = build_published(name)
    return TrainedNetwork(
        net.to(device).eval(), DEMO_SIZE, model, loss, Path(ZOO_PREFIX + name), ZOO_PREFIX + name
    )
