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

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rnnlab.config import check_positive
from rnnlab.data import load_splits
from rnnlab.data.batching import BucketBatchSampler, padding_share
from rnnlab.data.encoded import EncodedSplit
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.inputs import Inputs
from rnnlab.diagnostics.result import FigureSpec, Result
from rnnlab.errors import check
from rnnlab.formatting import MISSING, count, finite, pct
from rnnlab.plotting import new_figure
from rnnlab.tables import Table

TAIL = 0.25
"""A packed step is in the tail when fewer than this share of the batch is still running."""


@dataclass(frozen=True)
class Settings:
    batch_size: int = 64
    """Texts per batch."""
    split: Literal["train", "val", "test"] = "train"
    """The split whose batches are counted (cut to the data settings' --max-len)."""

    def __post_init__(self) -> None:
        check_positive(self, "batch_size")


QUICK = Settings()


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
            [s.strategy, count(s.batches), count(s.positions), count(s.padded), pct(s.padding_share),
             count(s.serial_steps), MISSING if s.mean_batch_per_step is None else f"{s.mean_batch_per_step:.1f}"]
            for s in self.strategies
        ]  # fmt: skip
        tail = MISSING if self.packed_tail_share is None else pct(self.packed_tail_share)
        return [
            Table(
                f"Computed positions per epoch ({count(self.texts)} {self.split} texts, "
                f"{count(self.real_tokens)} tokens, batch {self.batch_size}, max_len {self.max_len})",
                ["strategy", "batches", "positions", "padding", "padding share", "serial steps",
                 "batch per step"],
                rows,
                ["packed: positions = real tokens, but the same serial steps as plain batches; "
                 f"{tail} of its steps run with fewer than a quarter of the batch"],
                [False, True, True, True, True, True, True],
                row_ids=[f"padding-{s.strategy}" for s in self.strategies],
            )
        ]  # fmt: skip

    def figures(self) -> list[FigureSpec]:
        by = {s.strategy: s for s in self.strategies}
        caption = []
        if "plain" in by and "bucketed" in by:
            caption.append(
                f"Random batches are {pct(by['plain'].padding_share)} padding; length-bucketed "
                f"batches {pct(by['bucketed'].padding_share)}."
            )
        if self.packed_tail_share is not None:
            caption.append(
                f"Packed sequences compute no padding, but in {pct(self.packed_tail_share)} of "
                "their serial steps fewer than a quarter of the batch is still running, so the "
                "hardware idles there."
            )
        return [FigureSpec("padding.png", "Padding per batching strategy", caption, self._draw)]

    def _draw(self) -> Any:
        fig, axes = new_figure(
            1, 2, f"padding waste: {self.dataset} {self.split}, batch {self.batch_size}"
        )
        ax = axes[0][0]
        names = [s.strategy for s in self.strategies]
        shares = [100 * s.padding_share for s in self.strategies]
        bars = ax.bar(names, shares, color=["tab:red", "tab:blue", "tab:green"][: len(names)])
        ax.bar_label(bars, [f"{v:.1f}%" for v in shares], fontsize=8)
        ax.set_ylabel("padded positions (%)")
        ax.set_title("share of computed positions that are padding", fontsize=10)
        ax = axes[0][1]
        ax.plot(self.step_batch_size, color="tab:green", label="mean sequences still running")
        ax.axhline(self.batch_size, color="0.6", ls="--", lw=0.8, label="batch size")
        if self.example_batch_sizes:
            ax.plot(self.example_batch_sizes, color="0.4", lw=0.8, label="first batch")
        ax.set_xlabel("time step t")
        ax.set_ylabel("packed batch size at step t")
        ax.set_title("packed: per-step batch sizes (the tail)", fontsize=10)
        ax.legend(fontsize=8)
        return fig


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
    settings: Settings | None = None,
    *,
    max_len: int | None = None,
    seed: int = 0,
    dataset: str = "",
    split_name: str = "train",
    **changes: Any,
) -> PaddingResult:
    """Padding of plain, bucketed and packed batches over one epoch of `split`.

    `max_len` is recorded only; pass a split already cut to it (as load_splits gives)."""
    s = dataclasses.replace(settings or Settings(), **changes)
    check(len(split) > 0, f"the {split_name} split is empty; use more data")
    lengths = split.lengths
    plain = BucketBatchSampler(
        lengths, s.batch_size, shuffle=True, bucket=False, seed=seed
    ).batches()
    bucketed = BucketBatchSampler(
        lengths, s.batch_size, shuffle=True, bucket=True, seed=seed
    ).batches()
    result = PaddingResult(
        dataset, split_name, s.batch_size, max_len, seed, len(split), int(lengths.sum()),
        [_strategy("plain", lengths, plain, False), _strategy("bucketed", lengths, bucketed, False),
         _strategy("packed", lengths, plain, True)],
    )  # fmt: skip
    sizes = [packed_batch_sizes(lengths[b]) for b in plain]
    width = max(len(size) for size in sizes)
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


def run(settings: Settings, inputs: Inputs) -> PaddingResult:
    """The split of the data settings (cut to their max_len), as training batches it."""
    data = inputs.config.data
    splits = load_splits(data)
    return padding_waste(
        splits.split(settings.split), settings, max_len=data.max_len, seed=inputs.seed,
        dataset=str(splits.info.get("dataset", data.dataset)), split_name=settings.split,
    )  # fmt: skip


DIAGNOSTIC = Diagnostic(
    name="padding",
    command=("diagnose", "padding"),
    help="padded share: plain vs bucketed batches vs packing",
    title="Padding waste",
    how_to_read=(
        "How much of each batch is padding under random batching and under length "
        "bucketing, and what packing costs.",
        "Padding is computation spent on nothing; bucketing texts of similar length removes "
        "most of it without the slowness of packed sequences.",
    ),
    settings=Settings,
    quick=QUICK,
    result=PaddingResult,
    run=run,
    reads="data",
    estimate=lambda settings, models: 5.0,
)
