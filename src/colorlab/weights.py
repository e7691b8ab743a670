"""Pretrained weights files: where they are cached (``$TORCH_HOME/hub/checkpoints/``, torch.hub's
and torchvision's folder) and whether a missing one may be downloaded.

``COLORLAB_OFFLINE=1`` forbids downloads: a missing file fails at once with its one-line
message instead of waiting on a network that does not answer (a cluster's compute nodes);
timm's Hugging Face hub is then asked for its local cache only.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

OFFLINE_ENV = "COLORLAB_OFFLINE"


def hub_file(name: str) -> Path:
    """``$TORCH_HOME/hub/checkpoints/<name>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def offline() -> bool:
    """Whether ``COLORLAB_OFFLINE`` forbids downloads (set, and not 0 / false / no)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def require_local_or_download(path: Path) -> None:
    """Raise `FileNotFoundError` (the reason a caller's message gives) when ``path`` is
    missing and downloads are forbidden."""
    if offline() and not path.is_file():
        raise FileNotFoundError(f"{OFFLINE_ENV} is set and {path.name} is not cached")


def cached_file(name: str, url: str, hash_prefix: str | None = None) -> Path:
    """``$TORCH_HOME/hub/checkpoints/<name>``, downloaded there from ``url`` first when it is
    missing (its SHA-256 checked against ``hash_prefix``) unless downloads are forbidden.
    Raises what the download raised (`FileNotFoundError` when forbidden): the caller's
    message names the file and where to put it."""
    path = hub_file(name)
    if not path.is_file():
        require_local_or_download(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), hash_prefix=hash_prefix, progress=True)
    return path
