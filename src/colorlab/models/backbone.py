"""Any torchvision classification network (or timm network, ``timm/NAME``:
`colorlab.models.timm_backbone`) as a frozen or trainable feature extractor over L.

Built through torchvision's model registry (`torchvision.models.get_model`, its weights enum)
and `create_feature_extractor`: the network's stage outputs (the last feature map at each
stride 2, 4, 8, 16, 32, found by tracing it once) are what an encoder, a U-Net or a global
feature vector use. Pretrained weights come from torchvision's cache
(``$TORCH_HOME/hub/checkpoints/``) or its download; offline, a missing file is one clear error.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import torch
import torchvision.models as tv
from torch import Tensor, nn
from torchvision.models.feature_extraction import (
    NodePathTracer,
    _set_default_tracer_kwargs,
    create_feature_extractor,
)

from colorlab.color import gray_rgb
from colorlab.errors import ColorlabError, OptionError, first_line
from colorlab.models.timm_backbone import is_timm, timm_body
from colorlab.weights import hub_file, require_local_or_download

#: How L becomes the network's 3-channel input: ``srgb`` = the sRGB gray picture of L
#: (`colorlab.color.gray_rgb`), ``lightness`` = L/100 in every channel (checkpoints of
#: colorlab's first VGG-16 models).
GRAY_INPUTS = ("srgb", "lightness")
_STRIDES = (2, 4, 8, 16, 32)
_TRACE_SIZE = 224
#: Constructor options that make a network traceable as a plain feature extractor.
_BUILD_OPTIONS = {
    "inception_v3": {"aux_logits": False, "init_weights": False},
    "googlenet": {"aux_logits": False, "init_weights": False},
}


def backbone_names() -> list[str]:
    """The torchvision classification networks (``model.backbone`` values)."""
    return sorted(tv.list_models(module=tv))


def pretrained_weights(name: str) -> tv.WeightsEnum:
    """The default (ImageNet) weights of torchvision network ``name``."""
    if name not in backbone_names():
        examples = (
            "resnet18, resnet34, resnet50, convnext_tiny, efficientnet_b0, regnet_y_400mf, vgg16"
        )
        raise OptionError(
            "backbone",
            name,
            "use one of torchvision.models.list_models(module=torchvision.models), "
            f"e.g. {examples}, or a timm network as timm/NAME (e.g. timm/inception_resnet_v2)",
            "is not a torchvision classification network",
        )
    return tv.get_model_weights(name).DEFAULT


def weights_file(name: str) -> Path:
    """Where torchvision keeps ``name``'s default weights: $TORCH_HOME/hub/checkpoints/."""
    return hub_file(os.path.basename(pretrained_weights(name).url))


def load_pretrained(
    name: str, without: str = "pretrained=false (model.pretrained=false)"
) -> dict[str, Tensor]:
    """``name``'s default weights through torchvision's loader (the cached file, else a
    download); `ColorlabError` naming the file, and ``without`` as the way to go on without
    them, when neither works."""
    weights = pretrained_weights(name)
    try:
        require_local_or_download(weights_file(name))
        return weights.get_state_dict(progress=True)
    except Exception as error:  # URLError, socket and SSL errors, a corrupt cached file
        reason = first_line(error)
        file = os.path.basename(weights.url)
        raise ColorlabError(
            f"pretrained {name} weights unavailable ({reason}): put {file} at "
            f"$TORCH_HOME/hub/checkpoints/{file} (here {weights_file(name)}) or train without "
            f"them with {without}"
        ) from error


def _network(name: str) -> nn.Module:
    return tv.get_model(name, weights=None, **_BUILD_OPTIONS.get(name, {}))


