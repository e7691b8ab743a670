"""The base LightningDataModule: uint8 batches from a cache or from workers; augmentation and
Lab conversion on the device (`colorlab.data.transforms`). Its data sets are in
`colorlab.data.synthetic` and `colorlab.data.folder`."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from colorlab.data.cache import (
    CACHE_MODES,
    CachedBatches,
    cache_images,
    choose_cache,
    threaded_loader,
)
from colorlab.data.hints import hint_simulation
from colorlab.data.sampling import EpochOrder
from colorlab.data.transforms import Batch, build_augmentation, prepare_batch
from colorlab.errors import ColorlabError, OptionError, check_choice

log = logging.getLogger(__name__)


#: The splits every data module has.
SPLITS = ("train", "val", "test")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """`OptionError` unless both shares are in [0, 1) and leave images for training."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise OptionError(name, value, "use a share in [0, 1)")
    if val_fraction + test_fraction >= 1:
        raise OptionError(
            "test_fraction", test_fraction, "val_fraction + test_fraction must be below 1"
        )


class SplitDataset(Protocol):
    """A split's images: ``len`` of them, each 3×S×S uint8 by index."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Tensor: ...


class ColorizationDataModule(L.LightningDataModule):
    """Base data module. Subclasses fill ``self.datasets`` (split -> dataset of 3×S×S uint8).

    Batches reach the device as B×3×S×S uint8, either from a cache of every image
    (``cache``: ``gpu``, ``cpu``, or ``auto`` to choose by free memory; see
    `colorlab.data.cache`) or streamed from ``num_workers`` worker processes (``none``).
    Both visit the same images in the same order (`EpochOrder`: a seeded order per epoch,
    one shard per DDP rank). `on_after_batch_transfer` then augments (training only: a
    horizontal flip, and a random resized crop with ``crop_scale``), converts to Lab and
    returns ``{"L": B×1×S×S in [0, 100], "ab": B×2×S×S in (-1, 1), "rgb": B×3×S×S in [0, 1]}``,
    with ``"hints"`` (B×3×S×S, `colorlab.data.hints`) in training where ``hints`` enables them.
    """

    def __init__(
        self,
        image_size: int = 256,
        batch_size: int = 32,
        num_workers: int = 2,
        pin_memory: bool = True,
        flip: bool = True,
        crop_scale: tuple[float, float] | None = None,
        cache: str = "auto",
        seed: int = 0,
        hints: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if image_size < 8:
            raise OptionError("image_size", image_size, "use at least 8 (pixels)")
        if batch_size < 1:
            raise OptionError("batch_size", batch_size, "use at least 1")
        check_choice("cache", cache, CACHE_MODES)
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.num_workers = max(0, int(num_workers))
        self.pin_memory = pin_memory
        self.augmentation = build_augmentation(self.image_size, flip, crop_scale)
        #: Simulated colour hints added to training batches (``hints.enabled``), or None.
        self.hint_simulation = hint_simulation(hints)
        self.cache = cache
        self.seed = seed
        self.datasets: dict[str, SplitDataset] = {}
        self._cache_mode: str | None = None
        self._caches: dict[tuple[str, int, int], Tensor] = {}

    def setup(self, stage: str | None = None) -> None:
        """Fill ``self.datasets`` once (`load_splits`); an `OptionError` about the data is
        named as the ``data.`` key it is, wherever Lightning or a script calls this."""
        if self.datasets:
            return
        try:
            self.load_splits()
        except OptionError as error:
            raise error.within("data") from None

    def load_splits(self) -> None:
        """Fill ``self.datasets``: ``train``, ``val`` and ``test``."""
        raise NotImplementedError

    # -- where this process stands -------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """The training device (the CPU outside a trainer)."""
        return self.trainer.strategy.root_device if self.trainer else torch.device("cpu")

    def _rank(self) -> tuple[int, int]:
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)

    def cache_mode(self) -> str:
        """``gpu``, ``cpu`` or ``none``: ``data.cache`` resolved once for all splits."""
        if self._cache_mode is None:
            self.setup()
            world_size = self._rank()[1]
            count = sum(len(dataset) for dataset in self.datasets.values())
            nbytes = count * 3 * self.image_size**2 // world_size
            self._cache_mode = choose_cache(self.cache, nbytes, self.device)
            log.info(
                "data.cache=%s: %s (%.2f GB of images per process)",
                self.cache,
                {"gpu": "on the GPU", "cpu": "in RAM", "none": "streamed by workers"}[
                    self._cache_mode
                ],
                nbytes / 1e9,
            )
        return self._cache_mode

    # -- loaders -------------------------------------------------------------------------
    def split_dataloader(
        self, split: str, shuffle: bool = False, cache: str | None = None
    ) -> Iterable[Tensor]:
        """Batches of ``split`` (train, val, test or all) as B×3×S×S uint8 for this rank.

        ``cache`` overrides the resolved ``data.cache`` (e.g. ``none`` for one pass over a
        few images)."""
        dataset = self.split_dataset(split)
        if len(dataset) == 0:
            raise ColorlabError(f"the {split} split has no images; {self.empty_split_hint(split)}")
        rank, world_size = self._rank()
        order = EpochOrder(len(dataset), shuffle, self.seed, rank, world_size)
        drop_last = shuffle and len(order) > self.batch_size
        mode = cache or self.cache_mode()
        if mode == "none":
            assert isinstance(dataset, Dataset)  # workers load torch Datasets (every split is one)
            return DataLoader(
                dataset,
                batch_size=self.batch_size,
                sampler=order,
                drop_last=drop_last,
                num_workers=self.num_workers,
                pin_memory=self.pin_memory and torch.cuda.is_available(),
                persistent_workers=self.num_workers > 0,
            )
        images = self._cached(split, order, self.device if mode == "gpu" else torch.device("cpu"))
        return CachedBatches(images, order, self.batch_size, drop_last)

    def split_dataset(self, split: str) -> SplitDataset:
        """``split``'s data set (set up on first use); ``all``: every image of every split
        once, in name order where the images are files."""
        if split not in self.datasets:
            self.setup()
        if split == "all" and "all" not in self.datasets:
            self.datasets["all"] = self.all_images()
        return self.datasets[split]

    def all_images(self) -> SplitDataset:
        """Every split's images once (a split that is another's object counted once)."""
        distinct = {id(d): d for d in (self.datasets[s] for s in SPLITS if s in self.datasets)}
        return ConcatDataset([d for d in distinct.values() if isinstance(d, Dataset)])

    def _cached(self, split: str, order: EpochOrder, device: torch.device) -> Tensor:
        key = (split, order.rank, order.world_size)
        if key not in self._caches:
            shard = order.owned().tolist()
            with self.loader(split) as load:
                self._caches[key] = cache_images(
                    len(shard),
                    lambda rows: load([shard[r] for r in rows]),
                    (3, self.image_size, self.image_size),
                    device,
                    f"caching {split} ({len(shard)} images)",
                )
        return self._caches[key]

    def empty_split_hint(self, split: str) -> str:
        """What to do about an empty split (data sets say how their splits are made)."""
        return "add images to it"

    def loader(
        self, split: str
    ) -> contextlib.AbstractContextManager[Callable[[Sequence[int]], Tensor]]:
        """A context giving ``load(indices)`` -> N×3×S×S uint8 of ``split``'s items, for
        filling the cache; subclasses may load faster than item by item."""
        return threaded_loader(self.datasets[split].__getitem__, os.cpu_count() or 1)

    def train_dataloader(self) -> Iterable[Tensor]:
        return self.split_dataloader("train", shuffle=True)

    def val_dataloader(self) -> Iterable[Tensor]:
        return self.split_dataloader("val", shuffle=False)

    def test_dataloader(self) -> Iterable[Tensor]:
        return self.split_dataloader("test", shuffle=False)

    def predict_dataloader(self) -> Iterable[Tensor]:
        return self.split_dataloader("test", shuffle=False)

    # -- on the device -------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: Tensor, dataloader_idx: int) -> Batch:
        training = self.trainer is not None and self.trainer.training
        prepared = prepare_batch(batch, self.augmentation if training else None)
        if training and self.hint_simulation is not None:
            prepared["hints"] = self.hint_simulation(prepared["ab"])
        return prepared
