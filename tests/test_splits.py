from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data.splits import drop_duplicates, stratified_split, stratified_subsample

label_arrays = st.lists(st.integers(0, 3), min_size=1, max_size=300).map(
    lambda x: np.asarray(x, np.int64)
)


@settings(max_examples=60, deadline=None)
@given(label_arrays, st.integers(0, 10_000))
def test_splits_are_disjoint_complete_deterministic_and_stratified(
    labels: np.ndarray, seed: int
) -> None:
    parts = stratified_split(labels, (0.1, 0.1), seed)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(labels)))  # disjoint and complete
    again = stratified_split(labels, (0.1, 0.1), seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    for label in np.unique(labels):
        n = int((labels == label).sum())
        for part, frac in zip(parts[1:], (0.1, 0.1), strict=True):
            assert int((labels[part] == label).sum()) == round(n * frac)


def test_different_seeds_give_different_splits() -> None:
    labels = np.repeat([0, 1], 500)
    a = stratified_split(labels, (0.1, 0.1), 0)
    b = stratified_split(labels, (0.1, 0.1), 1)
    assert not np.array_equal(a[2], b[2])


def test_subsample_keeps_class_proportions() -> None:
    labels = np.asarray([0] * 900 + [1] * 100)
    idx = stratified_subsample(labels, 100, 0)
    assert abs(len(idx) - 100) <= 2
    assert int((labels[idx] == 1).sum()) == 10
    assert len(stratified_subsample(labels, 5000, 0)) == 1000


def test_drop_duplicates_keeps_first() -> None:
    texts, labels, dropped = drop_duplicates(["a", "b", "a", "c", "b"], np.arange(5))
    assert texts == ["a", "b", "c"] and labels.tolist() == [0, 1, 3] and dropped == 2


@settings(max_examples=60, deadline=None)
@given(label_arrays, st.integers(0, 10_000), st.sampled_from([(0.1, 0.1), (0.3, 0.3), (0.49, 0.2)]))
def test_min_size_gives_every_part_an_example_and_train_every_class(
    labels: np.ndarray, seed: int, fractions: tuple[float, float]
) -> None:
    parts = stratified_split(labels, fractions, seed, min_size=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(labels)))
    classes = np.unique(labels)
    assert set(labels[parts[0]].tolist()) == set(classes.tolist())  # train sees every class
    if len(labels) >= len(classes) + 2:
        assert all(len(part) >= 1 for part in parts)
    else:  # too small: the held-out parts stay short and the caller refuses
        assert sum(len(part) == 0 for part in parts[1:]) >= 1
    again = stratified_split(labels, fractions, seed, min_size=1)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_min_size_changes_nothing_for_a_large_split() -> None:
    labels = np.repeat([0, 1, 2], 200)
    plain = stratified_split(labels, (0.1, 0.1), 3)
    guarded = stratified_split(labels, (0.1, 0.1), 3, min_size=1)
    assert all(np.array_equal(a, b) for a, b in zip(plain, guarded, strict=True))


def test_empty_labels_give_empty_parts() -> None:
    parts = stratified_split(np.empty(0, np.int64), (0.1, 0.1), 0, min_size=1)
    assert [len(p) for p in parts] == [0, 0, 0]
