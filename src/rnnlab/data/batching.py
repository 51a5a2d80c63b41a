"""Length-bucketed batch sampling and padding collate (no tokenization here, ever)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from rnnlab.data.encoded import EncodedSplit

POOL_BATCHES = 50
"""Bucketing sorts pools of this many batches by length, so batches stay random but tight."""


@dataclass
class Batch:
    tokens: torch.Tensor  # (B, T) int64 ids, or (B, T, F) float32 for continuous inputs
    lengths: torch.Tensor  # (B,) int64, always on CPU
    labels: torch.Tensor  # (B,) int64 class ids, or float32 targets
    indices: torch.Tensor  # (B,) int64 positions in the split

    def to(self, device: torch.device | str) -> Batch:
        """Move tokens and labels; lengths stay on the CPU (pack_padded_sequence wants that)."""
        return Batch(
            self.tokens.to(device, non_blocking=True),
            self.lengths,
            self.labels.to(device, non_blocking=True),
            self.indices,
        )

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum())


class BucketBatchSampler:
    """Yields arrays of example indices; every example exactly once per epoch.

    bucket=True: shuffle, cut into pools of POOL_BATCHES batches, sort each pool by length,
    cut into batches and shuffle the batch order. bucket=False: plain shuffled batches.
    Deterministic for (seed, epoch).
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        bucket: bool = True,
        seed: int = 0,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive (got {batch_size})")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.bucket = bucket
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def batches(self) -> list[np.ndarray]:
        n, size = len(self.lengths), self.batch_size
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if not self.bucket:
            return [order[i : i + size] for i in range(0, n, size)]
        pool = size * POOL_BATCHES
        batches: list[np.ndarray] = []
        for start in range(0, n, pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.batches())


def collate(split: EncodedSplit, indices: np.ndarray) -> Batch:
    """Pad the examples at `indices` into one Batch (padding id 0 after the real tokens)."""
    indices = np.asarray(indices, dtype=np.int64)
    lengths = split.lengths[indices]
    labels = torch.from_numpy(np.ascontiguousarray(split.labels[indices]))
    if split.features is not None:
        tokens = torch.from_numpy(np.ascontiguousarray(split.features[indices]))  # (B, T, F)
    else:
        width = max(int(lengths.max()) if len(lengths) else 0, 1)
        padded = np.zeros((len(indices), width), dtype=np.int64)  # (B, T)
        for row, (i, length) in enumerate(zip(indices, lengths, strict=True)):
            start = split.offsets[i]
            padded[row, :length] = split.ids[start : start + length]
        tokens = torch.from_numpy(padded)
    return Batch(
        tokens, torch.from_numpy(lengths.astype(np.int64)), labels, torch.from_numpy(indices)
    )


def iterate_batches(
    split: EncodedSplit,
    batch_size: int,
    *,
    shuffle: bool = True,
    bucket: bool = True,
    seed: int = 0,
    epoch: int = 0,
) -> Iterator[Batch]:
    """Batches over a split; for evaluation pass shuffle=False (bucketing still applies)."""
    sampler = BucketBatchSampler(
        split.lengths, batch_size, shuffle=shuffle, bucket=bucket, seed=seed
    )
    sampler.set_epoch(epoch)
    for indices in sampler:
        yield collate(split, indices)


def padding_share(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Share of padded positions over all batches: 1 - real tokens / (B * T_max) summed."""
    real = total = 0
    for indices in batches:
        batch_lengths = lengths[indices]
        real += int(batch_lengths.sum())
        total += int(batch_lengths.max()) * len(indices)
    return 1.0 - real / total if total else 0.0
