"""Synthetic tasks that isolate memory over distance: remember-first, parity, adding problem.

Every task is a dataset source: `load_synthetic(DataConfig(dataset="synthetic:TASK", length=T,
num_examples=N, seed=S))` returns train/val/test `EncodedSplits` (80/10/10 by default, from
`val_fraction` / `test_fraction`), deterministic for a seed. All sequences have length T.

- `remember-first`: x_t ~ N(0, 1), F = 1; label 1 ("positive") if x_0 > 0 else 0.
- `parity`: T symbols with values 0..V-1 (V = `vocab_size`), stored as token ids value + 2 so
  that ids 0 and 1 stay `<pad>` and `<unk>`; label = sum of the values mod 2.
- `adding`: F = 2, column 0 a value in U(0, 1), column 1 a marker; exactly two markers, one in
  the first half [0, T//2) and one in the second half [T//2, T) (Hochreiter & Schmidhuber 1997,
  Le et al. 2015); target = sum of the two marked values, a regression task.
- `adding-classify`: the same inputs, label 1 if that sum > 1 else 0.

Memory tasks, one label per sequence, V = `vocab_size` symbols and V classes (the label is a
symbol; chance 1/V); extra tokens (blank, trigger, queries) take the ids after the symbols':
- `associative-recall` (after Zoology's MQAR, one query): N = (T - 1) // 2 key-value pairs
  k_1 v_1 ... k_N v_N, then a query key q = k_j; the label is v_j. Keys are N distinct symbols
  of their own V, values any of another V (so N <= V); an even T starts with one blank. The
  number of pairs is the knob: `recall_length(N)` is the T that holds N pairs.
- `selective-copying` (Mamba's, single output): `COPY_MARKS` symbols scattered at random
  positions among blanks in the first T - 1 steps, then a query token q_i (one of
  `COPY_MARKS`); the label is the i-th marked symbol, in order of position.
- `induction-head`: T random symbols, except a trigger token at one random position p < T - 2,
  followed by the symbol X, and again at the last step; the label is X.

Classification labels are exactly balanced in every split (rejection sampling keeps the inputs
distributed as described, conditioned on the label).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rnnlab.config import DataConfig
from rnnlab.data.encoded import EncodedSplit, EncodedSplits, Task
from rnnlab.errors import RnnlabError, check

PREFIX = "synthetic:"
FIRST_SYMBOL_ID = 2
"""Token id of symbol value 0 (ids 0 and 1 are `<pad>` and `<unk>`)."""

Inputs = Literal["features", "tokens"]
# draw(rng, n, length, vocab_size) -> (inputs (n, T, F) float32 or (n, T) int values, targets (n,))
Drawer = Callable[[np.random.Generator, int, int, int], tuple[np.ndarray, np.ndarray]]
COPY_MARKS = 4
"""selective-copying: marked symbols per sequence (and query tokens)."""


@dataclass(frozen=True)
class SyntheticTask:
    """One synthetic task: how its inputs look and what its label is."""

    name: str
    description: str
    inputs: Inputs
    task: Task
    classes: tuple[str, ...]
    """Class names; empty for regression, or for a task whose label is one of the V symbols."""
    input_dim: int | None
    """Features per step for `features` inputs; None for token ids."""
    fixed_chance: float | None
    """Accuracy of guessing (classification) or MSE of predicting the mean (regression); None:
    1/V, the label being one of the V symbols."""
    draw: Drawer
    symbol_sets: int = 1
    """Disjoint sets of V symbol tokens (associative-recall: 2, its keys and its values)."""
    extra_tokens: int = 0
    """Token values after the symbols' (blank, trigger, queries)."""
    min_length: int = 2
    symbol_labels: bool = False
    """The label is one of the V symbols: V classes."""
    limits: Callable[[int, int], None] | None = None
    """limits(length, vocab_size): a one-line error for a shape the task cannot be built at."""

    def label_names(self, vocab_size: int) -> tuple[str, ...]:
        if self.symbol_labels:
            return tuple(f"s{i}" for i in range(vocab_size))
        return self.classes

    def chance(self, vocab_size: int) -> float:
        return 1.0 / vocab_size if self.fixed_chance is None else self.fixed_chance

    def token_values(self, vocab_size: int) -> int:
        """Distinct token values of the inputs (ids FIRST_SYMBOL_ID onwards)."""
        return self.symbol_sets * vocab_size + self.extra_tokens

    def check(self, length: int, vocab_size: int) -> None:
        """A one-line error for a length or vocabulary the task cannot be built at."""
        check(
            length >= self.min_length,
            f"synthetic:{self.name} needs a length of at least {self.min_length} (got {length}); "
            f"use --length {self.min_length} or more",
        )
        check(vocab_size >= 2, f"vocab_size must be at least 2 (got {vocab_size})")
        if self.limits is not None:
            self.limits(length, vocab_size)


