"""Procedural landscape and city scenes: colorlab's built-in data, no download needed.

Colours follow cues a CNN can learn from the gray picture alone, as in landscape photos:
a blue sky that pales towards the horizon, white clouds, a yellow sun, grey-brown
mountains with white snow caps, textured green grass and forest, blue water with
horizontal ripples, and buildings in brick or concrete colours with grids of windows.

Each scene is a pure function of (seed, index, dusk_fraction) and of the size. Its random
choices (a few dozen numbers and small noise grids) are drawn on the CPU with NumPy; the
pixels of a whole batch of scenes are then painted at once with torch on any device, so
the GPU renders the default data set in a fraction of a second and the CPU and GPU
pictures agree within float rounding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from colorlab.data.datamodule import SPLITS, ColorizationDataModule, check_fractions
from colorlab.data.painting import render_scenes
from colorlab.errors import OptionError


class SyntheticScenes(Dataset):
    """Scenes ``first_index .. first_index + length - 1`` of the stream fixed by ``seed``.

    Items are 3×image_size×image_size uint8 RGB tensors (painted on the CPU);
    `render` paints many at once on any device.
    """

    def __init__(
        self,
        length: int,
        image_size: int,
        seed: int = 0,
        first_index: int = 0,
        dusk_fraction: float = 0.0,
    ) -> None:
        self.length = length
        self.image_size = image_size
        self.seed = seed
        self.first_index = first_index
        self.dusk_fraction = dusk_fraction

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tensor:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return self.render([index])[0]

    def render(self, indices, device: str | torch.device = "cpu") -> Tensor:
        """Items ``indices`` as N×3×S×S uint8 on ``device``."""
        first = self.first_index
        return render_scenes(
            self.seed,
            [first + int(i) for i in indices],
            self.image_size,
            self.dusk_fraction,
            device,
        )


class SyntheticDataModule(ColorizationDataModule):
    """``data=synthetic``: `SyntheticScenes`, split into disjoint index ranges;
    ``dusk_fraction`` of them with evening skies whose colour the gray picture cannot tell."""

    def __init__(
        self,
        num_images: int = 2000,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        dusk_fraction: float = 0.0,
        **common,
    ) -> None:
        super().__init__(**common)
        check_fractions(val_fraction, test_fraction)
        self.dusk_fraction = dusk_fraction
        if num_images < 3:
            raise OptionError("num_images", num_images, "use at least 3 (train, val, test)")
        self.num_images = num_images
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def load_splits(self) -> None:
        n_val = max(1, round(self.num_images * self.val_fraction))
        n_test = max(1, round(self.num_images * self.test_fraction))
        n_train = self.num_images - n_val - n_test
        starts = {"train": 0, "val": n_train, "test": n_train + n_val}
        sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.datasets = {
            split: SyntheticScenes(
                sizes[split], self.image_size, self.seed, starts[split], self.dusk_fraction
            )
            for split in SPLITS
        }

    def loader(
        self, split: str
    ) -> contextlib.AbstractContextManager[Callable[[Sequence[int]], Tensor]]:
        """Scenes painted many at a time, on the GPU when training on one."""
        scenes = self.datasets[split]
        assert isinstance(scenes, SyntheticScenes)  # load_splits makes nothing else
        device = self.device
        return contextlib.nullcontext(lambda indices: scenes.render(indices, device))
