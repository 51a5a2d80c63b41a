"""One cell of a training sweep: a preset trained and tested by the job runner's in-memory
path (`rnnlab.runs.job.train_and_test`), so a cell trains exactly as `rnnlab train`.

Shared by the sequence-length sweep (seq_len) and the hidden-size sweep (hidden_size): the
cell, the points and intervals of a summary, and the readings under the seed rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

import numpy as np

from rnnlab.config import RunConfig
from rnnlab.data.encoded import EncodedSplits
from rnnlab.data.splits import stratified_subsample
from rnnlab.diagnostics.inputs import Logger
from rnnlab.errors import RnnlabError
from rnnlab.formatting import finite, pct, pm
from rnnlab.models import count_parameters
from rnnlab.runs.compare import RULE, left_out_indices, seed_rule
from rnnlab.runs.job import train_and_test
from rnnlab.stats import (
    describe_p,
    mean_std,
    seed_interval,
    two_proportion_p,
    wilson_interval,
)


@dataclass
class TrainedCell:
    """What one training run of a sweep measured."""

    model: str
    seed: int
    test_accuracy: float | None
    test_macro_f1: float | None
    test_loss: float | None
    best_val_accuracy: float | None
    epochs_run: int
    train_seconds: float
    """Time spent in training steps (no validation), summed over epochs."""
    fit_seconds: float
    """Wall time of `fit` (training and per-epoch validation)."""
    parameters: int
    accuracy_by_length: list[dict[str, Any]]
    """Test accuracy per length bucket: lo, hi (null: open), count, accuracy."""
    status: str
    test_examples: int = 0
    """Texts in the test split (0 in results written before intervals were kept)."""
    test_accuracy_interval: list[float] | None = None
    """95% Wilson interval of test_accuracy."""


def sweep_config(config: RunConfig, *, epochs: int | None) -> RunConfig:
    """The base config with a sweep's own epochs (None keeps the config's)."""
    train = dataclasses.replace(config.train, progress=False)
    if epochs is not None:
        train = dataclasses.replace(train, epochs=epochs)
    return RunConfig(config.data, config.model, train)


def limit_training(splits: EncodedSplits, limit: int | None, seed: int) -> EncodedSplits:
    """A sweep's training budget: at most `limit` training examples (stratified, the same for
    every cell); the validation and test splits stay whole, so every cell is scored on all
    the test texts and its interval is as narrow as the data allows."""
    if limit is None or limit >= len(splits.train):
        return splits
    train = splits.train
    kept = stratified_subsample(np.asarray(train.labels), limit, seed)
    return dataclasses.replace(splits, train=train.subset(kept))


def sweep_cell(
    config: RunConfig,
    model_name: str,
    splits: EncodedSplits,
    *,
    seed: int,
    length_edges: Sequence[int],
    log: Logger | None = None,
    label: str = "",
    **model_overrides: Any,
) -> TrainedCell:
    """Train preset `model_name` (config.model fields and `model_overrides` on top) with
    config.train and `seed`; test it. Nothing is written to disk. `log` gets one line before
    (`label`, e.g. "seq-len sweep: rnn, max_len 50") and one after."""
    if len(splits.test) == 0:
        raise RnnlabError("the test split is empty; use more data (raise --limit)")
    if log:
        log(f"{label}, seed {seed}")
    config = dataclasses.replace(
        config, train=dataclasses.replace(config.train, seed=seed, progress=False)
    )
    trained = train_and_test(
        config, splits, name=model_name, length_edges=length_edges, **model_overrides
    )
    fitted, test = trained.fit, trained.test
    if test is None:  # a Ctrl-C during the test pass: the sweep stops, as it did before
        raise KeyboardInterrupt
    best = next((r for r in fitted.history if r["epoch"] == fitted.best_epoch), None)
    cell = TrainedCell(
        model=model_name,
        seed=seed,
        test_accuracy=finite(test.accuracy),
        test_macro_f1=finite(test.macro_f1),
        test_loss=finite(test.loss),
        best_val_accuracy=finite(best.get("val_accuracy")) if best else None,
        epochs_run=fitted.epochs_run,
        train_seconds=float(sum(r["train_seconds"] for r in fitted.history)),
        fit_seconds=float(fitted.seconds),
        parameters=int(count_parameters(trained.model)["total"]),
        accuracy_by_length=list(test.accuracy_by_length or []),
        status=fitted.status,
        test_examples=test.examples,
        test_accuracy_interval=test.intervals().get("accuracy_interval"),
    )
    if log:
        log(
            f"  test accuracy {pm(cell.test_accuracy, None, '.4f')}, "
            f"{cell.train_seconds:.1f} s training"
        )
    return cell


def sweep_settings(config: RunConfig, splits: EncodedSplits) -> dict[str, Any]:
    """The settings every cell shares, for the result and its table (`limit`: the training
    examples of each cell; `test_examples`: the test texts each cell is scored on)."""
    return {
        "epochs": config.train.epochs,
        "batch_size": config.train.batch_size,
        "lr": config.train.lr,
        "limit": len(splits.train),
        "test_examples": len(splits.test),
        "embed_dim": config.model.embed_dim,
        "hidden_dim": config.model.hidden_dim,
        "device": config.train.device,
    }


def trend(series: dict[str, list[tuple[int, float]]], name: str) -> list[str]:
    """'Mean test accuracy: rnn 61.0% at max_len=50 and 55.0% at max_len=400 (best ...)'."""
    parts = []
    for model, points in series.items():
        if len(points) >= 2:
            (v0, a0), (v1, a1) = points[0], points[-1]
            best_v, best_a = max(points, key=lambda p: p[1])
            parts.append(
                f"{model} {pct(a0)} at {name}={v0} and {pct(a1)} at {name}={v1} "
                f"(best {pct(best_a)} at {best_v})"
            )
    return ["Mean test accuracy: " + "; ".join(parts) + "."] if parts else []


@dataclass
class Point:
    """One (model, setting) of a sweep: its mean accuracy, the test texts behind it (over all
    seeds) and its 95% interval (Wilson with one seed; mean ± 1.96 std/sqrt(seeds) with more)."""

    setting: int
    accuracy: float
    examples: int
    interval: tuple[float, ...]
    """(low, high)."""


def point(setting: int, cells: Sequence[Any]) -> Point | None:
    """The Point of one setting from its cells (any with test_accuracy and test_examples)."""
    scored = [c for c in cells if c.test_accuracy is not None]
    if not scored:
        return None
    mean, std = mean_std([c.test_accuracy for c in scored])
    assert mean is not None
    examples = sum(c.test_examples for c in scored)
    if len(scored) > 1:
        interval: tuple[float, ...] = seed_interval(mean, std or 0.0, len(scored))
    else:
        interval = wilson_interval(round(mean * examples), examples) if examples else (mean, mean)
    return Point(setting, mean, examples, interval)


def summary_points(summary: Sequence[Any], model: str, setting: str) -> list[Point]:
    """The points of one model from a sweep's summary rows (which carry `setting`, e.g.
    max_len, and accuracy_mean, accuracy_interval, test_examples)."""
    points = []
    for s in summary:
        if s.model == model and s.accuracy_mean is not None:
            interval = s.accuracy_interval or (s.accuracy_mean, s.accuracy_mean)
            points.append(
                Point(getattr(s, setting), s.accuracy_mean, s.test_examples, tuple(interval))
            )
    return points


@dataclass(frozen=True)
class Change:
    """One model's accuracy from the first to the last setting of a sweep: a two-proportion
    test per seed and one over the seeds together."""

    model: str
    name: str
    """The setting's short name in sentences (L, H)."""
    first: int
    last: int
    seeds: list[int]
    before: list[float]
    after: list[float]
    p_values: list[float]
    p_value: float
    """Over all the seeds together (`_two_proportion`)."""
    left_out: list[float]
    """With 3 or more seeds: the same test with each seed left out in turn (`seed_rule`)."""

    @property
    def way(self) -> str | None:
        """ "rises" or "falls" under the seed rule (`seed_rule`: every seed the same way, and
        p < 0.05 over the seeds, also with any one seed left out), else None."""
        leads = [b - a for a, b in zip(self.before, self.after, strict=True)]
        side = seed_rule(leads, self.p_value, self.left_out)
        return None if side == 0 else ("rises" if side == 1 else "falls")

    def reading(self) -> str:
        n = len(self.seeds)
        tests = describe_p(self.p_value) + (
            " over the seeds; per seed " + ", ".join(describe_p(p) for p in self.p_values)
            if n > 1 else ""
        )  # fmt: skip
        moved = (
            f"{pct(fmean(self.before))} at {self.name}={self.first} to {pct(fmean(self.after))} "
            f"at {self.name}={self.last}"
        )
        if self.way is not None:
            seeds = "" if n == 1 else f" with each of {n} seeds"
            return f"{self.model} {self.way} from {moved}{seeds} ({tests})"
        if n == 1:
            return f"{self.model}: {moved} is within noise ({tests})"
        per_seed = " / ".join(
            f"{pct(a)}→{pct(b)}" for a, b in zip(self.before, self.after, strict=True)
        )
        return f"{self.model}: {moved} is not settled with {n} seeds (per seed {per_seed}; {tests})"


