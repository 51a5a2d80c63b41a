"""Length-bucketed batch sampling and padding collate (no tokenization here, ever).

Two ways to make the same batches: `collate` pads on the host (the CPU path), and a
`DeviceSplit` holds a split on an accelerator, moved there once, and gathers each batch there
by index (no host collate, no per-batch copy). `on_device` picks one for a device.
"""

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
    weight: float = 1.0
    """Data-parallel training: the factor on this batch's mean loss that makes DDP's average over
    the ranks the mean over the whole global batch (world size x this slice / global batch);
    1 in one process."""
    stand_in: bool = False
    """Data-parallel training: this rank has no share of the step's global batch (it is smaller
    than the world), so it computes one of its examples with weight 0 to take the step too."""

    def to(self, device: torch.device | str) -> Batch:
        """Move tokens and labels; lengths stay on the CPU (pack_padded_sequence wants that).

        To a CUDA device the host tensors go through pinned memory, so the copy is truly
        asynchronous (from pageable memory it is not); tensors already there are not copied.
        """
        device = torch.device(device)
        return Batch(
            move(self.tokens, device), self.lengths, move(self.labels, device), self.indices,
            self.weight, self.stand_in,
        )  # fmt: skip

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


@dataclass(frozen=True)
class Shard:
    """One rank's share of the batches of data-parallel training (rnnlab.training.distributed).

    Every rank builds the same batches (a function of seed and epoch, at the global batch size)
    and takes its share. Training (`whole_batches=False`): the `rank`-th of `size` near-equal
    slices of every batch (np.array_split; a bucketed batch is sorted by length, so a slice is
    too), so every rank takes one step per global batch and the ranks together hold exactly the
    batches of one process. A batch smaller than the world leaves some slices empty: those
    ranks compute its first example as a stand-in, with weight 0. Evaluation
    (`whole_batches=True`): every `size`-th batch, whole, from the `rank`-th, so each batch is
    computed exactly as one process computes it.
    """

    rank: int
    size: int
    whole_batches: bool = False

    def take(self, batches: list[np.ndarray]) -> list[tuple[np.ndarray, float, bool]]:
        """(indices, loss weight, stand-in) for each batch this rank computes."""
        if self.whole_batches:
            return [(b, 1.0, False) for b in batches[self.rank :: self.size]]
        out = []
        for batch in batches:
            part = np.array_split(batch, self.size)[self.rank]
            if len(part):
                out.append((part, self.size * len(part) / len(batch), False))
            else:
                out.append((batch[:1], 0.0, True))
        return out


