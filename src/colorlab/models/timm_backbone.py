"""timm networks as backbones: ``model.backbone=timm/NAME`` wherever a torchvision name works
(``model=unet``, ``model=fusion``, the encoder model), e.g. ``timm/inception_resnet_v2`` (Deep
Koalarization's feature extractor), ``timm/convnext_tiny`` (DDColor's encoder).

The stages are timm's own (``features_only``: one map per reduction it reports); the input's
mean and std come from the network's pretrained config. Pretrained weights: a local file
``$TORCH_HOME/hub/checkpoints/timm/NAME.safetensors`` (or ``.pth``) when there is one, else
timm's own source (the Hugging Face hub, or its cache); offline without either, one line.
timm is an optional dependency (``pip install 'colorlab[timm]'``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from torch import nn

from colorlab.errors import ColorlabError, OptionError, first_line
from colorlab.weights import hub_file, offline

PREFIX = "timm/"
#: Local weights files are looked for with these endings, in this order.
WEIGHTS_SUFFIXES = (".safetensors", ".pth", ".bin")
_STRIDES = (2, 4, 8, 16, 32)
_EXAMPLES = "timm/resnet18, timm/convnext_tiny, timm/efficientnet_b0, timm/inception_resnet_v2"


def is_timm(name: str) -> bool:
    """Whether a ``model.backbone`` value names a timm network (``timm/NAME``)."""
    return isinstance(name, str) and name.startswith(PREFIX)


def _timm():
    try:
        import timm
    except ImportError as error:
        raise ColorlabError(
            f"timm backbones need timm ({error}): pip install 'colorlab[timm]' (or pip install timm)"
        ) from error
    return timm


def _model_name(name: str) -> str:
    timm = _timm()
    model = name[len(PREFIX) :]
    if not model or not timm.is_model(model):
        raise OptionError(
            "backbone",
            name,
            f"use timm/ and a name of timm.list_models(), e.g. {_EXAMPLES}",
            "is not a timm network",
        )
    return model


def weights_location(name: str) -> Path:
    """Where a local weights file for ``timm/NAME`` goes (``.safetensors``; ``.pth`` also read)."""
    model = name[len(PREFIX) :]
    return hub_file("timm") / f"{model}{WEIGHTS_SUFFIXES[0]}"


def local_weights(name: str) -> Path | None:
    """The local weights file of ``timm/NAME``, if there is one."""
    stem = weights_location(name).with_suffix("")
    return next((p for p in (stem.with_suffix(s) for s in WEIGHTS_SUFFIXES) if p.is_file()), None)


@contextlib.contextmanager
def _hub_offline(enabled: bool) -> Iterator[None]:
    """The Hugging Face hub's offline mode (its local cache only) for the block."""
    if not enabled:
        yield
        return
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def timm_body(
    name: str, pretrained: bool
) -> tuple[nn.Module, list[tuple[int, int, int]], tuple[list[float], list[float]]]:
    """timm network ``timm/NAME`` as a feature extractor: ``(body, stages, (mean, std))``.

    ``body(x)`` (x B×3×H×W, normalised) returns the list of timm's feature maps; ``stages``
    holds ``(index in that list, stride, channels)`` of the last map at each stride 2 … 32.
    """
    timm = _timm()
    model = _model_name(name)
    file = local_weights(name) if pretrained else None
    try:
        with _hub_offline(pretrained and not file and offline()):
            body = timm.create_model(
                model,
                pretrained=pretrained,
                features_only=True,
                pretrained_cfg_overlay={"file": str(file)} if file else None,
            )
    except (ColorlabError, OptionError):
        raise
    except Exception as error:  # hub errors offline, a foreign file, an unsupported network
        reason = first_line(error)
        if not pretrained:
            raise OptionError(
                "backbone", name, f"use a convolutional timm network, e.g. {_EXAMPLES}", reason
            ) from error
        source = f"{file}" if file else "timm's hub"
        raise ColorlabError(
            f"pretrained {name} weights unavailable from {source} ({reason}): put them at "
            f"{weights_location(name)} (or .pth; a state dict of timm.create_model"
            f"({model!r})) or train without them with model.pretrained=false"
        ) from error
    info = body.feature_info
    stages: dict[int, tuple[int, int, int]] = {}
    for index, (stride, channels) in enumerate(zip(info.reduction(), info.channels())):
        if stride in _STRIDES:
            stages[stride] = (index, stride, channels)
    if not stages:
        raise OptionError("backbone", name, "use a convolutional network", "has no feature maps")
    config = body.pretrained_cfg
    mean = list(config.get("mean", (0.485, 0.456, 0.406)))
    std = list(config.get("std", (0.229, 0.224, 0.225)))
    return body, [stages[s] for s in sorted(stages)], (mean, std)