def _draw_remember_first(
    rng: np.random.Generator, n: int, length: int, vocab_size: int
) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, length, 1)).astype(np.float32)  # (n, T, 1)
    return x, (x[:, 0, 0] > 0).astype(np.int64)


def _draw_parity(
    rng: np.random.Generator, n: int, length: int, vocab_size: int
) -> tuple[np.ndarray, np.ndarray]:
    values = rng.integers(0, vocab_size, size=(n, length), dtype=np.int64)  # (n, T)
    return values, values.sum(axis=1) % 2


def _adding_inputs(rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    half = length // 2
    x = np.zeros((n, length, 2), dtype=np.float32)  # (n, T, 2): value, marker
    x[:, :, 0] = rng.random((n, length), dtype=np.float32)
    rows = np.arange(n)
    first = rng.integers(0, half, size=n)  # (n,) in the first half
    second = rng.integers(half, length, size=n)  # (n,) in the second half
    x[rows, first, 1] = 1.0
    x[rows, second, 1] = 1.0
    target = x[rows, first, 0] + x[rows, second, 0]  # (n,) float32
    return x, target


def _draw_adding(
    rng: np.random.Generator, n: int, length: int, vocab_size: int
) -> tuple[np.ndarray, np.ndarray]:
    x, target = _adding_inputs(rng, n, length)
    return x, target.astype(np.float32)


def _draw_adding_classify(
    rng: np.random.Generator, n: int, length: int, vocab_size: int
) -> tuple[np.ndarray, np.ndarray]:
    x, target = _adding_inputs(rng, n, length)
    return x, (target > 1.0).astype(np.int64)


def recall_length(pairs: int) -> int:
    """associative-recall: the sequence length T that holds `pairs` key-value pairs and the
    query (2 N + 1)."""
    return 2 * pairs + 1


def recall_pairs(length: int) -> int:
    """associative-recall: the key-value pairs a sequence of length T holds ((T - 1) // 2)."""
    return (length - 1) // 2


def _check_recall(length: int, vocab_size: int) -> None:
    pairs = recall_pairs(length)
    check(
        pairs <= vocab_size,
        f"synthetic:associative-recall at length {length} holds {pairs} key-value pairs, more "
        f"than its {vocab_size} distinct keys (vocab_size); raise it (--vocab-size {pairs}) or "
        "shorten the sequences",
    )


def _first_columns_of_a_permutation(
    rng: np.random.Generator, n: int, size: int, take: int
) -> np.ndarray:
    """(n, take): for each row, `take` distinct values of range(size), in random order."""
    return np.argsort(rng.random((n, size)), axis=1)[:, :take]


def _draw_associative_recall(
    rng: np.random.Generator, n: int, length: int, vocab_size: int
) -> tuple[np.ndarray, np.ndarray]:
    pairs = recall_pairs(length)
    rows = np.arange(n)
    keys = _first_columns_of_a_permutation(rng, n, vocab_size, pairs)  # (n, N) distinct keys
    values = rng.integers(0, vocab_size, size=(n, pairs))  # (n, N) labels of the keys
    asked = rng.integers(0, pairs, size=n)  # (n,) which pair the query names
    x = np.full((n, length), 2 * vocab_size, dtype=np.int64)  # (n, T) blank
    start = length - 1 - 2 * pairs  # 0, or 1 for an even T (one leading blank)
    x[:, start : length - 1 : 2] = keys
    x[:, start + 1 : length - 1 : 2] = vocab_size + values
    x[:, -1] = keys[rows, asked]
    return x, values[rows, asked]


def _draw_selective_copying(
    rng: np.random.Generator, n: int, length: int, vocab_size: int
) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(n)
    places = np.sort(
        _first_columns_of_a_permutation(rng, n, length - 1, COPY_MARKS), axis=1
    )  # (n, M) positions of the marked symbols, in order
    symbols = rng.integers(0, vocab_size, size=(n, COPY_MARKS))  # (n, M)
    asked = rng.integers(0, COPY_MARKS, size=n)  # (n,) the i of "the i-th marked symbol"
    x = np.full((n, length), vocab_size, dtype=np.int64)  # (n, T) blank
    x[rows[:, None], places] = symbols
    x[:, -1] = vocab_size + 1 + asked  # query tokens after the blank
    return x, symbols[rows, asked]


def _draw_induction_head(
    rng: np.random.Generator, n: int, length: int, vocab_size: int
) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(n)
    x = rng.integers(0, vocab_size, size=(n, length))  # (n, T) symbols
    first = rng.integers(0, length - 2, size=n)  # (n,) the first trigger, before T - 2
    x[rows, first] = vocab_size  # the trigger token
    x[:, -1] = vocab_size
    return x, x[rows, first + 1]


TASKS: dict[str, SyntheticTask] = {
    task.name: task
    for task in (
        SyntheticTask(
            "remember-first",
            "x_t ~ N(0,1), label 1 if the first input is positive",
            "features",
            "classification",
            ("negative", "positive"),
            1,
            0.5,
            _draw_remember_first,
        ),
        SyntheticTask(
            "parity",
            "random symbols 0..V-1, label = their sum mod 2",
            "tokens",
            "classification",
            ("even", "odd"),
            None,
            0.5,
            _draw_parity,
        ),
        SyntheticTask(
            "adding",
            "values in U(0,1) with two markers, target = sum of the marked values (regression)",
            "features",
            "regression",
            (),
            2,
            1.0 / 6.0,  # variance of the sum of two U(0,1): MSE of always predicting 1
            _draw_adding,
        ),
        SyntheticTask(
            "adding-classify",
            "the adding problem, label 1 if the sum of the marked values exceeds 1",
            "features",
            "classification",
            ("sum<=1", "sum>1"),
            2,
            0.5,
            _draw_adding_classify,
        ),
        SyntheticTask(
            "associative-recall",
            "key-value pairs, then a query key; the label is its value (V keys, V values)",
            "tokens",
            "classification",
            (),
            None,
            None,
            _draw_associative_recall,
            symbol_sets=2,  # keys 0..V-1, values V..2V-1
            extra_tokens=1,  # the blank
            min_length=3,
            symbol_labels=True,
            limits=_check_recall,
        ),
        SyntheticTask(
            "selective-copying",
            f"{COPY_MARKS} symbols scattered among blanks, then a query for the i-th of them",
            "tokens",
            "classification",
            (),
            None,
            None,
            _draw_selective_copying,
            extra_tokens=1 + COPY_MARKS,  # the blank, then the queries
            min_length=COPY_MARKS + 1,
            symbol_labels=True,
        ),
        SyntheticTask(
            "induction-head",
            "random symbols, a trigger followed by X once, the trigger again at the end: label X",
            "tokens",
            "classification",
            (),
            None,
            None,
            _draw_induction_head,
            extra_tokens=1,  # the trigger
            min_length=3,
            symbol_labels=True,
        ),
    )
}


def list_tasks() -> list[str]:
    """Names of the synthetic tasks (use them as `synthetic:NAME`)."""
    return sorted(TASKS)


def is_synthetic(dataset: str) -> bool:
    return dataset.startswith(PREFIX)


def get_task(name: str) -> SyntheticTask:
    """The task called `name` (with or without the `synthetic:` prefix); RnnlabError if unknown."""
    key = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    key = key.strip().lower().replace("_", "-")
    if key not in TASKS:
        valid = ", ".join(PREFIX + t for t in list_tasks())
        raise RnnlabError(f"unknown synthetic task {name!r}; valid tasks: {valid}")
    return TASKS[key]


def make_examples(
    task: str | SyntheticTask,
    length: int,
    num_examples: int,
    *,
    seed: int | list[int] = 0,
    vocab_size: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """`num_examples` examples of `task`: (inputs, labels), classification labels balanced.

    inputs: `(N, T, F) float32` features, or `(N, T) int64` token ids (symbol value + 2).
    labels: `(N,) int64` class ids, or `(N,) float32` regression targets.
    """
    spec = task if isinstance(task, SyntheticTask) else get_task(task)
    check(
        length >= 2, f"synthetic length must be at least 2 (got {length}); use --length 2 or more"
    )
    check(num_examples > 0, f"num_examples must be positive (got {num_examples})")
    spec.check(length, vocab_size)
    rng = np.random.default_rng(seed)
    if spec.task == "regression":
        inputs, labels = spec.draw(rng, num_examples, length, vocab_size)
    else:
        inputs, labels = _balanced(spec, rng, num_examples, length, vocab_size)
    if spec.inputs == "tokens":
        inputs = inputs + FIRST_SYMBOL_ID
    return inputs, labels


def _balanced(
    spec: SyntheticTask, rng: np.random.Generator, n: int, length: int, vocab_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rejection-sample until every class has its share (n // C, the remainder to random classes)."""
    num_classes = len(spec.label_names(vocab_size))
    wanted = np.full(num_classes, n // num_classes)
    wanted[rng.choice(num_classes, n % num_classes, replace=False)] += 1
    kept_x: list[np.ndarray] = []
    kept_y: list[np.ndarray] = []
    have = np.zeros(num_classes, dtype=np.int64)
    draws = 0
    while (have < wanted).any():
        draws += 1
        if draws > 1000:  # pragma: no cover - every class has probability near 1/C
            raise RnnlabError(f"could not balance the classes of synthetic:{spec.name}")
        x, y = spec.draw(rng, max(2 * n, 64), length, vocab_size)
        for c in range(num_classes):
            take = np.flatnonzero(y == c)[: wanted[c] - have[c]]
            kept_x.append(x[take])
            kept_y.append(y[take])
            have[c] += len(take)
    order = rng.permutation(n)
    return np.concatenate(kept_x)[order], np.concatenate(kept_y)[order]


def split_sizes(
    num_examples: int, val_fraction: float, test_fraction: float
) -> tuple[int, int, int]:
    """(train, val, test) sizes: at least one example in every split."""
    n_val = max(1, round(num_examples * val_fraction))
    n_test = max(1, round(num_examples * test_fraction))
    n_train = num_examples - n_val - n_test
    check(
        n_train >= 1,
        f"num_examples={num_examples} is too few for train/val/test splits; use at least 3",
    )
    return n_train, n_val, n_test


def load_synthetic(cfg: DataConfig) -> EncodedSplits:
    """Generate the splits of `cfg.dataset` (`synthetic:TASK`) at `cfg.length`, deterministic for
    `cfg.seed`. Every split is drawn from its own random stream and is balanced on its own."""
    spec = get_task(cfg.dataset)
    check(cfg.length >= 2, f"synthetic length must be at least 2 (got {cfg.length})")
    check(cfg.num_examples > 0, f"num_examples must be positive (got {cfg.num_examples})")
    spec.check(cfg.length, cfg.vocab_size)
    sizes = split_sizes(cfg.num_examples, cfg.val_fraction, cfg.test_fraction)
    salt = zlib.crc32(spec.name.encode())
    splits = [
        _to_split(
            spec,
            *make_examples(
                spec, cfg.length, size, seed=[cfg.seed, salt, index], vocab_size=cfg.vocab_size
            ),
        )
        for index, size in enumerate(sizes)
    ]
    return EncodedSplits(
        train=splits[0],
        val=splits[1],
        test=splits[2],
        label_names=list(spec.label_names(cfg.vocab_size)),
        vocab_size=(
            spec.token_values(cfg.vocab_size) + FIRST_SYMBOL_ID if spec.inputs == "tokens" else 0
        ),
        encoder=None,
        task=spec.task,
        input_dim=spec.input_dim,
        info={
            "name": PREFIX + spec.name,
            "source": "synthetic",
            "description": spec.description,
            "length": cfg.length,
            "num_examples": cfg.num_examples,
            "seed": cfg.seed,
            "vocab_size": cfg.vocab_size if spec.inputs == "tokens" else None,
            "chance": spec.chance(cfg.vocab_size),
            "sizes": {"train": sizes[0], "val": sizes[1], "test": sizes[2]},
        },
    )


def _to_split(spec: SyntheticTask, inputs: np.ndarray, labels: np.ndarray) -> EncodedSplit:
    n, length = inputs.shape[:2]
    offsets = np.arange(n + 1, dtype=np.int64) * length  # (N + 1,) every example has length T
    if spec.inputs == "tokens":
        ids = np.ascontiguousarray(inputs, dtype=np.int32).reshape(-1)  # (N * T,)
        return EncodedSplit(ids, offsets, labels)
    return EncodedSplit(np.zeros(0, dtype=np.int32), offsets, labels, features=inputs)
