"""Dataset summary: sizes, labels, token-length statistics and the `<unk>` share per split."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rnnlab.config import DataConfig
from rnnlab.data.encoded import SPLITS, EncodedSplits
from rnnlab.data.pipeline import load_full_splits, resolve_tokenizer
from rnnlab.data.vocab import UNK_ID


@dataclass
class SplitSummary:
    examples: int
    label_counts: dict[str, int]
    mean_tokens: float
    median_tokens: float
    p95_tokens: float
    max_tokens: int
    unk_share: float
    """Share of tokens that became `<unk>` (0 for subword tokenizers that never emit it)."""
    truncated: int
    """Texts longer than max_len (cut when batches are built)."""


@dataclass
class DatasetSummary:
    dataset: str
    source: str
    label_names: list[str]
    vocab_size: int
    tokenizer: str
    max_len: int | None
    truncate: str
    """Which part of a long text is kept: head or tail."""
    duplicates_dropped: int
    empty_texts: dict[str, int]
    splits: dict[str, SplitSummary]
    length_histogram: dict[str, list[float]]
    """Training-split token lengths: `edges` and `counts`, for the report."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(cfg: DataConfig) -> DatasetSummary:
    """Statistics of whole texts (before truncation), read from the encoded cache when it can."""
    cfg = resolve_tokenizer(cfg)  # the summary names the rule used, not `auto`
    return summarize_splits(load_full_splits(cfg), cfg)


def summarize_splits(full: EncodedSplits, cfg: DataConfig) -> DatasetSummary:
    splits: dict[str, SplitSummary] = {}
    for name in SPLITS:
        split = full.split(name)
        lengths = split.lengths
        counts = np.bincount(split.labels.astype(np.int64), minlength=len(full.label_names))
        has = len(lengths) > 0
        unk_share = (
            float(np.mean(split.ids == UNK_ID))
            if len(split.ids) and full.encoder.vocab is not None
            else 0.0
        )
        splits[name] = SplitSummary(
            examples=len(split),
            label_counts={full.label_names[i]: int(c) for i, c in enumerate(counts)},
            mean_tokens=float(lengths.mean()) if has else 0.0,
            median_tokens=float(np.median(lengths)) if has else 0.0,
            p95_tokens=float(np.percentile(lengths, 95)) if has else 0.0,
            max_tokens=int(lengths.max()) if has else 0,
            unk_share=unk_share,
            truncated=int((lengths > cfg.max_len).sum()) if cfg.max_len else 0,
        )
    train_lengths = full.train.lengths
    histogram: dict[str, list[float]] = {"edges": [], "counts": []}
    if len(train_lengths):
        counts, edges = np.histogram(train_lengths, bins=40)
        histogram = {"edges": edges.tolist(), "counts": counts.astype(float).tolist()}
    return DatasetSummary(
        dataset=str(full.info.get("dataset", cfg.dataset)),
        source=str(full.info.get("source", cfg.source)),
        label_names=list(full.label_names),
        vocab_size=full.vocab_size,
        tokenizer=cfg.tokenizer,
        max_len=cfg.max_len,
        truncate=cfg.truncate,
        duplicates_dropped=int(full.info.get("duplicates_dropped", 0)),
        empty_texts={n: int((full.split(n).lengths == 0).sum()) for n in SPLITS},
        splits=splits,
        length_histogram=histogram,
    )
