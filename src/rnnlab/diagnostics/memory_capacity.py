"""Memory capacity: associative-recall accuracy against the number of key-value pairs, at one
fixed state size, one line per model family (`rnnlab diagnose memory-capacity`).

A recurrent model reads k_1 v_1 ... k_N v_N and then a query key; to answer it must have kept
every pair in its state of H numbers, whatever N is. A Transformer keeps no such state: its
query attends to the pairs themselves, so it is the reference line whose memory grows with the
text. This makes the notebooks' "still compress the entire history" a measured curve.

Each (model, pairs, seed) cell draws its own data (`synthetic:associative-recall` at length
2N + 1, seeded with the cell's seed) and trains the preset with hidden size H (`state_size`)
through the job runner's in-memory path (`rnnlab.runs.job.train_and_test`): same epochs,
batch, learning rate and data for every model; the best validation epoch's weights are tested.

result.json (`"kind": "memory_capacity"`):
  pairs, models, seeds, chance (1/V), settings (state_size, vocab_size, positions, epochs,
  num_examples, batch_size, lr, device, threads, split sizes), status ("completed" |
  "interrupted"),
  total_seconds, not_applicable (models with no state to size),
  cells: one object per (model, pairs, seed): model, pairs, seed, test_accuracy,
    test_examples, best_epoch, epochs_run, train_seconds, parameters, status,
  summary: one object per (model, pairs): model, pairs, runs, accuracy_mean, accuracy_std,
    accuracy_interval (95%), test_examples,
  reading: plain-words sentences, decided under the seed rule.
Figure: accuracy_vs_pairs.png.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any, get_args

import numpy as np

from rnnlab.config import (
    DataConfig,
    ModelConfig,
    Positions,
    RunConfig,
    TrainConfig,
    check_positive,
)
from rnnlab.data.synthetic import PREFIX, get_task, load_synthetic, recall_length, split_sizes
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.inputs import Inputs, Logger, parse_names
from rnnlab.diagnostics.result import FigureSpec, NotApplicable, Result
from rnnlab.diagnostics.sweep_runs import (
    Point,
    draw_points,
    interval_text,
    noise_readings,
    point,
    seeds_side,
    summary_points,
)
from rnnlab.errors import check
from rnnlab.formatting import finite, int_list, pct
from rnnlab.models import count_parameters, get_preset, preset_family
from rnnlab.models.families import colors
from rnnlab.models.family import ATTENTION, family
from rnnlab.plotting import new_figure
from rnnlab.runs.job import train_and_test
from rnnlab.stats import describe_p, mean_std
from rnnlab.tables import Table
from rnnlab.training import resolve_device
from rnnlab.training.device import num_threads

TASK = "associative-recall"
RECALL_BAR = 0.9
"""A model holds N pairs when every seed recalls at least this share of the test queries."""
BLIND_MARGIN = 0.03
"""Accuracy within this (or two standard errors) of the key-blind guess reads as that guess."""


@dataclass(frozen=True)
class Settings:
    pairs: tuple[int, ...] = (1, 2, 4, 8)
    """Key-value pairs per sequence N, the knob (a sequence is 2N + 1 tokens long)."""
    models: tuple[str, ...] = ("rnn", "lstm", "gru", "mingru", "transformer")
    """Model presets, one line each (any registered preset); the Transformer is the
    reference with no fixed-size state."""
    state_size: int = 64
    """Hidden size H of every model (also its embedding size): the recurrent models' fixed
    state (the LSTM carries 2H, h and c), the Transformer's width. At H=32 the LSTM learned
    4 pairs far more slowly than at 64 in our runs."""
    vocab_size: int = 8
    """Distinct keys, and distinct values V (V classes, chance 1/V); at least the most pairs."""
    positions: Positions = "learned"
    """Position vectors of the models that have them (the Transformer): learned or
    sinusoidal. With the preset's sinusoidal ones the Transformer stayed at the key-blind
    level even at 2 pairs in our runs (accuracy 0.57, best epoch 1 of 8); with learned ones it recalled
    every query."""
    seeds: int = 3
    """Seeds per cell (--seed, --seed+1, ...); a cell's seed sets its data and its weights. A
    change counts only when every seed shows it and the test over the seeds says p < 0.05."""
    epochs: int = 8
    """Epochs per cell, no early stopping (the best validation epoch's weights are tested)."""
    num_examples: int = 16_000
    """Sequences per cell over train/val/test, split 80/10/10. Fresh sequences teach recall
    better than more epochs: with 4,000 every model learnt the training pairs by heart and
    its validation accuracy peaked after 1-2 epochs."""
    batch_size: int = 64
    """Sequences per batch."""
    lr: float = 3e-3
    """Adam learning rate."""
    threads: int | None = 1
    """CPU threads for PyTorch: these small models gain nothing from more (None: PyTorch's
    default)."""

    def __post_init__(self) -> None:
        check(len(self.pairs) > 0, "no pairs given; pass e.g. --pairs 1,2,4,8")
        check_positive(self, "pairs", "state_size", "seeds", "epochs", "num_examples")
        check_positive(self, "batch_size", "lr", "threads")
        check(
            self.positions in get_args(Positions),
            f"--positions must be one of {', '.join(get_args(Positions))}, not {self.positions!r}",
        )
        object.__setattr__(self, "pairs", tuple(sorted({int(n) for n in self.pairs})))
        object.__setattr__(self, "models", tuple(parse_names(list(self.models))))
        check(
            self.vocab_size >= max(self.pairs),
            f"--vocab-size {self.vocab_size} is fewer keys than the {max(self.pairs)} pairs "
            f"asked for; use --vocab-size {max(self.pairs)} or more",
        )
        split_sizes(self.num_examples, 0.1, 0.1)  # a one-line error for too few examples


QUICK = Settings(
    pairs=(1, 2), models=("rnn", "lstm", "mingru", "transformer"), state_size=64,
    vocab_size=8, seeds=3, epochs=4, num_examples=8_000, batch_size=128, lr=1e-2,
)  # fmt: skip
"""Tiny, for the quick study's budget: 1 pair (every model should recall it) and 2, the four
families the issue names, 3 seeds, about 250 steps per cell (a large batch and step size).
Measured 2026-12-08 on the 2-core AMD EPYC (AVX2), shared with other jobs: 34.5 s (load about
2.5). transformer 97.8% at 2 pairs, lstm 83%, rnn 59%, mingru 55% (its key-blind level)."""


# ----- results ---------------------------------------------------------------------------------
@dataclass
class CapacityCell:
    """One trained (model, pairs, seed)."""

    model: str
    pairs: int
    seed: int
    test_accuracy: float | None
    test_examples: int
    best_epoch: int | None
    epochs_run: int
    train_seconds: float
    parameters: int
    status: str


@dataclass
class CapacitySummary:
    """One (model, pairs) over its seeds."""

    model: str
    pairs: int
    runs: int
    accuracy_mean: float | None
    accuracy_std: float | None
    accuracy_interval: list[float] | None
    """95%: Wilson with one seed, mean ± 1.96 std / sqrt(seeds) with several."""
    test_examples: int
    """Test queries behind the mean (over all seeds)."""


@dataclass
class MemoryCapacityResult(Result):
    kind = "memory_capacity"

    pairs: list[int]
    models: list[str]
    seeds: list[int]
    chance: float
    settings: dict[str, Any]
    cells: list[CapacityCell] = field(default_factory=list)
    summary: list[CapacitySummary] = field(default_factory=list)
    reading: list[str] = field(default_factory=list)
    status: str = "completed"
    total_seconds: float = 0.0

    def summarize(self) -> None:
        self.summary = []
        for model in self.models:
            for pairs in self.pairs:
                cells = [c for c in self.cells if c.model == model and c.pairs == pairs]
                p = point(pairs, cells)
                if p is None:
                    continue
                self.summary.append(
                    CapacitySummary(
                        model, pairs, len(cells), *mean_std([c.test_accuracy for c in cells]),
                        list(p.interval), p.examples,
                    )
                )  # fmt: skip
        self.reading = read_result(self)

    def points(self, model: str) -> list[Point]:
        return summary_points(self.summary, model, "pairs")

    def tables(self) -> list[Table]:
        rows = []
        for model in self.models:
            at = {p.setting: p for p in self.points(model)}
            rows.append([model, *(interval_text(at.get(n)) for n in self.pairs)])
        st = self.settings
        title = (
            f"Associative recall: test accuracy by key-value pairs (state size H="
            f"{st['state_size']}, {st['vocab_size']} keys and values, {st['epochs']} epochs, "
            f"{st['num_examples']:,} sequences, {len(self.seeds)} seed(s); chance {pct(self.chance)})"
        )
        notes = ["mean test accuracy (95% interval)", *self.reading]
        return [
            Table(
                title, ["model", *(f"N={n}" for n in self.pairs)], rows, notes,
                [False, *([True] * len(self.pairs))],
                row_ids=[f"memory-capacity-{m}" for m in self.models],
            )
        ]  # fmt: skip

    def figures(self) -> list[FigureSpec]:
        per_model = "; ".join(
            f"{m} " + ", ".join(f"{pct(p.accuracy)} at N={p.setting}" for p in self.points(m))
            for m in self.models
        )
        caption = [
            f"Test accuracy of recalling the value of a queried key after N key-value pairs, "
            f"every model at hidden size H={self.settings['state_size']}: {per_model}.",
            f"Guessing scores {pct(self.chance)}; answering the most frequent value of the "
            "pairs, without reading the key, scores "
            + ", ".join(
                f"{pct(key_blind_accuracy(n, int(self.settings['vocab_size'])))} at N={n}"
                for n in self.pairs
            )
            + " (dotted line).",
            *self.reading,
        ]
        return [
            FigureSpec("accuracy_vs_pairs.png", "Associative recall: accuracy vs pairs "
                       "(fixed state size)", caption, self._draw),
        ]  # fmt: skip

    def _draw(self) -> Any:
        kinds = [str(get_preset(m).settings.get("kind", m)) for m in self.models]
        palette = colors(self.models, kinds)
        fig, axes = new_figure(1, 1, width=6.0, height=4.0)
        ax = axes[0][0]
        for model in self.models:
            draw_points(ax, self.points(model), model, palette[model])
        ax.axhline(self.chance, color="gray", linestyle="--", linewidth=1, label="chance")
        blind = [key_blind_accuracy(n, int(self.settings["vocab_size"])) for n in self.pairs]
        ax.plot(self.pairs, blind, color="gray", linestyle=":", linewidth=1,
                label="the most frequent value (no key read)")  # fmt: skip
        if len(self.pairs) > 1:
            ax.set_xscale("log", base=2)
        ax.set_xticks(self.pairs, [str(n) for n in self.pairs])
        ax.minorticks_off()
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("key-value pairs N (sequence length 2N + 1)")
        ax.set_ylabel("test accuracy (95% interval)")
        ax.set_title(
            f"{PREFIX}{TASK} at state size H={self.settings['state_size']}, "
            f"{len(self.seeds)} seed(s)",
            fontsize=10,
        )
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        return fig


def key_blind_accuracy(pairs: int, vocab_size: int, draws: int = 20_000) -> float:
    """The accuracy of answering the most frequent value among the pairs without reading the
    query key: E[largest count of one value] / N for N values drawn from V (a fixed-seed
    estimate, the same every call). A model near this line has not learnt to bind keys."""
    values = np.random.default_rng(0).integers(0, vocab_size, size=(draws, pairs))  # (D, N)
    counts = (values[:, :, None] == np.arange(vocab_size)).sum(axis=1)  # (D, V)
    return float(counts.max(axis=1).mean() / pairs)


# ----- readings --------------------------------------------------------------------------------
def holds(result: MemoryCapacityResult, model: str) -> int | None:
    """The most pairs up to which every seed of `model` recalls at least RECALL_BAR (every
    smaller setting too); None when it falls short already at the fewest."""
    held = None
    for pairs in result.pairs:
        values = [c.test_accuracy for c in result.cells if c.model == model and c.pairs == pairs]
        if not values or any(v is None or v < RECALL_BAR for v in values):
            break
        held = pairs
    return held


def key_blind_pairs(result: MemoryCapacityResult, model: str) -> list[int]:
    """The pairs at which every seed of `model` scores no more than the most-frequent-value
    guess (`key_blind_accuracy`) plus max(BLIND_MARGIN, two binomial standard errors): there
    it has not learnt to read the key."""
    vocab = int(result.settings["vocab_size"])
    out = []
    for pairs in result.pairs:
        cells = [c for c in result.cells if c.model == model and c.pairs == pairs]
        blind = key_blind_accuracy(pairs, vocab)
        if (
            pairs > 1
            and cells
            and all(
                c.test_accuracy is not None
                and c.test_accuracy <= blind + max(BLIND_MARGIN, 2 * _se(blind, c.test_examples))
                for c in cells
            )
        ):
            out.append(pairs)
    return out


def _se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n) if n else 0.0


