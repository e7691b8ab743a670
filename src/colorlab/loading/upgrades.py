"""Checkpoints of earlier colorlab versions in today's layout (`upgrade_checkpoint`: stated
conversions, same outputs), applied by `colorlab.loading.checkpoint.read_checkpoint`."""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

#: Losses of checkpoints written before `colorlab.losses` (torch losses on ab).
_LEGACY_LOSSES = {"torch.nn.MSELoss": "mse", "torch.nn.L1Loss": "l1", "torch.nn.HuberLoss": "huber"}
_LEGACY_HEAD = re.compile(r"^net\.decoder\.(\d+)\.(weight|bias)$")


#: Models of checkpoints written before `colorlab.models.backbone`: VGG-16 wired in by hand,
#: fed L/100; now configurations of the generic builders with ``gray="lightness"``.
_LEGACY_MODELS = {
    "colorlab.models.vgg16": ("colorlab.models.backbone_encoder", "encoder"),
    "colorlab.models.vgg16_fusion": ("colorlab.models.global_fusion", "feature_extractor"),
}


def upgrade_checkpoint(
    hparams: dict[str, Any], state_dict: dict[str, Tensor]
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Read checkpoints of earlier colorlab versions (stated conversions, same outputs):

    - before output heads, the decoder's last conv (a bare Conv2d, where the other decoder
      convs are conv+ReLU blocks) becomes the regression head's conv, and a torch loss on ab
      becomes the equivalent `colorlab.losses.RegressionLoss`;
    - before generic backbones, ``colorlab.models.vgg16`` / ``vgg16_fusion`` become
      ``backbone_encoder`` / ``global_fusion`` with ``backbone: vgg16, gray: lightness``
      (the L/100 input they were trained on), their ``<part>.features.*`` weights
      ``<part>.body.features.*``.
    """
    model = dict(hparams.get("model") or {})
    if model.get("_target_") in _LEGACY_MODELS:
        target, part = _LEGACY_MODELS[model.pop("_target_")]
        hparams["model"] = {"_target_": target, "backbone": "vgg16", "gray": "lightness", **model}
        old, new = f"net.{part}.features.", f"net.{part}.body.features."
        state_dict = {
            (new + key[len(old) :] if key.startswith(old) else key): value
            for key, value in state_dict.items()
        }
    loss = dict(hparams.get("loss") or {})
    if loss.get("_target_") in _LEGACY_LOSSES:
        kind = _LEGACY_LOSSES[loss.pop("_target_")]
        delta = {"delta": loss["delta"]} if "delta" in loss else {}
        hparams["loss"] = {"_target_": "colorlab.losses.RegressionLoss", "kind": kind, **delta}
    if not any(key.startswith("net.head.") for key in state_dict):
        state_dict = {
            (
                f"net.head.conv.{match.group(2)}" if (match := _LEGACY_HEAD.match(key)) else key
            ): value
            for key, value in state_dict.items()
        }
    return hparams, state_dict
