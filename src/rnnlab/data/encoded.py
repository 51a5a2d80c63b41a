"""Encoded splits: token ids of every text in one flat array plus offsets (or dense features)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rnnlab.errors import RnnlabError

Task = Literal["classification", "regression"]
SPLITS = ("train", "val", "test")
"""The splits of a dataset, in order."""


@dataclass
class EncodedSplit:
    """One split. Text i is `ids[offsets[i]:offsets[i + 1]]`; label i is `labels[i]`.

    Continuous-input tasks (synthetic) carry `features (N, T, F) float32` instead of ids;
    their offsets still give every example's length.
    """

    ids: np.ndarray  # (total_tokens,) int32
    offsets: np.ndarray  # (N + 1,) int64
    labels: np.ndarray  # (N,) int64 class ids, or float32 regression targets
    features: np.ndarray | None = None  # (N, T, F) float32 for continuous inputs

    def __post_init__(self) -> None:
        assert self.offsets.ndim == 1 and len(self.offsets) == len(self.labels) + 1
        assert self.features is None or len(self.features) == len(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:  # (N,) int64
        return np.diff(self.offsets)

    def token_ids(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def subset(self, indices: np.ndarray) -> EncodedSplit:
        """A new split holding the examples at `indices`, in that order."""
        return self.select(indices)

    def select(
        self,
        rows: np.ndarray | None = None,
        *,
        max_len: int | None = None,
        tail: bool = False,
        unk_for_empty: bool = False,
        unk_id: int = 1,
    ) -> EncodedSplit:
        """Vectorised gather: pick `rows`, keep at most `max_len` ids of each (head, or tail),
        and give an empty text one `unk_id` token if `unk_for_empty`."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        features = None if self.features is None else self.features[rows]
        if self.features is not None:  # continuous inputs: fixed length, nothing to cut
            offsets = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            return EncodedSplit(self.ids[:0], offsets, self.labels[rows], features)
        kept = np.minimum(lengths, max_len) if max_len is not None else lengths
        src_start = self.offsets[:-1][rows] + (lengths - kept if tail else 0)
        out_len = np.where((kept == 0) & unk_for_empty, 1, kept)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(out_len, out=offsets[1:])
        positions = (
            np.arange(offsets[-1])
            - np.repeat(offsets[:-1], out_len)
            + np.repeat(src_start, out_len)
        )
        ids = (
            self.ids[np.clip(positions, 0, max(len(self.ids) - 1, 0))]
            if len(self.ids)
            else np.zeros(offsets[-1], dtype=np.int32)
        )
        ids = ids.astype(np.int32, copy=True)
        ids[offsets[:-1][(kept == 0) & (out_len == 1)]] = unk_id
        return EncodedSplit(ids, offsets, self.labels[rows], None)

    @classmethod
    def from_sequences(
        cls, sequences: list[list[int]] | list[np.ndarray], labels: np.ndarray
    ) -> EncodedSplit:
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = (
            np.concatenate([np.asarray(s, dtype=np.int32) for s in sequences])
            if len(sequences)
            else np.zeros(0, np.int32)
        )
        return cls(ids.astype(np.int32, copy=False), offsets, np.asarray(labels))


@dataclass
class EncodedSplits:
    """Train/val/test splits plus everything needed to encode new text the same way."""

    train: EncodedSplit
    val: EncodedSplit
    test: EncodedSplit
    label_names: list[str]
    """Class names in id order; empty for regression."""
    vocab_size: int
    """Rows of the embedding table (0 for continuous-input tasks)."""
    encoder: Any = None
    """The TextEncoder (normalizer + tokenizer + vocab) used; None for synthetic tasks."""
    task: Task = "classification"
    input_dim: int | None = None
    """Features per step for continuous-input tasks (no embedding); None for token ids."""
    info: dict[str, Any] = field(default_factory=dict)
    """Dataset facts: name, source, duplicates dropped, empty texts, cache key."""

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def split(self, name: str) -> EncodedSplit:
        if name not in SPLITS:
            raise RnnlabError(f"unknown split {name!r}; use train, val or test")
        return getattr(self, name)
