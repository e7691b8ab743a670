"""The one reader of the files a user hands over: a colorlab checkpoint (``.ckpt``) or a
safetensors file of `colorlab.export`. Nothing in such a file may run code:

- a checkpoint is unpickled by ``torch.load(weights_only=True)``, with no class beyond torch's
  own tensors and containers allowed (`CHECKPOINT_GLOBALS`): a file that asks for another
  (a pickled payload) is refused before any object of it is built;
- the configs it stores are checked against `colorlab.configs.allowed_targets` at every depth
  before anything is built from them.

``trusted=True`` (``trust_checkpoint=true`` on the command line) unpickles in full and skips the
target check, with a warning: for a file whose author the user vouches for, never the default.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from colorlab.configs import check_targets
from colorlab.errors import ColorlabError, UnsafeFileError, first_line
from colorlab.loading.upgrades import upgrade_checkpoint

log = logging.getLogger(__name__)

#: Classes beyond torch's own (tensors, containers, numbers, strings) that colorlab's
#: checkpoints may hold: none. Those of every earlier colorlab version hold none either (each
#: was rewritten by its own code and checked with
#: ``torch.serialization.get_unsafe_globals_in_checkpoint``); a class added to what a
#: checkpoint stores must be added here, and nothing that can run code on construction.
CHECKPOINT_GLOBALS: list[Any] = []

SAFETENSORS = ".safetensors"
#: The safetensors metadata key that holds what a checkpoint's hyperparameters say.
METADATA_KEY = "colorlab"
#: The hyperparameter groups that name classes (`_target_`s) a reader builds.
BUILT_GROUPS = ("model", "loss", "optimizer", "scheduler")

#: What torch's weights-only unpickler names when it refuses a class or function
#: ("… GLOBAL posix.system …").
_ASKED = re.compile(r"GLOBAL ([\w.]+)")
MapLocation = str | torch.device | Callable[..., Any] | None


def load_checkpoint(
    path: str | Path, map_location: MapLocation = "cpu", trusted: bool = False
) -> dict[str, Any]:
    """A checkpoint file's contents as saved (Lightning's dictionary), checked to hold a model
    config and weights; read safely unless ``trusted``. Raises `ColorlabError` for a missing,
    unreadable, unsafe or foreign file."""
    path = _existing_file(path)
    checkpoint = _torch_load(path, map_location, trusted)
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not hparams or "model" not in hparams or "state_dict" not in checkpoint:
        raise ColorlabError(
            f"{path} is not a colorlab checkpoint (no model config or weights in it)"
        )
    return checkpoint


def read_checkpoint(
    path: str | Path, map_location: MapLocation = "cpu", trusted: bool = False
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """A checkpoint's (or colorlab safetensors file's) hyperparameters (model, loss, optimizer
    … configs) and state dict, upgraded to today's layout (`upgrade_checkpoint`), every config
    checked to name only allowed targets (unless ``trusted``)."""
    path = Path(path)
    if path.suffix.lower() == SAFETENSORS:
        hparams, state_dict = read_safetensors(path, map_location)
    else:
        checkpoint = load_checkpoint(path, map_location, trusted)
        hparams, state_dict = dict(checkpoint["hyper_parameters"]), checkpoint["state_dict"]
    hparams, state_dict = upgrade_checkpoint(hparams, state_dict)
    for group in ("model", "loss"):
        if not isinstance(hparams.get(group), dict):
            raise ColorlabError(
                f"{path} has no {group} config in its hyperparameters; it was not written by "
                "colorlab's training (or is damaged)"
            )
    if not trusted:
        for group in BUILT_GROUPS:
            check_targets(hparams.get(group), group, path)
    return hparams, state_dict


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """A plain weights file (a state dict saved by ``torch.save``, as published networks are
    released), read by ``torch.load(weights_only=True)``; `ColorlabError` unless it holds a
    mapping of names to tensors."""
    path = _existing_file(path)
    state_dict = _torch_load(path, "cpu", trusted=False)
    if not isinstance(state_dict, dict) or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in state_dict.items()
    ):
        raise ColorlabError(f"{path} is not a weights file (no mapping of names to tensors in it)")
    return dict(state_dict)


def model_without_download(model: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's model config with ``pretrained`` off: its frozen backbone weights are in
    the state dict, so rebuilding it never downloads them again."""
    model = copy.deepcopy(dict(model))
    if "pretrained" in model:
        model["pretrained"] = False
    return model


