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
