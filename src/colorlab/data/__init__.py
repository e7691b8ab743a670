"""Where images come from (a folder of photos, the built-in synthetic scenes) and the
LightningDataModules that batch them as uint8 for the device (`transforms` then makes Lab).

The names below are imported on first use: reading one photo (`colorlab.data.images`, what
colorize needs) does not load Lightning, which the data modules need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from colorlab.data.datamodule import ColorizationDataModule
    from colorlab.data.folder import FolderDataModule
    from colorlab.data.painting import render_scene
    from colorlab.data.streaming import StreamingDataModule
    from colorlab.data.synthetic import SyntheticDataModule, SyntheticScenes
    from colorlab.data.transforms import prepare_batch

#: name -> the module that defines it
_EXPORTS = {
    "ColorizationDataModule": "colorlab.data.datamodule",
    "FolderDataModule": "colorlab.data.folder",
    "StreamingDataModule": "colorlab.data.streaming",
    "SyntheticDataModule": "colorlab.data.synthetic",
    "SyntheticScenes": "colorlab.data.synthetic",
    "prepare_batch": "colorlab.data.transforms",
    "render_scene": "colorlab.data.painting",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ColorizationDataModule",
    "FolderDataModule",
    "StreamingDataModule",
    "SyntheticDataModule",
    "SyntheticScenes",
    "prepare_batch",
    "render_scene",
]