def reference_gaps(result: MemoryCapacityResult) -> list[str]:
    """Each reference (attention) model against every other model, at the most pairs the
    reference has learnt (not key-blind, `key_blind_pairs`; the most pairs if it learnt none
    beyond 1): higher or lower under the seed rule (`sweep_runs.seeds_side`: a two-proportion
    test on the test queries), else not settled."""
    lines = []
    for ref in (m for m in result.models if _group(m) == ATTENTION):
        learnt = [n for n in result.pairs if n > 1 and n not in key_blind_pairs(result, ref)]
        most = max(learnt) if learnt else max(result.pairs)
        at = {
            (c.model, c.seed): c
            for c in result.cells
            if c.pairs == most and c.test_accuracy is not None
        }
        for other in (m for m in result.models if m != ref):
            seeds = [s for s in result.seeds if (ref, s) in at and (other, s) in at]
            if not seeds:
                continue
            a = [float(at[ref, s].test_accuracy or 0.0) for s in seeds]
            b = [float(at[other, s].test_accuracy or 0.0) for s in seeds]
            side, p = seeds_side([at[ref, s] for s in seeds], [at[other, s] for s in seeds])
            both = f"{ref} {pct(fmean(a))} vs {other} {pct(fmean(b))}"
            if side == 0:
                lines.append(f"at N={most}, {both} is not settled with {len(seeds)} seed(s) "
                             f"({describe_p(p)})")  # fmt: skip
            else:
                way = "above" if side == 1 else "below"
                lines.append(f"at N={most}, {ref} is {way} {other} with every seed: {both} "
                             f"({describe_p(p)})")  # fmt: skip
    return lines


