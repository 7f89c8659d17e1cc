"""Batches of ragged sequences for training: length-bucketed batches with padding masks.

``BucketBatchSampler`` sorts sequences of similar length into the same batch (little padding),
shuffles the batches deterministically from (seed, epoch), and splits every global batch across
DDP ranks, so that N processes see exactly the batches one process would see, each a 1/N share
(the loss curve of DDP matches a single process). Padding is slp_cli.tensors.pad.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch


@dataclass
class SequenceDataset(torch.utils.data.Dataset):
    """Items (whatever a model's collate understands) and their lengths (for bucketing)."""

    items: list[Any]
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


class BucketBatchSampler(torch.utils.data.Sampler):
    """Global batches of similar-length sequences, shuffled per epoch, split across ranks.

    ``batch_size`` is the global batch size (all ranks together) and must divide by the number of
    ranks. ``start_batch`` skips the first batches of the first epoch iterated (resume).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = True, rank: int = 0, world_size: int = 1, bucket_factor: int = 50):
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} must be divisible by the number of processes {world_size}")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.bucket = batch_size * bucket_factor
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def global_batches(self, epoch: int) -> list[np.ndarray]:
        n = len(self.lengths)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(n)
            # sort within large random buckets: similar lengths together, still random overall
            chunks = [order[i:i + self.bucket] for i in range(0, n, self.bucket)]
            order = np.concatenate([c[np.argsort(self.lengths[c], kind="stable")] for c in chunks])
        else:
            order = np.argsort(self.lengths, kind="stable")
        batches = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        if batches and len(batches[-1]) < self.batch_size and self.drop_last:
            batches.pop()
        if self.shuffle:
            batches = [batches[i] for i in np.random.default_rng([self.seed, epoch, 1]).permutation(len(batches))]
        return batches

    def __len__(self) -> int:
        n = len(self.lengths) // self.batch_size if self.drop_last else -(-len(self.lengths) // self.batch_size)
        return max(n - self.start_batch, 0)

    def __iter__(self):
        for batch in self.global_batches(self.epoch)[self.start_batch:]:
            # each rank takes an interleaved share; an uneven last batch (no drop_last) is shared
            # as evenly as it goes (a rank whose share is empty skips it)
            share = batch[self.rank::self.world_size]
            if len(share):
                yield share.tolist()

