"""``data=streaming data.input_dir=DIR``: batches streamed from LitData shards written by
``python -m colorlab.prepare`` — a local folder or a URL LitData reads (``s3://…``).

Each split is a ``litdata.StreamingDataset``: the workers decode and resize the JPEG bytes to
3×S×S uint8 (as ``data=folder``'s workers do), the device augments and converts to Lab as for
every source (`ColorizationDataModule`). Training batches come from a ``StreamingDataLoader``:
under DDP every rank reads its own share of the chunks with the same number of batches
(``drop_last``), reshuffled each epoch, and the loader's position is part of each checkpoint
(Lightning saves a stateful training loader's state and restores it before the loop runs), so
that a run stopped mid-epoch resumes where it stood: no photo twice in that epoch. Validation
and test are read by index in order, each rank its share, as for every source. The local
cache of remote chunks is bounded by ``max_cache_size``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset

from colorlab.data.datamodule import SPLITS, ColorizationDataModule, SplitDataset
from colorlab.data.images import RESIZE_MODES, to_uint8_chw
from colorlab.data.shards import PREPARED, decode_photo
from colorlab.errors import ColorlabError, OptionError, check_choice

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToUint8:
    """A prepared item -> 3×size×size uint8 RGB (picklable: it runs in the workers)."""

    size: int
    mode: str = "squash"

    def __call__(self, item: dict[str, Any]) -> Tensor:
        return to_uint8_chw(decode_photo(item, self.size, self.mode))


def _is_url(location: str) -> bool:
    return "://" in location


class StreamingDataModule(ColorizationDataModule):
    """Training, validation and test batches streamed from a prepared set (see module).

    Args:
        input_dir: the ``output`` of ``colorlab.prepare``: a folder, or a URL such as
            ``s3://bucket/photos`` (read by LitData, credentials from its usual places).
        resize: ``squash`` or ``crop``, for photos not prepared at ``image_size``.
        max_cache_size: local cache of remote chunks per process (LitData's, e.g. ``"50GB"``).
        cache_dir: where that cache lives (default LitData's).
        prior_images: the colour prior of classification losses is counted over this many
            training photos (a shuffled sample of the stream), not a whole epoch.
        **common: `ColorizationDataModule`'s (``data.cache`` is always ``none`` here).
    """

    def __init__(
        self,
        input_dir: str | None = None,
        resize: str = "squash",
        max_cache_size: str = "50GB",
        cache_dir: str | None = None,
        prior_images: int = 10_000,
        **common: Any,
    ) -> None:
        common["cache"] = "none"
        super().__init__(**common)
        check_choice("resize", resize, RESIZE_MODES)
        if not input_dir:
            raise OptionError(
                "input_dir",
                input_dir,
                "give the output of python -m colorlab.prepare",
                "is not set",
            )
        self.input_dir = str(input_dir)
        if not _is_url(self.input_dir):
            folder = Path(self.input_dir).expanduser()
            if not (folder / PREPARED).is_file():
                raise OptionError(
                    "input_dir",
                    self.input_dir,
                    f"give a folder written by python -m colorlab.prepare (it ends with {PREPARED})",
                    "holds no prepared set",
                )
            self.input_dir = str(folder)
        self.resize = resize
        self.max_cache_size = max_cache_size
        self.cache_dir = cache_dir
        if prior_images < 1:
            raise OptionError("prior_images", prior_images, "use at least 1 (photos)")
        self.prior_images = int(prior_images)

    def _location(self, split: str) -> str:
        return f"{self.input_dir.rstrip('/')}/{split}"

    def _dataset(self, split: str, shuffle: bool):
        from litdata import StreamingDataset

        return StreamingDataset(
            self._location(split),
            cache_dir=self.cache_dir,
            shuffle=shuffle,
            drop_last=shuffle,
            seed=self.seed,
            max_cache_size=self.max_cache_size,
            transform=ToUint8(self.image_size, self.resize),
        )

    def load_splits(self) -> None:
        for split in SPLITS:
            try:
                dataset = self._dataset(split, shuffle=split == "train")
            except (FileNotFoundError, ValueError) as error:  # an empty split writes no set
                log.info("%s: no %s split (%s)", self.input_dir, split, error)
                dataset = None
            # validation and test are read by index, in order, each rank its own equal share
            # (as every other source): a small split is not left without batches on a rank
            self.datasets[split] = (
                dataset if split == "train" and dataset is not None else _Indexed(dataset)
            )
        if not len(self.datasets["train"]):
            raise ColorlabError(f"{self.input_dir} holds no training photo")

    def cache_mode(self) -> str:
        return "none"

    def all_images(self) -> SplitDataset:
        parts = [_Indexed(self.datasets[split]) for split in SPLITS]  # re-wrapping is harmless
        distinct = {id(part.root): part for part in parts if len(part)}
        return ConcatDataset(list(distinct.values()))

    def split_dataloader(
        self, split: str, shuffle: bool = False, cache: str | None = None
    ) -> Iterable[Tensor]:
        """Training batches from a ``StreamingDataLoader`` (each rank reads its own share of
        the chunks, the same number of batches on every rank; its position is saved with each
        checkpoint); the other splits as every data module reads them."""
        if split != "train":
            return super().split_dataloader(split, shuffle, cache="none")
        from litdata import StreamingDataLoader

        self.setup()
        dataset = self.datasets["train"]
        return StreamingDataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            drop_last=True,
            persistent_workers=self.num_workers > 0,
        )

    def empty_split_hint(self, split: str) -> str:
        return "prepare it again with photos in that split"


class _Indexed(torch.utils.data.Dataset):
    """A prepared split read by index (LitData reads the chunk that holds it); None: empty."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    @property
    def root(self):
        """The StreamingDataset under any wrapping."""
        return self.dataset.root if isinstance(self.dataset, _Indexed) else self.dataset

    def __len__(self) -> int:
        return 0 if self.dataset is None else len(self.dataset)

    def __getitem__(self, index: int) -> Tensor:
        if self.dataset is None:
            raise IndexError(index)
        return self.dataset[index]