def read_result(result: MemoryCapacityResult) -> list[str]:
    """Plain words: how many pairs each model holds, whether its accuracy falls from the
    fewest pairs to the most, and the reference against the others at the most."""
    lines = []
    held = {m: holds(result, m) for m in result.models}
    if result.cells:
        parts = [
            f"{m} up to N={n}" if n is not None else f"{m} not even N={result.pairs[0]}"
            for m, n in held.items()
        ]
        lines.append(
            f"Pairs recalled at ≥{RECALL_BAR:.0%} by every seed: " + "; ".join(parts) + "."
        )
    blind = {m: key_blind_pairs(result, m) for m in result.models}
    if any(blind.values()):
        lines.append(
            "No better than answering the most frequent value without reading the key, with "
            "every seed: "
            + "; ".join(f"{m} at N={int_list(n)}" for m, n in blind.items() if n)
            + "."
        )
    lines += noise_readings(result.cells, result.models, "pairs", "N")
    gaps = reference_gaps(result)
    if gaps:
        lines.append("The reference without a fixed state: " + "; ".join(gaps) + ".")
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else pct(value)


def _group(model: str) -> str:
    return family(str(get_preset(model).settings.get("kind", ""))).group


# ----- the measurement -------------------------------------------------------------------------
def not_applicable(models: Sequence[str]) -> list[NotApplicable]:
    """Models whose family keeps no state to size (a bag of n-grams)."""
    return [
        NotApplicable(m, str(get_preset(m).settings["kind"]),
                      f"{preset_family(m).family}: it keeps no state whose size could be fixed")
        for m in models if not preset_family(m).reads_hidden_dim
    ]  # fmt: skip


