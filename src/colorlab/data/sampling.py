"""Which images each process visits in each epoch, the same for every way of loading them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class EpochOrder(Sampler[int]):
    """The indices of a split of ``length`` items that one rank visits in one epoch.

    Rank ``r`` of ``world_size`` owns the fixed shard ``r, r + world_size, …`` (training
    pads it by wrapping around, so that every rank runs as many batches as the others);
    with ``shuffle`` the shard is visited in a new order each epoch, drawn from
    (seed, epoch, rank). Lightning calls `set_epoch` before each epoch.
    """

    def __init__(
        self,
        length: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pad: bool | None = None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.length = length
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.pad = shuffle if pad is None else pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def owned(self) -> np.ndarray:
        """The distinct indices this rank visits, ascending (what it needs cached; the
        padding can reach indices of another rank)."""
        return np.unique(self.shard())

    def shard(self) -> np.ndarray:
        """This rank's indices in ascending order (with the wrapped-around padding)."""
        indices = np.arange(self.length)
        if self.pad and self.length % self.world_size:
            missing = self.world_size - self.length % self.world_size
            indices = np.concatenate([indices, np.resize(indices, missing)])
        return indices[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        shard = self.shard()
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, self.rank])
            shard = shard[rng.permutation(len(shard))]
        return iter(shard.tolist())

    def __len__(self) -> int:
        return len(self.shard())
