"""Where images come from (a folder of photos, the built-in synthetic scenes) and the
LightningDataModules that batch them as uint8 for the device (`transforms` then makes Lab)."""

from colorlab.data.datamodule import ColorizationDataModule
from colorlab.data.folder import FolderDataModule
from colorlab.data.painting import render_scene
from colorlab.data.synthetic import SyntheticDataModule, SyntheticScenes
from colorlab.data.transforms import prepare_batch

__all__ = [
    "ColorizationDataModule",
    "FolderDataModule",
    "SyntheticDataModule",
    "SyntheticScenes",
    "prepare_batch",
    "render_scene",
]
