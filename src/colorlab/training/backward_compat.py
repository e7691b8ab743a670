"""Reading colorlab checkpoints, those of earlier versions included: every reader (resuming,
`ColorizationModule.from_checkpoint`, the inference network) goes through `read_checkpoint`,
which applies the stated conversions of `upgrade_checkpoint` (same outputs as before)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from colorlab.errors import ColorlabError, first_line


def read_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """A colorlab checkpoint's hyperparameters (model, loss, optimizer … configs) and
    state dict, upgraded to today's layout; `ColorlabError` for a missing, unreadable
    (truncated, not a checkpoint) or foreign file (no model config or weights in it)."""
    checkpoint = load_checkpoint(path, map_location)
    return upgrade_checkpoint(dict(checkpoint["hyper_parameters"]), checkpoint["state_dict"])


def model_without_download(model: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's model config with ``pretrained`` off: its frozen backbone weights are in
    the state dict, so rebuilding it never downloads them again."""
    model = copy.deepcopy(dict(model))
    if "pretrained" in model:
        model["pretrained"] = False
    return model


def load_weights(module: torch.nn.Module, state_dict: dict[str, Tensor], path: str | Path) -> None:
    """``module.load_state_dict(state_dict)``; `ColorlabError` naming ``path`` when the
    weights do not fit the network its config builds."""
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as error:
        first = first_line(error)
        raise ColorlabError(f"{path} does not match its model config ({first})") from error


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A colorlab checkpoint file's contents as saved (Lightning's dictionary), checked to
    hold a model config and weights; see `read_checkpoint`."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("**/checkpoints/*.ckpt")) or sorted(path.glob("**/*.ckpt"))
        example = f" such as {found[0]}" if found else ""
        raise ColorlabError(f"checkpoint {path} is a folder; give a .ckpt file{example}")
    if not path.is_file():
        raise ColorlabError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:
        first = (str(error).strip().splitlines() or [""])[0]
        raise ColorlabError(
            f"checkpoint {path} cannot be read ({type(error).__name__}: {first})"
        ) from error
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not hparams or "model" not in hparams or "state_dict" not in checkpoint:
        raise ColorlabError(
            f"{path} is not a colorlab checkpoint (no model config or weights in it)"
        )
    return checkpoint


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
