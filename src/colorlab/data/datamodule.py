"""The LightningDataModules: uint8 batches from a cache or from workers; augmentation and
Lab conversion on the device."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from colorlab.color import lab_batch
from colorlab.data.augment import build_augmentation
from colorlab.data.cache import (
    CACHE_MODES,
    CachedBatches,
    cache_images,
    choose_cache,
    threaded_loader,
)
from colorlab.data.folder import (
    SPLITS,
    ImageFiles,
    default_workers,
    limit_files,
    split_files,
    vet_images,
)
from colorlab.data.images import IMAGE_EXTENSIONS, RESIZE_MODES, SkipReport
from colorlab.data.sampling import EpochOrder
from colorlab.data.synthetic import SyntheticScenes
from colorlab.errors import ColorlabError, check_choice

log = logging.getLogger(__name__)


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for key, value in (("data.val_fraction", val_fraction), ("data.test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ColorlabError(f"{key}={value} must be in [0, 1)")
    if val_fraction + test_fraction >= 1:
        raise ColorlabError(
            "data.val_fraction + data.test_fraction must be below 1 (training needs images)"
        )


class ColorizationDataModule(L.LightningDataModule):
    """Base data module. Subclasses fill ``self.datasets`` (split -> dataset of 3×S×S uint8).

    Batches reach the device as B×3×S×S uint8, either from a cache of every image
    (``cache``: ``gpu``, ``cpu``, or ``auto`` to choose by free memory; see
    `colorlab.data.cache`) or streamed from ``num_workers`` worker processes (``none``).
    Both visit the same images in the same order (`EpochOrder`: a seeded order per epoch,
    one shard per DDP rank). `on_after_batch_transfer` then augments (training only: a
    horizontal flip, and a random resized crop with ``crop_scale``), converts to Lab and
    returns ``{"L": B×1×S×S in [0, 100], "ab": B×2×S×S in (-1, 1), "rgb": B×3×S×S in [0, 1]}``.
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
    ) -> None:
        super().__init__()
        if image_size < 8:
            raise ColorlabError(f"data.image_size={image_size} is too small (at least 8 px)")
        if batch_size < 1:
            raise ColorlabError(f"data.batch_size={batch_size} must be at least 1")
        check_choice("data.cache", cache, CACHE_MODES)
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.num_workers = max(0, int(num_workers))
        self.pin_memory = pin_memory
        self.augmentation = build_augmentation(self.image_size, flip, crop_scale)
        self.cache = cache
        self.seed = seed
        self.datasets: dict[str, Dataset] = {}
        self._cache_mode: str | None = None
        self._caches: dict[tuple[str, int, int], Tensor] = {}

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
        """Batches of ``split`` (train, val or test) as B×3×S×S uint8 for this rank.

        ``cache`` overrides the resolved ``data.cache`` (e.g. ``none`` for one pass over a
        few images)."""
        if split not in self.datasets:
            self.setup()
        dataset = self.datasets[split]
        if len(dataset) == 0:
            raise ColorlabError(
                f"the {split} split has no images; add some or change the split fractions"
            )
        rank, world_size = self._rank()
        order = EpochOrder(len(dataset), shuffle, self.seed, rank, world_size)
        drop_last = shuffle and len(order) > self.batch_size
        mode = cache or self.cache_mode()
        if mode == "none":
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
    def on_after_batch_transfer(
        self, batch: torch.Tensor, dataloader_idx: int
    ) -> dict[str, torch.Tensor]:
        training = self.trainer is not None and self.trainer.training
        return self.prepare_batch(batch, self.augmentation if training else None)

    @staticmethod
    def prepare_batch(
        rgb_uint8: torch.Tensor, augmentation: Callable[[Tensor], Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """uint8 B×3×H×W (on its device) -> the L / ab / rgb dictionary, after
        ``augmentation`` (of float RGB in [0, 1]) if given."""
        rgb = rgb_uint8.float().div_(255.0)
        if augmentation is not None:
            rgb = augmentation(rgb).clamp_(0, 1)
        return lab_batch(rgb)


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
        _check_fractions(val_fraction, test_fraction)
        self.dusk_fraction = dusk_fraction
        if num_images < 3:
            raise ColorlabError(
                f"data.num_images={num_images} must be at least 3 (train, val, test)"
            )
        self.num_images = num_images
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
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
        scenes: SyntheticScenes = self.datasets[split]
        device = self.device
        return contextlib.nullcontext(lambda indices: scenes.render(indices, device))


class FolderDataModule(ColorizationDataModule):
    """``data=folder``: the photos below ``root`` (recursively), vetted once at setup.

    Unreadable files are warned about by name, entirely black or white and nearly
    colourless ones (colourfulness below ``min_colorfulness``; 0 disables) are left out;
    `skipped` counts them all.
    """

    def __init__(
        self,
        root: str | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        limit: int | None = None,
        min_colorfulness: float = 5.0,
        resize: str = "squash",
        **common,
    ) -> None:
        super().__init__(**common)
        _check_fractions(val_fraction, test_fraction)
        check_choice("data.resize", resize, RESIZE_MODES)
        if not root:
            raise ColorlabError("data.root is not set; pass data.root=FOLDER_OF_PHOTOS")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise ColorlabError(f"data.root={root} is not a folder")
        if limit is not None and limit < 1:
            raise ColorlabError(f"data.limit={limit} must be a positive number of images (or null)")
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.limit = limit
        self.min_colorfulness = min_colorfulness
        self.resize = resize
        self.skipped = SkipReport()

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        splits = split_files(self.root, self.val_fraction, self.test_fraction, self.seed)
        splits = limit_files(splits, self.limit, self.seed)
        if not any(splits.values()):
            raise ColorlabError(
                f"data.root={self.root} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        vetted: dict[int, list[Path]] = {}
        for files in splits.values():
            if id(files) not in vetted:
                kept, report = vet_images(files, self.min_colorfulness, default_workers())
                vetted[id(files)] = kept
                self.skipped.merge(report)
        kept_splits = {name: vetted[id(files)] for name, files in splits.items()}
        used = len({p for files in kept_splits.values() for p in files})
        log.log(
            logging.WARNING if self.skipped.total else logging.INFO,
            "%s: %s",
            self.root,
            self.skipped.summary(used),
        )
        if not kept_splits["train"]:
            raise ColorlabError(
                f"data.root={self.root} has no usable training image ({self.skipped.summary(used)})"
            )
        self.datasets = {
            name: ImageFiles(files, self.image_size, self.resize)
            for name, files in kept_splits.items()
        }