def memory_capacity(
    settings: Settings | None = None,
    *,
    seed: int = 0,
    device: str = "auto",
    log: Logger | None = None,
    **changes: Any,
) -> MemoryCapacityResult:
    """Train every model at every number of pairs (and seed) on associative recall at one
    state size. Ctrl-C stops after the cell in progress and returns the cells done, with
    status "interrupted"."""
    s = dataclasses.replace(settings or Settings(), **changes)
    resolve_device(device)  # an unavailable device fails now, not after the first cell
    skipped = not_applicable(s.models)
    models = [m for m in s.models if m not in {n.label for n in skipped}]
    seeds = list(range(seed, seed + s.seeds))
    data = DataConfig(dataset=PREFIX + TASK, num_examples=s.num_examples,
                      vocab_size=s.vocab_size, seed=seed)  # fmt: skip
    sizes = split_sizes(s.num_examples, data.val_fraction, data.test_fraction)
    base = RunConfig(
        data,
        ModelConfig(hidden_dim=s.state_size, embed_dim=s.state_size, positions=s.positions),
        TrainConfig(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, patience=None,
                    monitor="val_accuracy", device=device, threads=s.threads, progress=False),
    )  # fmt: skip
    result = MemoryCapacityResult(
        pairs=list(s.pairs), models=models, seeds=seeds,
        chance=get_task(TASK).chance(s.vocab_size),
        settings={
            "state_size": s.state_size, "vocab_size": s.vocab_size, "positions": s.positions,
            "epochs": s.epochs,
            "num_examples": s.num_examples, "batch_size": s.batch_size, "lr": s.lr,
            "device": device, "threads": s.threads, "train_examples": sizes[0],
            "val_examples": sizes[1], "test_examples": sizes[2],
        },
    )  # fmt: skip
    result.not_applicable = skipped
    start = time.perf_counter()
    try:
        with num_threads(s.threads):  # for the test pass too, not only fit's
            for cell_seed in seeds:
                for pairs in s.pairs:
                    config = dataclasses.replace(
                        base,
                        data=dataclasses.replace(data, length=recall_length(pairs), seed=cell_seed),
                        train=dataclasses.replace(base.train, seed=cell_seed),
                    )
                    splits = load_synthetic(config.data)
                    for model in models:
                        cell = _train_cell(config, model, pairs, splits)
                        result.cells.append(cell)
                        if log:
                            log(f"memory capacity: {model}, {pairs} pair(s), seed {cell_seed}: "
                                f"test accuracy {_pct(cell.test_accuracy)}, "
                                f"{cell.train_seconds:.1f} s")  # fmt: skip
                        if cell.status == "interrupted":
                            raise KeyboardInterrupt
    except KeyboardInterrupt:
        result.status = "interrupted"
    result.total_seconds = time.perf_counter() - start
    result.summarize()
    return result


