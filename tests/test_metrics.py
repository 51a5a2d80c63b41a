"""Metric functions: properties (hypothesis) and agreement with naive loops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.training import metrics


@st.composite
def label_pairs(draw: st.DrawFn, min_size: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """(y_true, y_pred, num_classes) with labels in [0, num_classes)."""
    num_classes = draw(st.integers(min_value=1, max_value=6))
    n = draw(st.integers(min_value=min_size, max_value=60))
    labels = st.lists(st.integers(0, num_classes - 1), min_size=n, max_size=n)
    return (
        np.array(draw(labels), dtype=np.int64),
        np.array(draw(labels), dtype=np.int64),
        num_classes,
    )


def naive_per_class(y_true: np.ndarray, y_pred: np.ndarray, c: int) -> tuple[float, float, float]:
    tp = fp = fn = 0
    for t, p in zip(y_true, y_pred, strict=True):
        if p == c and t == c:
            tp += 1
        elif p == c:
            fp += 1
        elif t == c:
            fn += 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@settings(max_examples=150, deadline=None)
@given(label_pairs())
def test_macro_f1_and_accuracy_lie_in_unit_interval(
    data: tuple[np.ndarray, np.ndarray, int],
) -> None:
    y_true, y_pred, k = data
    assert 0.0 <= metrics.macro_f1(y_true, y_pred, k) <= 1.0
    assert 0.0 <= metrics.accuracy(y_true, y_pred) <= 1.0


@settings(max_examples=100, deadline=None)
@given(label_pairs(min_size=1))
def test_perfect_predictions_score_one(data: tuple[np.ndarray, np.ndarray, int]) -> None:
    y_true, _, k = data
    assert metrics.accuracy(y_true, y_true) == 1.0
    assert metrics.macro_f1(y_true, y_true, k) == pytest.approx(1.0)
    assert metrics.macro_f1(y_true, y_true) == pytest.approx(1.0)  # num_classes inferred


@settings(max_examples=150, deadline=None)
@given(label_pairs())
def test_confusion_matrix_counts(data: tuple[np.ndarray, np.ndarray, int]) -> None:
    y_true, y_pred, k = data
    cm = metrics.confusion_matrix(y_true, y_pred, k)
    assert cm.shape == (k, k) and cm.dtype == np.int64
    assert cm.sum() == len(y_true)
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(y_true, minlength=k))
    np.testing.assert_array_equal(cm.sum(axis=0), np.bincount(y_pred, minlength=k))
    if len(y_true):
        assert np.trace(cm) / len(y_true) == pytest.approx(metrics.accuracy(y_true, y_pred))
    for t in range(k):
        for p in range(k):
            assert cm[t, p] == sum(
                1 for a, b in zip(y_true, y_pred, strict=True) if (a, b) == (t, p)
            )


@settings(max_examples=150, deadline=None)
@given(label_pairs())
def test_precision_recall_f1_agree_with_a_naive_loop(
    data: tuple[np.ndarray, np.ndarray, int],
) -> None:
    y_true, y_pred, k = data
    precision, recall, f1, support = metrics.precision_recall_f1(y_true, y_pred, k)
    for c in range(k):
        p, r, f = naive_per_class(y_true, y_pred, c)
        assert precision[c] == pytest.approx(p)
        assert recall[c] == pytest.approx(r)
        assert f1[c] == pytest.approx(f)
        assert support[c] == int(np.sum(y_true == c))
    present = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    expected = (
        float(np.mean([naive_per_class(y_true, y_pred, c)[2] for c in present])) if present else 0.0
    )
    assert metrics.macro_f1(y_true, y_pred, k) == pytest.approx(expected)


@settings(max_examples=100, deadline=None)
@given(label_pairs(), st.data())
def test_accuracy_by_length_partitions_the_examples(
    data: tuple[np.ndarray, np.ndarray, int], draw: st.DataObject
) -> None:
    y_true, y_pred, _ = data
    lengths = np.array(
        draw.draw(st.lists(st.integers(0, 600), min_size=len(y_true), max_size=len(y_true)))
    )
    buckets = metrics.accuracy_by_length(y_true, y_pred, lengths)
    assert [b["lo"] for b in buckets] == list(metrics.LENGTH_EDGES)
    assert buckets[-1]["hi"] is None
    assert sum(b["count"] for b in buckets) == len(y_true)
    correct = sum(b["accuracy"] * b["count"] for b in buckets if b["count"])
    assert correct == pytest.approx(np.sum(y_true == y_pred))
    assert all((b["accuracy"] is None) == (b["count"] == 0) for b in buckets)


def test_accuracy_by_length_buckets_by_half_open_intervals() -> None:
    buckets = metrics.accuracy_by_length(
        [1, 1, 0, 0], [1, 0, 0, 0], [49, 50, 99, 400], edges=(0, 50, 100)
    )
    assert [(b["lo"], b["hi"], b["count"]) for b in buckets] == [
        (0, 50, 1),
        (50, 100, 2),
        (100, None, 1),
    ]
    assert [b["accuracy"] for b in buckets] == [1.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="increasing"):
        metrics.accuracy_by_length([1], [1], [3], edges=(0, 10, 10))


def test_length_edges_follow_max_len() -> None:
    assert metrics.length_edges(None) == metrics.LENGTH_EDGES
    assert metrics.length_edges(400) == metrics.LENGTH_EDGES
    assert metrics.length_edges(64) == (0, 8, 16, 32, 64)
    assert metrics.length_edges(3) == (0, 1, 3)


def test_known_values_and_edge_cases() -> None:
    y_true, y_pred = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(0.6)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred, 3), [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    )
    # f1: class 0 = 0.5, class 1 = 0.8, class 2 = 0
    assert metrics.macro_f1(y_true, y_pred) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert metrics.accuracy([], []) == 0.0 and metrics.macro_f1([], []) == 0.0
    assert metrics.confusion_matrix([], [], 2).sum() == 0
    with pytest.raises(ValueError, match="differ"):
        metrics.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="lie in"):
        metrics.confusion_matrix([0, 3], [0, 1], 2)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40), st.data())
def test_regression_errors(values: list[float], draw: st.DataObject) -> None:
    other = draw.draw(st.lists(st.floats(-1e3, 1e3), min_size=len(values), max_size=len(values)))
    assert metrics.mean_squared_error(values, values) == 0.0
    mse = metrics.mean_squared_error(values, other)
    mae = metrics.mean_absolute_error(values, other)
    assert mse >= 0 and mae >= 0
    assert mse == pytest.approx(
        sum((a - b) ** 2 for a, b in zip(values, other, strict=True)) / len(values)
    )
    assert mae**2 <= mse * (1 + 1e-9) + 1e-9  # Jensen: mean|e|^2 <= mean e^2


# ----- uncertainty -------------------------------------------------------------------------------
def test_wilson_interval_known_values() -> None:
    # Newcombe (1998), Table I: 81 of 263 -> 0.2553 to 0.3662; 8 of 10 -> 0.4902 to 0.9433
    assert metrics.wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert metrics.wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    lo, hi = metrics.wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)
    assert metrics.wilson_interval(0, 0) == (0.0, 1.0)
    wide = metrics.wilson_interval(8, 10, confidence=0.99)
    assert wide[0] < 0.4902 and wide[1] > 0.9433


@given(st.integers(0, 400), st.integers(1, 400))
def test_wilson_interval_holds_the_estimate(k: int, n: int) -> None:
    k = min(k, n)
    lo, hi = metrics.wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    lo4, hi4 = metrics.wilson_interval(4 * k, 4 * n)
    assert hi4 - lo4 < hi - lo + 1e-12  # more data, a narrower interval


def test_mcnemar_known_values() -> None:
    exact = metrics.mcnemar([1] * 10 + [0] * 2 + [1] * 50, [0] * 10 + [1] * 2 + [1] * 50)
    assert (exact.only_a, exact.only_b, exact.method) == (10, 2, "exact")
    assert exact.p_value == pytest.approx(0.03857, abs=1e-5) and exact.winner == "a"
    chi2 = metrics.mcnemar([1] * 25 + [0] * 10, [0] * 25 + [1] * 10)
    assert chi2.method == "chi2" and chi2.p_value == pytest.approx(0.01796, abs=1e-5)
    tie = metrics.mcnemar([1, 0, 1], [1, 0, 1])
    assert tie.p_value == 1.0 and tie.winner is None
    with pytest.raises(ValueError, match="answered"):
        metrics.mcnemar([1, 0], [1])


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=200))
def test_mcnemar_is_symmetric_and_a_probability(pairs: list[tuple[bool, bool]]) -> None:
    a, b = zip(*pairs, strict=True)
    forward, backward = metrics.mcnemar(a, b), metrics.mcnemar(b, a)
    assert 0.0 <= forward.p_value <= 1.0
    assert forward.p_value == pytest.approx(backward.p_value)
    assert (forward.only_a, forward.only_b) == (backward.only_b, backward.only_a)


@given(
    st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=200),
    st.integers(1, 4),
)
def test_mcnemar_over_seeds_counts_each_example_once(
    pairs: list[tuple[bool, bool]], repeats: int
) -> None:
    a, b = (list(x) for x in zip(*pairs, strict=True))
    one = metrics.mcnemar(a, b)
    assert metrics.seeds_mcnemar([a], [b]) == one  # one seed: McNemar's test itself
    assert metrics.seeds_mcnemar([a] * repeats, [b] * repeats) == one  # copies add nothing


def test_mcnemar_over_seeds_averages_each_example_over_the_seeds() -> None:
    # example 0: A right with 2 of 3 seeds, B with 1 -> A; example 1: 1 vs 1 -> neither;
    # example 2: 0 vs 3 -> B; example 3: 3 vs 2 -> A
    a = [[1, 1, 0, 1], [1, 0, 0, 1], [0, 0, 0, 1]]
    b = [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 1, 0]]
    test = metrics.seeds_mcnemar(a, b)
    assert (test.only_a, test.only_b, test.method) == (2, 1, "exact")
    with pytest.raises(ValueError, match="answered"):
        metrics.seeds_mcnemar([[1, 0]], [[1, 0, 1]])


def test_two_proportions_and_the_resolvable_difference() -> None:
    assert metrics.two_proportion_p(62, 100, 54, 100) == pytest.approx(0.2517, abs=1e-4)
    assert metrics.two_proportion_p(500, 1000, 500, 1000) == pytest.approx(1.0)
    assert metrics.resolvable_difference(2490) == pytest.approx(0.02777, abs=1e-5)
    assert metrics.resolvable_difference(498) > metrics.resolvable_difference(2490)


def test_bootstrap_interval_of_macro_f1() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 500)
    y_pred = np.where(rng.random(500) < 0.8, y_true, 1 - y_true)
    lo, hi = metrics.bootstrap_interval(y_true, y_pred, metrics.macro_f1, resamples=300)
    assert lo < metrics.macro_f1(y_true, y_pred) < hi and 0.7 < lo < hi < 0.9
    assert metrics.bootstrap_interval([], [], metrics.macro_f1) == (0.0, 0.0)


def test_describe_p() -> None:
    assert metrics.describe_p(0.0001) == "p < 0.001"
    assert metrics.describe_p(0.0042) == "p = 0.004"
    assert metrics.describe_p(0.41) == "p = 0.41"


def test_seed_interval_known_values() -> None:
    # mean 0.8, std 0.05 over 4 seeds: 0.8 ± 1.96 * 0.05 / 2 = 0.8 ± 0.049
    low, high = metrics.seed_interval(0.8, 0.05, 4)
    assert low == pytest.approx(0.751, abs=1e-3) and high == pytest.approx(0.849, abs=1e-3)
    assert metrics.seed_interval(0.99, 0.1, 2) == (pytest.approx(0.851, abs=1e-3), 1.0)
    assert metrics.seed_interval(0.5, 0.0, 3) == (0.5, 0.5)