def seed_change(model: str, name: str, cells: Sequence[Any], setting: str) -> Change | None:
    """The Change of `model` between its smallest and largest `setting` (a cell field such as
    max_len), over the seeds that have a scored cell at both; None with fewer than 2 settings."""
    mine = [c for c in cells if c.model == model and c.test_accuracy is not None]
    values = sorted({getattr(c, setting) for c in mine})
    if len(values) < 2:
        return None
    at = {(getattr(c, setting), c.seed): c for c in mine}
    seeds = sorted(
        s for s in {c.seed for c in mine} if (values[0], s) in at and (values[-1], s) in at
    )
    if not seeds:
        return None
    before = [at[values[0], s] for s in seeds]
    after = [at[values[-1], s] for s in seeds]
    return Change(
        model, name, values[0], values[-1], seeds,
        [float(c.test_accuracy) for c in before], [float(c.test_accuracy) for c in after],
        [_two_proportion([a], [b]) for a, b in zip(before, after, strict=True)],
        _two_proportion(before, after),
        [
            _two_proportion([before[j] for j in kept], [after[j] for j in kept])
            for kept in left_out_indices(len(seeds))
        ],
    )  # fmt: skip


def seeds_side(first: Sequence[Any], second: Sequence[Any]) -> tuple[int, float]:
    """The seed rule between two sets of cells (test_accuracy, test_examples), one per seed in
    the same seed order: (1 when `first` is ahead, -1 when `second` is, else 0; the
    two-proportion p-value over the seeds), the left-out seeds tested as in `seed_rule`."""
    leads = [
        float(a.test_accuracy) - float(b.test_accuracy) for a, b in zip(first, second, strict=True)
    ]
    p = _two_proportion(first, second)
    left_out = [
        _two_proportion([first[j] for j in kept], [second[j] for j in kept])
        for kept in left_out_indices(len(leads))
    ]
    return seed_rule(leads, p, left_out), p


