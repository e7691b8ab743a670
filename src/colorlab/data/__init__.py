"""Where images come from, and the LightningDataModules that batch them."""

from colorlab.data.datamodule import ColorizationDataModule, FolderDataModule, SyntheticDataModule
from colorlab.data.synthetic import SyntheticScenes, render_scene

__all__ = [
    "ColorizationDataModule",
    "FolderDataModule",
    "SyntheticDataModule",
    "SyntheticScenes",
    "render_scene",
]