def move(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor` on `device`; to an accelerator without blocking the host: a CPU tensor bound for
    CUDA is pinned first (PyTorch's caching host allocator keeps the pinned block until the
    copy is done). A copy back to the CPU blocks (its values are read next); a tensor already
    on `device` comes back as it is."""
    if device.type == "cuda" and tensor.device.type == "cpu":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=device.type != "cpu")


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


def _same_device(a: torch.device, b: torch.device) -> bool:
    """cuda and cuda:0 are the same device when 0 is the current one (index None: current)."""
    if a.type != b.type:
        return False
    if a.type == "cuda" and (a.index is None or b.index is None):
        current = torch.cuda.current_device()
        return (a.index if a.index is not None else current) == (
            b.index if b.index is not None else current
        )
    return a.index == b.index or a.type == "cpu"


class DeviceSplit:
    """An encoded split moved to `device` once; batches are then gathered there by index.

    On the device: the flat ids (int64, one trailing 0 that every padding position reads),
    each example's start and length, the labels (or the dense features). A batch is a few
    device ops (index_select of starts, lengths and labels, a broadcast add and compare, a
    where, an index_select of the ids), with no host collate and no host-to-device copy of
    tokens. The sampler's order of an epoch crosses once, as one pinned copy. The batch's
    `lengths` come from the host copy of the split (pack_padded_sequence wants them on the
    CPU, and reading them needs no sync), its `indices` too. The batches equal `collate`'s,
    value for value and dtype for dtype.
    """

    def __init__(self, split: EncodedSplit, device: torch.device | str) -> None:
        self.split = split
        self.host_lengths = split.lengths  # (N,) int64, computed once
        target = torch.device(device)
        self.labels = torch.from_numpy(np.ascontiguousarray(split.labels)).to(target)  # (N,)
        self.device = self.labels.device  # with its index (cuda:0)
        self.features: torch.Tensor | None = None
        if split.features is not None:
            self.features = torch.from_numpy(np.ascontiguousarray(split.features)).to(target)
            return
        lengths = self.host_lengths
        self.pad_position = len(split.ids)  # the trailing 0
        ids = np.zeros(len(split.ids) + 1, dtype=np.int64)
        ids[:-1] = split.ids
        self.ids = torch.from_numpy(ids).to(target)  # (total_tokens + 1,)
        self.starts = torch.from_numpy(split.offsets[:-1].astype(np.int64)).to(target)  # (N,)
        self.lengths = torch.from_numpy(lengths.astype(np.int64)).to(target)  # (N,)
        longest = int(lengths.max()) if len(lengths) else 0
        self.steps = torch.arange(max(longest, 1), device=target)  # (T_max,)

    def __len__(self) -> int:
        return len(self.split)

    def order_on_device(self, batches: list[np.ndarray]) -> torch.Tensor:
        """The concatenated example order of `batches`, copied to the device in one go."""
        order = np.concatenate(batches) if batches else np.zeros(0, np.int64)
        return move(torch.from_numpy(order.astype(np.int64, copy=False)), self.device)

    def gather(self, indices: np.ndarray, on_device: torch.Tensor | None = None) -> Batch:
        """The Batch of the examples at `indices` (`on_device`: the same indices, already on
        the device; else they are copied there)."""
        host = np.asarray(indices, dtype=np.int64)
        rows = on_device if on_device is not None else move(torch.from_numpy(host), self.device)
        lengths = self.host_lengths[host]  # (B,) host values: the width needs no sync
        labels = self.labels.index_select(0, rows)  # (B,)
        if self.features is not None:
            tokens = self.features.index_select(0, rows)  # (B, T, F)
        else:
            width = max(int(lengths.max()) if len(lengths) else 0, 1)
            steps = self.steps[:width]  # (W,)
            positions = self.starts.index_select(0, rows)[:, None] + steps  # (B, W)
            real = steps < self.lengths.index_select(0, rows)[:, None]  # (B, W)
            where = torch.where(real, positions, self.pad_position)  # (B, W) flat positions
            tokens = self.ids.index_select(0, where.view(-1)).view(where.shape)  # (B, W)
        return Batch(
            tokens, torch.from_numpy(lengths.astype(np.int64)), labels, torch.from_numpy(host)
        )

    def batches(self, batches: list[np.ndarray]) -> Iterator[Batch]:
        """One Batch per index array, gathered on the device."""
        order, start = self.order_on_device(batches), 0
        for indices in batches:
            yield self.gather(indices, order[start : start + len(indices)])
            start += len(indices)


AnySplit = EncodedSplit | DeviceSplit


def host_split(split: AnySplit) -> EncodedSplit:
    """The host copy of a split (its labels and lengths as numpy arrays)."""
    return split.split if isinstance(split, DeviceSplit) else split


HOST_COLLATE = ("cpu", "mps")
"""Device types whose batches are collated on the host: the CPU (the host collate is no slower
there: docs/BENCHMARKS.md, "GPU") and MPS (the device-resident gather was not tried on one)."""


def on_device(split: AnySplit, device: torch.device | str) -> AnySplit:
    """What to batch from for a model on `device`: on the CPU the split itself (batches are
    collated on the host); on CUDA the split moved there once (a DeviceSplit; one already on
    that device is returned as it is)."""
    device = torch.device(device)
    if isinstance(split, DeviceSplit):
        if _same_device(split.device, device):
            return split
        split = split.split
    return split if device.type in HOST_COLLATE else DeviceSplit(split, device)


def iterate_batches(
    split: AnySplit,
    batch_size: int,
    *,
    shuffle: bool = True,
    bucket: bool = True,
    seed: int = 0,
    epoch: int = 0,
    shard: Shard | None = None,
) -> Iterator[Batch]:
    """Batches over a split; for evaluation pass shuffle=False (bucketing still applies).

    A DeviceSplit gives the same batches (same examples, order and values), gathered on its
    device; an EncodedSplit, batches collated on the host. `shard`: only this rank's share of
    each batch (data-parallel training), with its loss weight.
    """
    host = host_split(split)
    sampler = BucketBatchSampler(
        host.lengths, batch_size, shuffle=shuffle, bucket=bucket, seed=seed
    )
    sampler.set_epoch(epoch)
    if shard is not None:
        yield from _sharded(split, shard.take(sampler.batches()))
        return
    if isinstance(split, DeviceSplit):
        yield from split.batches(sampler.batches())
        return
    for indices in sampler:
        yield collate(host, indices)


def _sharded(split: AnySplit, shares: list[tuple[np.ndarray, float, bool]]) -> Iterator[Batch]:
    batches = (
        split.batches([indices for indices, _, _ in shares])
        if isinstance(split, DeviceSplit)
        else (collate(split, indices) for indices, _, _ in shares)
    )
    for batch, (_, weight, stand_in) in zip(batches, shares, strict=True):
        batch.weight, batch.stand_in = weight, stand_in
        yield batch


def padding_share(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Share of padded positions over all batches: 1 - real tokens / (B * T_max) summed."""
    real = total = 0
    for indices in batches:
        batch_lengths = lengths[indices]
        real += int(batch_lengths.sum())
        total += int(batch_lengths.max()) * len(indices)
    return 1.0 - real / total if total else 0.0
