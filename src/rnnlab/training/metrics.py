"""Metrics as pure functions `f(y_true, y_pred, ...)` on numpy arrays (scikit-learn style).

Conventions: a ratio whose denominator is zero is 0.0 (scikit-learn's `zero_division=0`);
macro averages run over the classes that occur in `y_true` or `y_pred`, so perfect predictions
score 1.0 even when some class is absent from a small sample. The statistics of results
(intervals, paired tests, mean ± std over seeds) live in `rnnlab.stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnlab.stats import label_arrays

LENGTH_EDGES: tuple[int, ...] = (0, 50, 100, 200, 400)
"""Default length buckets: [0, 50), [50, 100), [100, 200), [200, 400), [400, inf)."""


def length_edges(max_len: int | None) -> tuple[int, ...]:
    """Bucket edges that fit a truncation length: 1/8, 1/4, 1/2 of max_len, then max_len itself
    (the last bucket then holds the truncated texts); LENGTH_EDGES for long or no truncation."""
    if max_len is None or max_len >= LENGTH_EDGES[-1]:
        return LENGTH_EDGES
    return tuple(sorted({0, *(max(1, max_len // d) for d in (8, 4, 2)), max_len}))


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Share of exact matches; 0.0 for no examples."""
    true, pred = label_arrays(y_true, y_pred)
    return float(np.mean(true == pred)) if len(true) else 0.0


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """(C, C) int64 counts; row = true class, column = predicted class."""
    true, pred = label_arrays(y_true, y_pred)
    if num_classes is None:
        num_classes = int(max(true.max(initial=-1), pred.max(initial=-1))) + 1
    if len(true) and (
        min(true.min(), pred.min()) < 0 or max(true.max(), pred.max()) >= num_classes
    ):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    flat = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def precision_recall_f1(
    y_true: Any, y_pred: Any, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class (precision, recall, f1, support), each (C,); 0.0 where undefined."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return precision, recall, f1, support.astype(np.int64)


def macro_f1(y_true: Any, y_pred: Any, num_classes: int | None = None) -> float:
    """Unweighted mean F1 over the classes present in y_true or y_pred; 0.0 for no examples."""
    true, pred = label_arrays(y_true, y_pred)
    if not len(true):
        return 0.0
    _, _, f1, _ = precision_recall_f1(true, pred, num_classes)
    present = np.union1d(np.unique(true), np.unique(pred))
    return float(f1[present].mean())


def accuracy_by_length(
    y_true: Any, y_pred: Any, lengths: Any, edges: Sequence[int] = LENGTH_EDGES
) -> list[dict[str, Any]]:
    """Accuracy per length bucket [edges[i], edges[i+1]), the last one open-ended.

    Returns one dict per bucket: `lo`, `hi` (None = no upper bound), `count`, `accuracy`
    (None for an empty bucket).
    """
    true, pred = label_arrays(y_true, y_pred)
    lengths = np.asarray(lengths).ravel()
    if lengths.shape != true.shape:
        raise ValueError(f"lengths and labels differ in length ({len(lengths)} vs {len(true)})")
    bounds = [int(e) for e in edges]
    if any(b >= a for a, b in zip(bounds[1:], bounds[:-1], strict=False)):
        raise ValueError(f"edges must be strictly increasing (got {bounds})")
    buckets: list[dict[str, Any]] = []
    for i, lo in enumerate(bounds):
        hi = bounds[i + 1] if i + 1 < len(bounds) else None
        inside = (lengths >= lo) if hi is None else (lengths >= lo) & (lengths < hi)
        count = int(inside.sum())
        acc = float(np.mean(true[inside] == pred[inside])) if count else None
        buckets.append({"lo": lo, "hi": hi, "count": count, "accuracy": acc})
    return buckets


def mean_squared_error(y_true: Any, y_pred: Any) -> float:
    """Mean of (y_true - y_pred)^2; 0.0 for no examples."""
    true = np.asarray(y_true, dtype=np.float64).ravel()
    pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length ({len(true)} vs {len(pred)})")
    return float(np.mean((true - pred) ** 2)) if len(true) else 0.0


def mean_absolute_error(y_true: Any, y_pred: Any) -> float:
    """Mean of |y_true - y_pred|; 0.0 for no examples."""
    true = np.asarray(y_true, dtype=np.float64).ravel()
    pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length ({len(true)} vs {len(pred)})")
    return float(np.mean(np.abs(true - pred))) if len(true) else 0.0
