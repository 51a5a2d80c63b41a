"""Padding waste: how many of the positions a recurrent layer computes are padding.

For one split (texts cut to max_len, as training sees them), batch size and seed:

- `plain`: shuffled batches padded to their longest text; positions = sum of B * T_max;
- `bucketed`: length-bucketed batches (rnnlab.data.batching.BucketBatchSampler), padded;
- `packed`: the plain batches as PackedSequences. A packed run processes exactly
  sum(lengths) positions, so its padding share is 0 by construction, but it still walks
  T_max serial steps per batch, and towards the end of each batch only a few sequences remain:
  `batch_sizes[t]` (sequences still running at step t) is what the kernel gets at step t.

result.json (`"kind": "padding"`):
  dataset, split, batch_size, max_len, seed, texts, real_tokens,
  strategies: one object per strategy (plain, bucketed, packed) with strategy, batches,
    positions (computed positions), padded (positions - real tokens), padding_share,
    serial_steps (sum over batches of T_max), mean_batch_per_step (positions / serial_steps),
  packed_tail_share: share of the packed serial steps at which fewer than a quarter of the
    batch's sequences are still running,
  step_batch_size: mean over the plain batches of batch_sizes[t] at step t, for t = 0 ..
    max T_max - 1 (only over batches that reach step t), and step_batches: how many batches
    reach step t,
  example_batch_sizes: batch_sizes of the first plain batch (its PackedSequence.batch_sizes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnlab.data.batching import BucketBatchSampler, padding_share
from rnnlab.data.encoded import EncodedSplit
from rnnlab.diagnostics.common import Result, Table, finite
from rnnlab.errors import check

TAIL = 0.25
"""A packed step is in the tail when fewer than this share of the batch is still running."""


@dataclass
class Strategy:
    strategy: str
    batches: int
    positions: int
    padded: int
    padding_share: float
    serial_steps: int
    mean_batch_per_step: float | None


@dataclass
class PaddingResult(Result):
    kind = "padding"

    dataset: str
    split: str
    batch_size: int
    max_len: int | None
    seed: int
    texts: int
    real_tokens: int
    strategies: list[Strategy] = field(default_factory=list)
    packed_tail_share: float | None = None
    step_batch_size: list[float] = field(default_factory=list)
    step_batches: list[int] = field(default_factory=list)
    example_batch_sizes: list[int] = field(default_factory=list)

    def tables(self) -> list[Table]:
        rows = [
            [s.strategy, f"{s.positions:,}", f"{s.padded:,}", f"{s.padding_share:.1%}",
             f"{s.serial_steps:,}", "-" if s.mean_batch_per_step is None else f"{s.mean_batch_per_step:.1f}"]
            for s in self.strategies
        ]  # fmt: skip
        title = (
            f"padding on {self.dataset} {self.split} ({self.texts:,} texts, "
            f"{self.real_tokens:,} tokens, batch {self.batch_size}, max_len {self.max_len})"
        )
        columns = ["strategy", "positions", "padding", "share", "serial steps", "batch per step"]
        tail = "-" if self.packed_tail_share is None else f"{self.packed_tail_share:.1%}"
        notes = [
            "packed: positions = real tokens, but the same serial steps as plain batches; "
            f"{tail} of its steps run with fewer than a quarter of the batch"
        ]
        return [Table(title, columns, rows, notes)]

    def figures(self, folder: Path) -> list[Path]:
        from rnnlab.diagnostics import plots

        return plots.plot_padding(self, folder)


def _strategy(name: str, lengths: np.ndarray, batches: list[np.ndarray], packed: bool) -> Strategy:
    real = int(lengths.sum())
    serial = int(sum(int(lengths[b].max()) for b in batches if len(b)))
    positions = (
        real if packed else int(sum(int(lengths[b].max()) * len(b) for b in batches if len(b)))
    )
    share = 0.0 if packed else padding_share(lengths, batches)
    per_step = finite(positions / serial) if serial else None
    return Strategy(name, len(batches), positions, positions - real, share, serial, per_step)


def packed_batch_sizes(batch_lengths: np.ndarray) -> np.ndarray:
    """PackedSequence.batch_sizes for one batch: sequences still running at each step."""
    steps = int(batch_lengths.max()) if len(batch_lengths) else 0
    return (batch_lengths[None, :] > np.arange(steps)[:, None]).sum(axis=1)  # (T_max,)


def padding_waste(
    split: EncodedSplit,
    *,
    batch_size: int = 64,
    max_len: int | None = None,
    seed: int = 0,
    dataset: str = "",
    split_name: str = "train",
) -> PaddingResult:
    """Padding of plain, bucketed and packed batches over one epoch of `split`.

    `max_len` is recorded only; pass a split already cut to it (as load_splits gives)."""
    check(batch_size > 0, f"batch_size must be positive (got {batch_size}); e.g. --batch-size 64")
    check(len(split) > 0, f"the {split_name} split is empty; use more data")
    lengths = split.lengths
    plain = BucketBatchSampler(lengths, batch_size, shuffle=True, bucket=False, seed=seed).batches()
    bucketed = BucketBatchSampler(
        lengths, batch_size, shuffle=True, bucket=True, seed=seed
    ).batches()
    result = PaddingResult(
        dataset, split_name, batch_size, max_len, seed, len(split), int(lengths.sum()),
        [_strategy("plain", lengths, plain, False), _strategy("bucketed", lengths, bucketed, False),
         _strategy("packed", lengths, plain, True)],
    )  # fmt: skip
    sizes = [packed_batch_sizes(lengths[b]) for b in plain]
    width = max(len(s) for s in sizes)
    total = np.zeros(width)
    reach = np.zeros(width, dtype=np.int64)
    tail = steps = 0
    for batch, per_step in zip(plain, sizes, strict=True):
        total[: len(per_step)] += per_step
        reach[: len(per_step)] += 1
        tail += int((per_step < TAIL * len(batch)).sum())
        steps += len(per_step)
    result.step_batch_size = (total / np.maximum(reach, 1)).tolist()
    result.step_batches = reach.tolist()
    result.packed_tail_share = finite(tail / steps) if steps else None
    result.example_batch_sizes = sizes[0].tolist()
    return result
