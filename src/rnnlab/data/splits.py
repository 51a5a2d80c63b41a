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
    labels: np.ndarray, fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    """Split indices so every part gets ~its fraction of every class; the remainder goes first.

    `fractions` are the held-out parts (e.g. (0.1, 0.1) -> [train, val, test]). Each part's
    indices are sorted; the result depends only on (labels, fractions, seed).
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        sizes = [round(len(members) * f) for f in fractions]
        rest = len(members) - sum(sizes)
        for part, size in zip(parts, [rest, *sizes], strict=True):
            part.append(members[start : start + size])
            start += size
    return [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]


def stratified_subsample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """At most `size` indices, every class in proportion (sorted)."""
    if size >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    _, taken = stratified_split(labels, (size / len(labels),), seed)
    return taken