def _train_cell(config: RunConfig, model: str, pairs: int, splits: Any) -> CapacityCell:
    trained = train_and_test(config, splits, name=model)
    fitted, test = trained.fit, trained.test
    return CapacityCell(
        model=model,
        pairs=pairs,
        seed=config.train.seed,
        test_accuracy=None if test is None else finite(test.accuracy),
        test_examples=0 if test is None else test.examples,
        best_epoch=fitted.best_epoch,
        epochs_run=fitted.epochs_run,
        train_seconds=float(sum(r["train_seconds"] for r in fitted.history)),
        parameters=int(count_parameters(trained.model)["total"]),
        status=fitted.status,
    )


def run(settings: Settings, inputs: Inputs) -> MemoryCapacityResult:
    return memory_capacity(settings, seed=inputs.seed, device=inputs.device, log=inputs.log)


def estimate(settings: Settings, models: int) -> float:
    """Steps x the time of one: 2.3 ms + 0.23 ms per token of a 64-sequence batch for a
    recurrent model at H=64, 3.5 times that for attention, one thread (CPU time on a busy
    2-core AMD EPYC, 2026-12-08: lstm 4.4 ms at T=9, 6.2 ms at T=17; transformer 15.7 ms)."""
    steps = 0.8 * settings.num_examples / settings.batch_size * settings.epochs * settings.seeds
    per_pair = [
        0.0023 + 0.00023 * recall_length(n) * settings.batch_size / 64 for n in settings.pairs
    ]
    weight = sum(3.5 if _group(m) == ATTENTION else 1.0 for m in settings.models)
    return 1.2 * steps * sum(per_pair) * weight * settings.state_size / 64  # 1.2: testing


DIAGNOSTIC = Diagnostic(
    name="memory-capacity",
    command=("diagnose", "memory-capacity"),
    help="associative-recall accuracy vs key-value pairs at a fixed state size",
    title="Memory capacity",
    how_to_read=(
        "Each model reads N key-value pairs and then a key; it must answer that key's value. "
        "Every recurrent model has the same hidden size, so the pairs must fit one state of "
        "fixed size.",
        "Where a line falls towards chance, that state is full; the Transformer keeps no "
        "fixed state (its query looks back at the pairs) and is the reference.",
        "A line also stays low when its model has not learnt the task in the training budget: "
        "near 1/N it only guesses among the values it saw. In our runs the Transformer needed "
        "far more steps than the LSTM to start recalling, so more epochs tell a budget from a "
        "capacity.",
    ),
    settings=Settings,
    quick=QUICK,
    result=MemoryCapacityResult,
    run=run,
    reads="none",
    estimate=estimate,
)