def _two_proportion(before: Sequence[Any], after: Sequence[Any]) -> float:
    """The two-proportion test between two settings' cells, each side's accuracy averaged over
    its seeds and its texts counted once (the seeds score the same test texts, so they are
    not independent samples; a sweep cell keeps no per-text predictions for a paired test)."""
    sides = []
    for cells in (before, after):
        texts = round(fmean(c.test_examples or 0 for c in cells))
        sides += [round(fmean(c.test_accuracy for c in cells) * texts), texts]
    return two_proportion_p(*sides)


def noise_readings(
    cells: Sequence[Any], models: Sequence[str], setting: str, name: str
) -> list[str]:
    """One sentence: per model, whether accuracy moved from the first to the last setting,
    under the seed rule (`seed_rule`)."""
    changes = [c.reading() for m in models if (c := seed_change(m, name, cells, setting))]
    if not changes:
        return []
    return [
        "Tested against noise (two-proportion test on the test texts; a change counts only "
        f"when {RULE}): " + "; ".join(changes) + "."
    ]


def interval_text(p: Point | None) -> str:
    return "—" if p is None else f"{pct(p.accuracy)} ({pct(p.interval[0])}–{pct(p.interval[1])})"


def error_bars(points: Sequence[Point]) -> list[list[float]]:
    """matplotlib yerr (below, above) of the points' intervals."""
    return [
        [max(0.0, p.accuracy - p.interval[0]) for p in points],
        [max(0.0, p.interval[1] - p.accuracy) for p in points],
    ]


def draw_points(ax: Any, points: Sequence[Point], label: str, colour: str) -> None:
    """One model's accuracy against the setting, with its 95% intervals as error bars."""
    ax.errorbar([p.setting for p in points], [p.accuracy for p in points],
                yerr=error_bars(points), marker="o", capsize=3, label=label, color=colour)  # fmt: skip
