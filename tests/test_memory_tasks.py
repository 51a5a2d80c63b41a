"""The memory tasks (rnnlab.data.synthetic): associative recall, selective copying, induction
head. Their invariants hold for any length, vocabulary and seed: the label can always be read
back from the sequence by the rule that defines the task."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.config import DataConfig
from rnnlab.data.synthetic import (
    COPY_MARKS,
    FIRST_SYMBOL_ID,
    get_task,
    load_synthetic,
    make_examples,
    recall_length,
    recall_pairs,
)
from rnnlab.errors import RnnlabError

MEMORY_TASKS = ["associative-recall", "selective-copying", "induction-head"]


def values_of(
    task: str, length: int, vocab: int, seed: int, n: int = 40
) -> tuple[np.ndarray, np.ndarray]:
    """(N, T) token values (ids minus FIRST_SYMBOL_ID) and (N,) labels."""
    ids, labels = make_examples(task, length, n, seed=seed, vocab_size=vocab)
    return ids - FIRST_SYMBOL_ID, labels


def check_common(task: str, x: np.ndarray, y: np.ndarray, length: int, vocab: int) -> None:
    spec = get_task(task)
    assert x.shape == (len(y), length) and x.dtype == np.int64 and y.dtype == np.int64
    assert x.min() >= 0 and x.max() < spec.token_values(vocab)  # ids 0 / 1 (pad / unk) never
    assert y.min() >= 0 and y.max() < vocab == len(spec.label_names(vocab))


def recall_answer(row: np.ndarray, vocab: int) -> int:
    """The value that follows the query key among the pairs."""
    start = len(row) - 1 - 2 * recall_pairs(len(row))
    pairs = row[start:-1].reshape(-1, 2)  # (N, 2): key, value
    keys = pairs[:, 0]
    assert len(np.unique(keys)) == len(keys) and keys.max() < vocab  # distinct keys
    assert (pairs[:, 1] >= vocab).all() and (pairs[:, 1] < 2 * vocab).all()
    assert (row[:start] == 2 * vocab).all()  # at most one leading blank
    (where,) = np.flatnonzero(keys == row[-1])  # the query is exactly one of the keys
    return int(pairs[where, 1] - vocab)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(0, 1), st.integers(0, 8), st.integers(0, 2**31))
def test_associative_recall_label_is_the_queried_keys_value(
    pairs: int, even: int, spare_keys: int, seed: int
) -> None:
    length = recall_length(pairs) + even  # an even length starts with one blank
    vocab = max(pairs, 2) + spare_keys
    x, y = values_of("associative-recall", length, vocab, seed)
    check_common("associative-recall", x, y, length, vocab)
    assert recall_pairs(length) == pairs
    assert [recall_answer(row, vocab) for row in x] == y.tolist()


@settings(max_examples=40, deadline=None)
@given(st.integers(COPY_MARKS + 1, 60), st.integers(2, 12), st.integers(0, 2**31))
def test_selective_copying_label_is_the_asked_marked_symbol(
    length: int, vocab: int, seed: int
) -> None:
    x, y = values_of("selective-copying", length, vocab, seed)
    check_common("selective-copying", x, y, length, vocab)
    body, query = x[:, :-1], x[:, -1]  # (N, T - 1), (N,)
    marked = body < vocab
    assert (marked.sum(axis=1) == COPY_MARKS).all()
    assert (body[~marked] == vocab).all()  # the rest is blank
    asked = query - vocab - 1
    assert ((asked >= 0) & (asked < COPY_MARKS)).all()
    symbols = body[marked].reshape(len(x), COPY_MARKS)  # in order of position
    np.testing.assert_array_equal(symbols[np.arange(len(x)), asked], y)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 60), st.integers(2, 12), st.integers(0, 2**31))
def test_induction_head_label_follows_the_first_trigger(length: int, vocab: int, seed: int) -> None:
    x, y = values_of("induction-head", length, vocab, seed)
    check_common("induction-head", x, y, length, vocab)
    trigger = x == vocab
    assert (trigger.sum(axis=1) == 2).all() and trigger[:, -1].all()
    first = trigger.argmax(axis=1)  # (N,)
    assert (first < length - 2).all()  # X follows it, before the last step
    np.testing.assert_array_equal(x[np.arange(len(x)), first + 1], y)


@pytest.mark.parametrize("task", MEMORY_TASKS)
def test_splits_are_deterministic_balanced_and_sized(task: str) -> None:
    cfg = DataConfig(dataset=f"synthetic:{task}", length=9, num_examples=200, vocab_size=4, seed=5)
    a, b = load_synthetic(cfg), load_synthetic(cfg)
    other = load_synthetic(DataConfig(**{**cfg.__dict__, "seed": 6}))
    spec = get_task(task)
    assert a.vocab_size == spec.token_values(4) + FIRST_SYMBOL_ID and a.num_classes == 4
    assert a.label_names == ["s0", "s1", "s2", "s3"] and a.info["chance"] == 0.25
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(a.split(name).ids, b.split(name).ids)
        assert not np.array_equal(a.split(name).ids, other.split(name).ids)
    counts = np.bincount(a.train.labels, minlength=4)
    assert counts.max() - counts.min() <= 1  # balanced: 160 sequences, 40 per class


@pytest.mark.parametrize(
    ("task", "length", "vocab", "match"),
    [
        ("associative-recall", 2, 4, "at least 3"),
        ("associative-recall", 11, 4, "5 key-value pairs, more than its 4 distinct keys"),
        ("selective-copying", COPY_MARKS, 4, f"at least {COPY_MARKS + 1}"),
        ("induction-head", 2, 4, "at least 3"),
    ],
)
def test_shapes_a_task_cannot_hold_are_one_line_errors(
    task: str, length: int, vocab: int, match: str
) -> None:
    with pytest.raises(RnnlabError, match=match) as info:
        load_synthetic(
            DataConfig(
                dataset=f"synthetic:{task}", length=length, num_examples=30, vocab_size=vocab
            )
        )
    assert "\n" not in str(info.value)