def _separating_nodes(network: nn.Module) -> list[str]:
    """Qualified names of the traced nodes that every path from the input to the output goes
    through (no edge of the graph jumps over them), in topological order: block outputs,
    not nodes inside a residual block or one branch of an inception block."""
    tracer = NodePathTracer(**_set_default_tracer_kwargs(None))
    graph = tracer.trace(network)
    order = {node: i for i, node in enumerate(graph.nodes)}
    crossing = [0] * (len(order) + 1)
    for node in graph.nodes:
        if node.op == "get_attr":  # parameters are not on the data path
            continue
        for user in node.users:
            if order[user] > order[node] + 1:
                crossing[order[node] + 1] += 1
                crossing[order[user]] -= 1
    names, open_edges = [], 0
    for node, i in order.items():
        open_edges += crossing[i]
        if open_edges == 0 and node in tracer.node_to_qualname:
            names.append(tracer.node_to_qualname[node])
    return names


def _trace(name: str) -> tuple[nn.Module, dict[str, Tensor], list[str]]:
    """The network, the outputs of its `_separating_nodes` on a blank picture, their names."""
    network = _network(name).eval()
    candidates = _separating_nodes(network)
    extractor = create_feature_extractor(network, return_nodes=candidates)
    with torch.no_grad():
        outputs = extractor(torch.zeros(1, 3, _TRACE_SIZE, _TRACE_SIZE))
    return network, outputs, candidates


