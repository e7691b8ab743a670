"""``data.cache``: every image decoded and resized once, kept as uint8 on the training device
(``gpu``) or in (pinned) host memory (``cpu``), and batches drawn there by index."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from rich.progress import track
from torch import Tensor

from colorlab.data.sampling import EpochOrder
from colorlab.errors import OptionError, check_choice

log = logging.getLogger(__name__)

CACHE_MODES = ("auto", "gpu", "cpu", "none")
#: ``auto`` caches on the GPU when the images take at most this share of its free memory
#: (the rest is the model's), else in RAM when they take at most this share of what is free.
GPU_SHARE = 0.4
RAM_SHARE = 0.5


def available_ram() -> int:
    """Bytes of memory the OS can still give (MemAvailable), or total memory where unknown."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def free_device_memory(device: torch.device) -> int:
    """Free bytes on a CUDA device (0 for any other device)."""
    if device.type != "cuda":
        return 0
    return torch.cuda.mem_get_info(device)[0]


def choose_cache(mode: str, nbytes: int, device: torch.device) -> str:
    """Where to keep ``nbytes`` of images for training on ``device``: ``gpu``, ``cpu`` or
    ``none`` (stream from worker processes), for ``data.cache=mode``."""
    check_choice("cache", mode, CACHE_MODES)
    if mode == "gpu" and device.type != "cuda":
        raise OptionError(
            "cache",
            mode,
            f"it needs a CUDA device, this run trains on {device.type}; use cpu or auto",
        )
    if mode != "auto":
        return mode
    if device.type == "cuda" and nbytes <= GPU_SHARE * free_device_memory(device):
        return "gpu"
    if nbytes <= RAM_SHARE * available_ram():
        return "cpu"
    return "none"


def cache_images(
    count: int,
    load: Callable[[Sequence[int]], Tensor],
    shape: tuple[int, ...],
    device: torch.device,
    description: str,
    chunk: int = 64,
) -> Tensor:
    """A count×shape uint8 tensor on ``device`` (pinned when it is the CPU and CUDA is in use)
    filled chunk by chunk from ``load(indices)`` (N×shape uint8, any device), with a progress bar."""
    pin = device.type == "cpu" and torch.cuda.is_available()
    images = torch.empty((count, *shape), dtype=torch.uint8, device=device, pin_memory=pin)
    starts = range(0, count, chunk)
    began = time.perf_counter()
    for start in track(starts, description=description, transient=True, total=len(starts)):
        stop = min(start + chunk, count)
        images[start:stop].copy_(load(range(start, stop)))
    log.info(
        "%s: %.2f GB on %s in %.1f s",
        description,
        images.numel() / 1e9,
        device,
        time.perf_counter() - began,
    )
    return images


@contextlib.contextmanager
def threaded_loader(
    item: Callable[[int], Tensor], workers: int
) -> Iterator[Callable[[Sequence[int]], Tensor]]:
    """``load(indices)`` for `cache_images` that decodes the items in ``workers`` threads
    (Pillow releases the GIL while decoding and resizing); the threads end with the block."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        yield lambda indices: torch.stack(list(pool.map(item, indices)))


class CachedBatches:
    """A data loader without workers over cached images: each epoch, `sampler`'s order of
    split indices cut into batches of B×3×S×S uint8 on the cache's device.

    Args:
        images: the rank's images of the split, N×3×S×S uint8, row k = ``sampler.owned()[k]``
            (on the GPU, or on the CPU, pinned for a CUDA run).
        sampler: the `EpochOrder` (Lightning calls its ``set_epoch``).
        drop_last: leave out a last, incomplete batch.
    """

    batch_sampler = None  # like a DataLoader built with a sampler (Lightning inspects both)

    def __init__(self, images: Tensor, sampler: EpochOrder, batch_size: int, drop_last: bool):
        self.images = images
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last
        owned = sampler.owned()
        rows = np.full(sampler.length, -1, np.int64)
        rows[owned] = np.arange(len(owned))
        self._rows = torch.from_numpy(rows)
        self._pin = images.device.type == "cpu" and images.is_pinned()

    def __len__(self) -> int:
        full, rest = divmod(len(self.sampler), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[Tensor]:
        rows = self._rows[torch.tensor(list(self.sampler), dtype=torch.long)]
        rows = rows.to(self.images.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = rows[start : start + self.batch_size]
            if self._pin:
                batch = torch.empty(
                    (len(index), *self.images.shape[1:]), dtype=torch.uint8, pin_memory=True
                )
                yield torch.index_select(self.images, 0, index, out=batch)
            else:
                yield self.images.index_select(0, index)
