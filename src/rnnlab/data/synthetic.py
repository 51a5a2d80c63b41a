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


@dataclass(frozen=True)
class SyntheticTask:
    """One synthetic task: how its inputs look and what its label is."""

    name: str
    description: str
    inputs: Inputs
    task: Task
    label_names: tuple[str, ...]
    input_dim: int | None
    """Features per step for `features` inputs; None for token ids."""
    chance: float
    """Accuracy of guessing (classification) or MSE of predicting the mean (regression)."""
    draw: Drawer


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
    check(vocab_size >= 2, f"vocab_size must be at least 2 (got {vocab_size})")
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
    num_classes = len(spec.label_names)
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
        label_names=list(spec.label_names),
        vocab_size=cfg.vocab_size + FIRST_SYMBOL_ID if spec.inputs == "tokens" else 0,
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
            "chance": spec.chance,
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
