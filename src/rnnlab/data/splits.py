"""Deterministic stratified splits and de-duplication."""

from __future__ import annotations

import numpy as np


def drop_duplicates(texts: list[str], labels: np.ndarray) -> tuple[list[str], np.ndarray, int]:
    """Keep the first of every exact duplicate text, so no text can sit in two splits."""
    seen: set[str] = set()
    keep: list[int] = []
    for i, text in enumerate(texts):
        if text not in seen:
            seen.add(text)
            keep.append(i)
    return [texts[i] for i in keep], labels[keep], len(texts) - len(keep)


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, ...], seed: int, *, min_size: int = 0
) -> list[np.ndarray]:
    """Split indices so every part gets ~its fraction of every class; the remainder goes first.

    `fractions` are the held-out parts (e.g. (0.1, 0.1) -> [train, val, test]). With
    `min_size`, the first part keeps at least one example of every class, and a held-out part
    that rounding leaves with fewer than `min_size` examples takes them from the first part's
    largest class (if it keeps one) or else from a held-out part with more than `min_size`: a
    small dataset still trains on every class and gets a validation and a test example. Each
    part's indices are sorted; the result depends only on (labels, fractions, seed, min_size).
    """
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    # chunks[p][c]: the members of class c in part p
    chunks: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for label in classes:
        members = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        sizes = [round(len(members) * f) for f in fractions]
        while min_size and sum(sizes) >= len(members) > 0:  # the first part keeps one
            sizes[int(np.argmax(sizes))] -= 1
        rest = len(members) - sum(sizes)
        for part, size in zip(chunks, [rest, *sizes], strict=True):
            part.append(members[start : start + size])
            start += size
    for part in chunks[1:]:
        while sum(len(c) for c in part) < min_size:
            donor = _donor(chunks, part, min_size)
            if donor is None:
                break  # too small: the caller says so
            source, label = donor
            part[label] = np.append(part[label], source[label][-1])
            source[label] = source[label][:-1]
    return [
        np.sort(np.concatenate(part)).astype(np.int64) if part else np.empty(0, np.int64)
        for part in chunks
    ]


def _donor(
    chunks: list[list[np.ndarray]], short: list[np.ndarray], min_size: int
) -> tuple[list[np.ndarray], int] | None:
    """Where a short part takes an example from: the first part's largest class if it keeps one
    of it, else the largest class of another held-out part that has more than `min_size`."""
    first = chunks[0]
    if first:
        label = int(np.argmax([len(c) for c in first]))
        if len(first[label]) >= 2:
            return first, label
    for other in chunks[1:]:
        if other is not short and sum(len(c) for c in other) > min_size:
            return other, int(np.argmax([len(c) for c in other]))
    return None


def stratified_subsample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """At most `size` indices, every class in proportion (sorted)."""
    if size >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    _, taken = stratified_split(labels, (size / len(labels),), seed)
    return taken
