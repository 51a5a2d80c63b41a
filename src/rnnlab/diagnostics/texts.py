"""Picking the texts a diagnostic reads: long enough ones, a few per class, as padded batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnnlab.data.batching import Batch, collate
from rnnlab.data.encoded import EncodedSplit
from rnnlab.errors import RnnlabError


def long_texts(
    split: EncodedSplit,
    min_len: int,
    count: int,
    *,
    seed: int = 0,
    what: str = "the split",
    option: str = "--seq-len",
) -> np.ndarray:
    """Up to `count` row indices (sorted) of texts with at least `min_len` tokens, chosen with
    `seed`. None long enough is a user error that says how many are and suggests a length."""
    lengths = split.lengths
    eligible = np.flatnonzero(lengths >= min_len)
    if len(eligible) == 0:
        ordered = np.sort(lengths)[::-1]
        longest = int(ordered[0]) if len(ordered) else 0
        suggest = int(ordered[min(count, len(ordered)) - 1]) if len(ordered) else 0
        raise RnnlabError(
            f"{what} has no text with at least {min_len} tokens (longest: {longest}); "
            f"use a smaller {option}, e.g. {option} {max(suggest, 1)} "
            f"({min(count, len(ordered))} texts are that long)"
        )
    rng = np.random.default_rng(seed)
    chosen = rng.choice(eligible, size=min(count, len(eligible)), replace=False)
    return np.sort(chosen)


def pick_per_class(
    labels: np.ndarray,
    lengths: np.ndarray,
    label_names: Sequence[str],
    *,
    per_class: int,
    min_len: int,
    seed: int,
    what: str,
) -> np.ndarray:
    """`per_class` rows of every class among texts of at least `min_len` tokens (sorted by
    class, then row). Too few in a class is a user error with the numbers to fix it."""
    rng = np.random.default_rng(seed)
    chosen = []
    for cls, name in enumerate(label_names):
        in_class = labels == cls
        eligible = np.flatnonzero(in_class & (lengths >= min_len))
        if len(eligible) < per_class:
            ordered = np.sort(lengths[in_class])[::-1]
            suggest = int(ordered[per_class - 1]) if len(ordered) >= per_class else 0
            hint = f"--min-len {suggest}" if suggest > 0 else "--per-class with a smaller count"
            raise RnnlabError(
                f"{what} has only {len(eligible)} {name} texts with at least {min_len} tokens "
                f"(need {per_class}); lower the length, e.g. {hint}"
            )
        chosen.append(np.sort(rng.choice(eligible, size=per_class, replace=False)))
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def make_batch(split: EncodedSplit, rows: np.ndarray, max_len: int | None = None) -> Batch:
    """Padded batch of `rows`, each cut to its first `max_len` steps."""
    part = split.select(rows, max_len=max_len)
    batch = collate(part, np.arange(len(part)))
    if part.features is not None and max_len is not None:  # continuous inputs: cut here
        tokens = batch.tokens[:, :max_len]  # (B, T, F)
        return Batch(tokens, batch.lengths.clamp(max=max_len), batch.labels, batch.indices)
    return batch