def state_dict_problem(error: RuntimeError, limit: int = 240) -> str:
    """What ``load_state_dict`` found wrong, in one line: its first missing or unexpected key or
    size mismatch (its message's first line names only the class), shortened to ``limit``."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = next((line for line in lines[1:]), lines[0] if lines else type(error).__name__)
    return detail if len(detail) <= limit else detail[: limit - 1] + "…"


def load_weights(module: torch.nn.Module, state_dict: dict[str, Tensor], path: str | Path) -> None:
    """``module.load_state_dict(state_dict)``; `ColorlabError` naming ``path`` when the
    weights do not fit the network its config builds."""
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as error:
        raise ColorlabError(
            f"{path} does not match its model config ({state_dict_problem(error)})"
        ) from error


def write_safetensors(
    path: Path, net_state: dict[str, Tensor], hparams: dict[str, Any]
) -> dict[str, str]:
    """Write a network's weights (``net_state``: the plain network's state dict) and what a
    reader needs to rebuild it (``hparams``: model, loss, image_size, label …, as JSON) to the
    safetensors file ``path`` (no pickle); returns the metadata written."""
    from safetensors.torch import save_file

    tensors = {f"net.{k}": v.detach().to("cpu").clone().contiguous() for k, v in net_state.items()}
    metadata = {METADATA_KEY: json.dumps(hparams, default=str), "format": "pt"}
    save_file(tensors, str(path), metadata=metadata)
    # safetensors creates the file readable by its owner alone; a file to share gets the
    # permissions any new file gets here (as torch.save's)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return metadata


def read_safetensors(
    path: Path, map_location: MapLocation = "cpu"
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The hyperparameters and state dict (``net.*`` keys) of a safetensors file that
    `colorlab.export` wrote."""
    from safetensors import SafetensorError, safe_open

    path = _existing_file(path)
    device = map_location if isinstance(map_location, (str, torch.device)) else "cpu"
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as file:
            metadata = file.metadata() or {}
            state_dict = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise ColorlabError(
            f"{path} cannot be read as safetensors ({first_line(error)})"
        ) from error
    if METADATA_KEY not in metadata:
        raise ColorlabError(f"{path} is not a safetensors file written by colorlab.export")
    try:
        hparams = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as error:
        raise ColorlabError(f"{path}: its colorlab metadata is corrupt ({error})") from error
    if not isinstance(hparams, dict):
        raise ColorlabError(f"{path}: its colorlab metadata is corrupt (not a mapping)")
    return hparams, state_dict


def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("**/checkpoints/*.ckpt")) or sorted(path.glob("**/*.ckpt"))
        example = f" such as {found[0]}" if found else ""
        raise ColorlabError(f"checkpoint {path} is a folder; give a .ckpt file{example}")
    if not path.is_file():
        raise ColorlabError(f"checkpoint {path} does not exist")
    return path


def _last_line(error: BaseException) -> str:
    """The most specific line of torch's multi-line refusal (its reason is the last)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reasons = [line for line in lines if "Unsupported" in line or "GLOBAL" in line]
    return (reasons or lines or [type(error).__name__])[-1]


def _torch_load(path: Path, map_location: MapLocation, trusted: bool) -> Any:
    if trusted:
        log.warning(
            "%s is unpickled in full (trust_checkpoint=true): a file can run any code this "
            "way; load only files whose author you trust",
            path,
        )
    try:
        if trusted:
            return torch.load(path, map_location=map_location, weights_only=False)
        with torch.serialization.safe_globals(CHECKPOINT_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        asked = _ASKED.search(str(error))
        if asked is None:  # not a pickle at all (a text file, garbage)
            raise ColorlabError(
                f"checkpoint {path} cannot be read (not a checkpoint: {_last_line(error)})"
            ) from None
        # torch's weights-only unpickler refused a class or function the file asked for
        raise UnsafeFileError(
            f"checkpoint {path} asks to build {asked.group(1)} when it is opened, which "
            "colorlab's checkpoints never hold (a pickled object can run code): refused; load "
            "it with trust_checkpoint=true only if you trust whoever wrote it"
        ) from None
    except Exception as error:  # noqa: BLE001 - a truncated or foreign file is one line
        raise ColorlabError(
            f"checkpoint {path} cannot be read ({type(error).__name__}: {first_line(error)})"
        ) from error
