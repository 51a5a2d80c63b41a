"""Metrics as pure functions `f(y_true, y_pred, ...)` on numpy arrays (scikit-learn style).

Conventions: a ratio whose denominator is zero is 0.0 (scikit-learn's `zero_division=0`);
macro averages run over the classes that occur in `y_true` or `y_pred`, so perfect predictions
score 1.0 even when some class is absent from a small sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LENGTH_EDGES: tuple[int, ...] = (0, 50, 100, 200, 400)
"""Default length buckets: [0, 50), [50, 100), [100, 200), [200, 400), [400, inf)."""


def length_edges(max_len: int | None) -> tuple[int, ...]:
    """Bucket edges that fit a truncation length: 1/8, 1/4, 1/2 of max_len, then max_len itself
    (the last bucket then holds the truncated texts); LENGTH_EDGES for long or no truncation."""
    if max_len is None or max_len >= LENGTH_EDGES[-1]:
        return LENGTH_EDGES
    return tuple(sorted({0, *(max(1, max_len // d) for d in (8, 4, 2)), max_len}))


def _as_int_arrays(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(y_true, dtype=np.int64).ravel()
    pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length ({len(true)} vs {len(pred)})")
    return true, pred


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Share of exact matches; 0.0 for no examples."""
    true, pred = _as_int_arrays(y_true, y_pred)
    return float(np.mean(true == pred)) if len(true) else 0.0


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """(C, C) int64 counts; row = true class, column = predicted class."""
    true, pred = _as_int_arrays(y_true, y_pred)
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
    true, pred = _as_int_arrays(y_true, y_pred)
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
    true, pred = _as_int_arrays(y_true, y_pred)
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


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and population standard deviation of the values that are not None (None, None
    when there are none)."""
    present = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if not len(present):
        return None, None
    mean, std = float(present.mean()), float(present.std())
    return (mean if math.isfinite(mean) else None), (std if math.isfinite(std) else None)


# ----- uncertainty -------------------------------------------------------------------------------
Z_95 = 1.959963984540054
"""The 97.5% quantile of the standard normal: a two-sided 95% interval."""


def seed_interval(mean: float, std: float, seeds: int) -> tuple[float, float]:
    """95% interval of an accuracy averaged over `seeds` runs: mean ± 1.96 std / sqrt(seeds),
    clipped to [0, 1]."""
    half = Z_95 * std / math.sqrt(seeds)
    return max(0.0, mean - half), min(1.0, mean + half)


def _z(confidence: float) -> float:
    if confidence == 0.95:
        return Z_95
    from statistics import NormalDist  # only for a confidence other than 95%

    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (an accuracy on n test examples); (0, 1) for n=0.

    Better than p ± z·SE near 0 and 1 and for small n (Wilson 1927; Brown, Cai & DasGupta
    2001)."""
    if n <= 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    lo = 0.0 if successes == 0 else max(0.0, center - half)  # exact at the ends, not rounded
    hi = 1.0 if successes == n else min(1.0, center + half)
    return lo, hi


def bootstrap_interval(
    y_true: Any,
    y_pred: Any,
    metric: Any,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `metric(y_true, y_pred)` over resampled examples."""
    true, pred = _as_int_arrays(y_true, y_pred)
    if len(true) == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(true), size=(resamples, len(true)))
    values = np.asarray([metric(true[r], pred[r]) for r in rows], dtype=np.float64)
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(values, [tail, 1 - tail])
    return float(lo), float(hi)


@dataclass(frozen=True)
class PairedTest:
    """McNemar's test of two classifiers on the same examples."""

    only_a: int
    """Examples A got right and B wrong."""
    only_b: int
    """Examples B got right and A wrong."""
    p_value: float
    method: str
    """`exact` (binomial, fewer than 25 discordant pairs) or `chi2` (with continuity correction)."""

    @property
    def winner(self) -> str | None:
        """ "a", "b", or None when they tie on the discordant pairs."""
        return None if self.only_a == self.only_b else "a" if self.only_a > self.only_b else "b"


def mcnemar(correct_a: Any, correct_b: Any) -> PairedTest:
    """Two-sided McNemar test on per-example correctness (booleans, same examples, same order).

    Only the discordant pairs count: b = A right and B wrong, c = the reverse. Exact binomial
    (b ~ Bin(b + c, 1/2)) when b + c < 25, else the chi-square statistic
    (|b - c| - 1)^2 / (b + c) with one degree of freedom."""
    a = np.asarray(correct_a, dtype=bool).ravel()
    b_ = np.asarray(correct_b, dtype=bool).ravel()
    if a.shape != b_.shape:
        raise ValueError(f"the two models answered {len(a)} and {len(b_)} examples")
    only_a, only_b = int(np.sum(a & ~b_)), int(np.sum(~a & b_))
    n = only_a + only_b
    if n == 0:
        return PairedTest(0, 0, 1.0, "exact")
    if n < 25:
        k = min(only_a, only_b)
        tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
        return PairedTest(only_a, only_b, min(1.0, 2 * tail), "exact")
    statistic = (abs(only_a - only_b) - 1) ** 2 / n
    return PairedTest(only_a, only_b, math.erfc(math.sqrt(statistic / 2)), "chi2")


def seeds_mcnemar(correct_a: Any, correct_b: Any) -> PairedTest:
    """McNemar's test over several seeds of two models (correctness (S, N): S seeds, the same N
    examples). The examples are the independent units: an example counts for A when A's seeds
    get it right more often than B's, and for B the other way round; with one seed this is
    `mcnemar` exactly. Seeds that share examples are never counted as independent evidence."""
    a = np.asarray(correct_a, dtype=float).reshape(-1, np.shape(correct_a)[-1]).mean(axis=0)
    b = np.asarray(correct_b, dtype=float).reshape(-1, np.shape(correct_b)[-1]).mean(axis=0)
    if a.shape != b.shape:
        raise ValueError(f"the two models answered {len(a)} and {len(b)} examples")
    return mcnemar(a > b, b > a)  # (N,) each: the examples A's seeds get right more often


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value that two accuracies (k1/n1, k2/n2 on independent samples, or
    independently trained models) differ only by chance: the pooled z-test."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if k1 / n1 == k2 / n2 else 0.0
    z = abs(k1 / n1 - k2 / n2) / se
    return math.erfc(z / math.sqrt(2))


def resolvable_difference(n: int, accuracy: float = 0.5, confidence: float = 0.95) -> float:
    """The smallest accuracy difference between two models on n test texts that a two-sided
    test at this confidence can tell from noise (two-proportion bound at `accuracy`; a paired
    test resolves less when the models agree on most texts)."""
    if n <= 0:
        return 1.0
    return _z(confidence) * math.sqrt(2 * accuracy * (1 - accuracy) / n)


def describe_p(p: float) -> str:
    """p < 0.001, p = 0.012, p = 0.4."""
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2g}"


SIGNIFICANT = 0.05
"""A difference is called a finding only below this p-value."""