@functools.cache
def stage_nodes(name: str) -> tuple[tuple[str, int, int], ...]:
    """``(node, stride, channels)`` of ``name``'s stage outputs: at each stride (2 … 32), the
    last block output (`_separating_nodes`) before global pooling, found by tracing once."""
    try:
        with torch.device("meta"):  # shapes only: no weights to initialise, no arithmetic
            network, outputs, candidates = _trace(name)
    except NotImplementedError:  # a network whose construction needs real numbers (regnet)
        network, outputs, candidates = _trace(name)
    modules = dict(network.named_modules())
    stages: dict[int, tuple[str, int, int]] = {}
    for node in candidates:
        output = outputs[node]
        if isinstance(modules.get(node), (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            break  # global pooling: the classifier starts here
        if not isinstance(output, Tensor) or output.ndim != 4:
            if stages and isinstance(output, Tensor) and output.ndim < 4:
                break  # flattened
            continue
        if output.shape[-1] != output.shape[-2]:
            continue  # channels last (B×H×W×C) inside a block
        stride = 2 ** round(math.log2(_TRACE_SIZE / output.shape[-1]))
        if stride in _STRIDES:
            stages[stride] = (node, stride, int(output.shape[1]))
    if not stages:
        raise OptionError(
            "backbone", name, "use a convolutional network", "has no convolutional feature maps"
        )
    return tuple(stages[s] for s in sorted(stages))


#: ``model.freeze_backbone``: true (always frozen), false (trained from the start) or an
#: epoch N (frozen for epochs 0 … N-1, then fine-tuned).
FreezeSpec = bool | int


def freeze_schedule(freeze: FreezeSpec) -> tuple[bool, int | None]:
    """``(trainable now, epoch to unfreeze at or None)`` for ``model.freeze_backbone``."""
    if isinstance(freeze, bool):
        return (not freeze, None)
    if isinstance(freeze, int) and freeze >= 0:
        return (freeze == 0, freeze or None)
    raise OptionError(
        "freeze_backbone", freeze, "use true, false or the epoch to unfreeze at (an integer ≥ 0)"
    )


#: What a `Backbone` returns: every stage's map (a U-Net's skips), the last map (an
#: encoder), or the last map averaged over space (a global feature vector).
OUTPUTS = ("stages", "last", "pooled")


class Backbone(nn.Module):
    """torchvision network ``name`` (or timm's, ``timm/NAME``) over L, returning feature maps.

    L (B×1×H×W in [0, 100]) becomes a 3-channel picture (``gray``, see `GRAY_INPUTS`),
    normalised with the weights' mean and std (timm's: its pretrained config's).
    ``output="stages"`` returns the list of maps
    at `strides` (B×`channels`[i]×H/s×W/s), ``"last"`` the deepest one, ``"pooled"`` the
    deepest one averaged over space (B×`out_channels`). ``freeze`` is
    ``model.freeze_backbone`` (`freeze_schedule`): a frozen backbone keeps ``requires_grad``
    off and stays in eval mode whatever ``train()`` asks; `set_trainable` thaws it, which
    the LightningModule does at epoch `unfreeze_at` (fine-tuning).
    """

    mean: Tensor  # 1×3×1×1, the weights' normalisation
    std: Tensor

    def __init__(
        self,
        name: str,
        pretrained: bool = True,
        freeze: FreezeSpec = True,
        gray: str = "srgb",
        output: str = "stages",
    ) -> None:
        super().__init__()
        if gray not in GRAY_INPUTS:
            raise OptionError("gray", gray, "use one of " + ", ".join(GRAY_INPUTS))
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r}: use one of {OUTPUTS}")
        stages: list[tuple[str | int, int, int]]  # (node, stride, channels): timm's nodes are ints
        if is_timm(name):
            self.body, timm_stages, (mean, std) = timm_body(name, pretrained)
            stages = list(timm_stages)
        else:
            weights = pretrained_weights(name)
            named = stage_nodes(name)
            stages = list(named)
            network = _network(name)
            nodes = [node for node, _, _ in (named if output == "stages" else named[-1:])]
            self.body = create_feature_extractor(network, return_nodes=nodes)
            if pretrained:
                self._load(name, load_pretrained(name))
            mean, std = weights.transforms().mean, weights.transforms().std
        if output != "stages":
            stages = stages[-1:]
        self.name = name
        self.gray = gray
        self.output = output
        self.nodes = [node for node, _, _ in stages]
        self.strides = [stride for _, stride, _ in stages]
        self.channels = [channels for _, _, channels in stages]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        trainable, self.unfreeze_at = freeze_schedule(freeze)
        self.set_trainable(trainable)

    def _load(self, name: str, state: dict[str, Tensor]) -> None:
        own = self.body.state_dict()
        missing = sorted(k for k in own if k not in state)
        if missing:
            raise ColorlabError(
                f"{weights_file(name)} holds no {name} weights for {missing[0]} "
                f"({len(missing)} tensors missing); delete it and retry"
            )
        self.body.load_state_dict({k: state[k] for k in own})

    @property
    def downsample(self) -> int:
        """The deepest map's stride."""
        return self.strides[-1]

    @property
    def out_channels(self) -> int:
        """Channels of the deepest map (of the pooled vector)."""
        return self.channels[-1]

    def set_trainable(self, trainable: bool) -> None:
        """Freeze (eval mode, no gradients) or thaw (gradients; ``train()`` then applies)."""
        self.trainable = trainable
        self.requires_grad_(trainable)
        if not trainable:
            self.eval()

    def train(self, mode: bool = True) -> Backbone:
        return super().train(mode and getattr(self, "trainable", False))

    def forward(self, L: Tensor) -> list[Tensor] | Tensor:
        L = L[:, :1]  # the network input's hint channels (if any) are not the backbone's
        if self.gray == "srgb":
            rgb = gray_rgb(L.float()).to(L.dtype)
        else:
            rgb = (L / 100.0).expand(-1, 3, -1, -1)
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            features = self.body((rgb - self.mean) / self.std)
        maps = [_channels_first(features[node], c) for node, c in zip(self.nodes, self.channels)]
        if self.output == "stages":
            return maps
        return maps[-1] if self.output == "last" else maps[-1].mean(dim=(-2, -1))


def _channels_first(x: Tensor, channels: int) -> Tensor:
    """B×C×H×W whether a network gave it so or channels last (timm's transformers)."""
    if x.shape[1] != channels and x.shape[-1] == channels:
        return x.permute(0, 3, 1, 2)
    return x
