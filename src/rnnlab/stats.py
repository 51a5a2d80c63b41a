"""Statistics of results: mean ± std over seeds, 95% intervals, the paired and two-proportion
tests, and the p-value threshold every finding uses (`SIGNIFICANT`).

Ground floor: numpy and the standard library only, so every layer (training's evaluation,
runs' compare folders, the sweeps and synthetic tasks, the report's findings) shares one
definition of each. The per-run metrics (accuracy, F1, ...) live in `rnnlab.training.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def label_arrays(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) as flat int64 arrays; ValueError when they differ in length."""
    true = np.asarray(y_true, dtype=np.int64).ravel()
    pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length ({len(true)} vs {len(pred)})")
    return true, pred


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
    true, pred = label_arrays(y_true, y_pred)
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
