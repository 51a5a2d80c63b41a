"""Synthetic-task sweep: train every model at every sequence length with equal budgets and see
how far each one can carry information (`rnnlab synthetic TASK`).

Each (model, length, seed) cell generates the task's data at that length (`load_synthetic`,
seeded with the cell's seed), trains the preset with `rnnlab.training.fit` (same epochs, batch
size, learning rate and hidden size for every model; no early stopping, the best validation
epoch's weights are kept) and measures on the test split:

- the test metric: accuracy (classification) or MSE (regression, the adding problem);
- the first-step gradient ||dL/dx_1||: for the first `GRAD_BATCH` test examples, the norm of
  each example's own loss gradient w.r.t. its first input (the embedded token, or the raw
  features), averaged over the batch; after training, and for the same model at
  initialisation. It runs in train mode with every dropout off, in float64 (the value easily
  drops below float32's range at long lengths: ~1e-45 at T=200 was measured).

result.json (`"kind": "synthetic"`):
  task, metric ("accuracy" | "mse"), chance (accuracy of guessing, or the MSE of predicting the
  mean), lengths, models, seeds, settings (epochs, num_examples, hidden_dim, batch_size, lr,
  vocab_size, device, threads, split sizes), status ("completed" | "interrupted"),
  total_seconds,
  cells: one object per (model, length, seed): model, length, seed, value (the test metric, also
    under the metric's own name), first_step_grad (trained model), first_step_grad_init (the
    same model before training), train_seconds (training steps only), fit_seconds (with
    validation), epochs_run, best_epoch, test_loss, parameters, status,
  summary: one object per (model, length): model, length, runs, mean, std, first_step_grad_mean,
    first_step_grad_std, first_step_grad_init_mean, train_seconds_mean (std 0 with one seed),
  reading: plain-words sentences ("rnn at chance from T=100").
Figures: accuracy_vs_length.png (mse_vs_length.png for regression), first_step_grad.png.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnlab.config import (
    DataConfig,
    ModelConfig,
    Monitor,
    RunConfig,
    TrainConfig,
    check_positive,
)
from rnnlab.data.batching import collate
from rnnlab.data.encoded import EncodedSplit, EncodedSplits
from rnnlab.data.synthetic import PREFIX, get_task, load_synthetic, split_sizes
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.gradients import gradient_mode, private_copy, sum_loss
from rnnlab.diagnostics.inputs import Inputs, Logger, parse_names
from rnnlab.diagnostics.result import FigureSpec, Result
from rnnlab.errors import check
from rnnlab.formatting import finite, int_list, pct, pm, sci, sig
from rnnlab.layout import RESULT
from rnnlab.models import FAMILIES, count_parameters
from rnnlab.plotting import PALETTE, new_figure
from rnnlab.runs.job import train_and_test
from rnnlab.stats import Z_95, mean_std, wilson_interval
from rnnlab.tables import Table
from rnnlab.training import resolve_device
from rnnlab.training.device import num_threads

GRAD_BATCH = 256
"""Test examples used for the first-step gradient."""
MIN_MARGIN = 0.05
"""Accuracy within max(MIN_MARGIN, two binomial standard errors) of chance reads as chance."""
MIN_SKILL = 0.1
"""Regression: an MSE above (1 - MIN_SKILL) x chance reads as no better than the mean."""


@dataclass(frozen=True)
class Settings:
    task: str = "remember-first"
    """The synthetic task: remember-first, parity, adding, adding-classify, associative-recall,
    selective-copying or induction-head (`rnnlab data list`)."""
    lengths: tuple[int, ...] = (10, 50, 100, 200, 400)
    """Sequence lengths T, each at least 2."""
    models: tuple[str, ...] = ("rnn", "lstm", "gru")
    """Model presets to train at every length."""
    seeds: int = 3
    """Seeds per cell (--seed, --seed+1, ...); a cell's seed sets its data and its weights. A
    cell is above (or at) chance only when every seed is."""
    epochs: int = 10
    """Epochs per cell, no early stopping (the best validation epoch's weights are kept). With
    5, the GRU stayed at 0.74-0.76 accuracy on remember-first at T=10 with each of 3 seeds (its
    update gate, biased to keep its state, first has to learn to write); with 10, 0.95-0.97."""
    num_examples: int = 3000
    """Examples over train/val/test, split 80/10/10."""
    hidden_dim: int = 64
    """Hidden size of every model."""
    gate_bias: float | None = 5.0
    """Initial LSTM forget / GRU update gate bias (None: PyTorch's init). With PyTorch's default
    every model sat at chance from T=50 on remember-first in our runs; a strongly remembering
    start lets the gated cells learn over distance (the vanilla RNN has no gate)."""
    batch_size: int = 64
    """Examples per batch."""
    lr: float = 3e-3
    """Adam learning rate."""
    vocab_size: int = 10
    """Token tasks: number of distinct symbols V (parity's values; the memory tasks' keys,
    values and labels: V classes)."""
    threads: int | None = 1
    """CPU threads for PyTorch: these small models gain nothing from more, and lose a lot on a
    busy machine (None: PyTorch's default)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", get_task(self.task).name)
        check(len(self.lengths) > 0, "no lengths given; pass e.g. --lengths 10,50,100")
        for n in self.lengths:
            check(
                isinstance(n, (int, np.integer)) and n >= 2,
                f"every length must be an integer of at least 2 (got {n}); e.g. --lengths 10,50,100",
            )
        object.__setattr__(self, "lengths", tuple(sorted({int(n) for n in self.lengths})))
        object.__setattr__(self, "models", tuple(parse_names(list(self.models))))
        check(self.seeds >= 1, f"--seeds must be at least 1 (got {self.seeds}); e.g. --seeds 3")
        check(self.epochs >= 1, f"epochs must be at least 1 (got {self.epochs}); e.g. --epochs 5")
        check(self.hidden_dim >= 1, f"hidden_dim must be positive (got {self.hidden_dim})")
        check(self.num_examples > 0, f"num_examples must be positive (got {self.num_examples})")
        check(self.vocab_size >= 2, f"vocab_size must be at least 2 (got {self.vocab_size})")
        check_positive(self, "batch_size", "lr", "threads")
        for length in self.lengths:
            get_task(self.task).check(length, self.vocab_size)


QUICK = Settings(lengths=(10, 50), seeds=3, epochs=10, num_examples=3000, hidden_dim=64)
"""T=10 (every model can carry one number that far) and T=50 (the vanilla RNN cannot, the
gated cells can), 3 seeds each; T=100 and beyond are the full preset's."""


# ----- results ---------------------------------------------------------------------------------
@dataclass
class SyntheticCell:
    """One trained (model, length, seed)."""

    model: str
    length: int
    seed: int
    value: float | None
    """Test accuracy, or test MSE for regression."""
    first_step_grad: float | None
    """Mean over test examples of ||d loss_i / d x_{i,1}||, after training."""
    first_step_grad_init: float | None
    """The same at initialisation (before any training step)."""
    train_seconds: float
    fit_seconds: float
    epochs_run: int
    best_epoch: int | None
    test_loss: float | None
    parameters: int
    status: str


@dataclass
class SyntheticSummary:
    """Mean and std over seeds of one (model, length)."""

    model: str
    length: int
    runs: int
    mean: float | None
    std: float | None
    first_step_grad_mean: float | None
    first_step_grad_std: float | None
    first_step_grad_init_mean: float | None
    train_seconds_mean: float | None
    interval: list[float] | None = None
    """95% interval of the mean: Wilson over the test examples of every seed (accuracy),
    mean ± 1.96 std / sqrt(seeds) (MSE with several seeds), else None."""


@dataclass
class SyntheticResult(Result):
    kind = "synthetic"

    task: str
    metric: str
    chance: float
    lengths: list[int]
    models: list[str]
    seeds: list[int]
    settings: dict[str, Any]
    cells: list[SyntheticCell] = field(default_factory=list)
    summary: list[SyntheticSummary] = field(default_factory=list)
    reading: list[str] = field(default_factory=list)
    status: str = "completed"
    total_seconds: float = 0.0

    # -- JSON: each cell also carries its value under the metric's own name ------------------
    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for cell in out["cells"]:
            cell[self.metric] = cell["value"]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, where: str = RESULT) -> SyntheticResult:
        if isinstance(raw, dict) and isinstance(raw.get("cells"), list):
            metric = raw.get("metric")
            raw = {
                **raw,
                "cells": [{k: v for k, v in c.items() if k != metric} for c in raw["cells"]],
            }
        return super().from_dict(raw, where=where)

    # -- derived ------------------------------------------------------------------------------
    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    def summary_for(self, model: str, length: int) -> SyntheticSummary | None:
        return next((s for s in self.summary if s.model == model and s.length == length), None)

    def summarize(self) -> None:
        """Fill `summary` and `reading` from `cells`."""
        self.summary = []
        for model in self.models:
            for length in self.lengths:
                cells = [c for c in self.cells if c.model == model and c.length == length]
                if not cells:
                    continue
                value = mean_std([c.value for c in cells])
                grad = mean_std([c.first_step_grad for c in cells])
                init = mean_std([c.first_step_grad_init for c in cells])[0]
                secs = mean_std([c.train_seconds for c in cells])[0]
                self.summary.append(
                    SyntheticSummary(
                        model, length, len(cells), *value, *grad, init, secs,
                        self._interval(value[0], value[1], len(cells)),
                    )
                )  # fmt: skip
        self.reading = read_result(self)

    def _interval(self, mean: float | None, std: float | None, runs: int) -> list[float] | None:
        if mean is None:
            return None
        if self.metric == "accuracy":
            n = int(self.settings.get("test_examples") or 0) * runs
            return list(wilson_interval(round(mean * n), n)) if n else None
        if runs > 1 and std is not None:
            half = Z_95 * std / math.sqrt(runs)
            return [mean - half, mean + half]
        return None

    def at_chance(self, mean: float | None) -> bool | None:
        """Whether a mean test metric is indistinguishable from chance (None: no value)."""
        if mean is None:
            return None
        if self.metric == "accuracy":
            n = int(self.settings.get("test_examples") or 0)
            noise = 2 * math.sqrt(self.chance * (1 - self.chance) / n) if n else 0.0
            return mean <= self.chance + max(MIN_MARGIN, noise)
        return mean >= (1 - MIN_SKILL) * self.chance

    # -- output -------------------------------------------------------------------------------
    def tables(self) -> list[Table]:
        rows = []
        name = "test accuracy" if self.metric == "accuracy" else "test MSE"
        for model in self.models:
            values, grads, inits, secs = [], [], [], []
            for length in self.lengths:
                s = self.summary_for(model, length)
                values.append(_with_interval(s) if s else pm(None, None))
                grads.append(sci(s.first_step_grad_mean, 1) if s else sci(None))
                inits.append(sci(s.first_step_grad_init_mean, 1) if s else sci(None))
                secs.append(pm(s.train_seconds_mean, None, ".1f") if s else pm(None, None))
            rows.append([model, name, *values])
            rows.append(["", "||dL/dx_1|| trained", *grads])
            rows.append(["", "||dL/dx_1|| at init", *inits])
            rows.append(["", "train seconds", *secs])
        st = self.settings
        title = (
            f"{PREFIX}{self.task}: {name} by length ({st['epochs']} epochs, "
            f"{st['num_examples']} examples, hidden {st['hidden_dim']}, batch "
            f"{st['batch_size']}, lr {st['lr']:g}, {len(self.seeds)} seed(s); "
            f"chance {self.chance:.3g})"
        )
        return [
            Table(
                title, ["model", "", *(f"T={n}" for n in self.lengths)], rows, list(self.reading),
                [False, False, *([True] * len(self.lengths))],
                row_ids=[f"synthetic-{self.task}-{m}-{i}" for m in self.models for i in range(4)],
            )
        ]  # fmt: skip

    def figures(self) -> list[FigureSpec]:
        show = pct if self.higher_is_better else sig
        per_model = "; ".join(
            f"{m} " + ", ".join(f"{show(s.mean)} at T={s.length}" for s in self.summary
                                if s.model == m and s.mean is not None)
            for m in self.models
        )  # fmt: skip
        caption = [f"{self.task}, test {self.metric}: {per_model}."]
        what = "Guessing scores" if self.higher_is_better else "Predicting the mean gives an MSE of"
        caption.append(f"{what} {show(self.chance)}.")
        if self.reading:
            caption.append("In short: " + "; ".join(self.reading) + ".")
        longest = max(self.lengths)
        at_longest = [
            f"{s.model} {s.first_step_grad_mean:.2e}"
            for s in self.summary
            if s.length == longest and s.first_step_grad_mean is not None
        ]
        grad_caption = [
            "Mean norm of the gradient of each example's loss with respect to its first input: "
            "how much the first step, the one that decides the label, can still learn."
        ] + ([f"At T={longest}: " + ", ".join(at_longest) + "."] if at_longest else [])
        name = "accuracy" if self.higher_is_better else "MSE"
        return [
            FigureSpec(f"{self.metric}_vs_length.png", f"{self.task}: test {name} vs sequence length",
                       caption, functools.partial(self._draw, "mean")),
            FigureSpec("first_step_grad.png", f"{self.task}: gradient reaching the first step",
                       grad_caption, functools.partial(self._draw, "first_step_grad_mean")),
        ]  # fmt: skip

    def _draw(self, attr: str) -> Any:
        palette = {
            m: FAMILIES[m].colour if m in FAMILIES else PALETTE[(i + 3) % len(PALETTE)]
            for i, m in enumerate(self.models)
        }
        several = len(self.seeds) > 1
        name = "accuracy" if self.metric == "accuracy" else "MSE"
        fig, axes = new_figure(1, 1, width=6.0, height=4.0)
        ax = axes[0][0]
        for model in self.models:
            rows = [s for s in self.summary if s.model == model]
            x = [s.length for s in rows]
            y = [_nan(getattr(s, attr)) for s in rows]
            std_attr = "std" if attr == "mean" else "first_step_grad_std"
            if attr != "mean":  # log scale: only positive values can be drawn
                x, y, rows = _positive(x, y, rows)
            if attr == "mean" and any(s.interval for s in rows):  # the 95% intervals
                err: Any = [
                    [max(0.0, s.mean - s.interval[0]) if s.interval and s.mean is not None else 0.0 for s in rows],
                    [max(0.0, s.interval[1] - s.mean) if s.interval and s.mean is not None else 0.0 for s in rows],
                ]  # fmt: skip
                ax.errorbar(
                    x, y, yerr=err, marker="o", capsize=3, label=model, color=palette[model]
                )
            elif several:
                err = [getattr(s, std_attr) or 0.0 for s in rows]
                if attr != "mean":  # keep the lower bar above zero on a log axis
                    err = [[min(e, 0.99 * v) for e, v in zip(err, y, strict=True)], err]
                ax.errorbar(
                    x, y, yerr=err, marker="o", capsize=3, label=model, color=palette[model]
                )
            else:
                ax.plot(x, y, marker="o", label=model, color=palette[model])
            if attr != "mean":  # the same at initialisation, dashed
                rows = [s for s in self.summary if s.model == model]
                x0 = [s.length for s in rows]
                y0 = [_nan(s.first_step_grad_init_mean) for s in rows]
                x0, y0, _ = _positive(x0, y0, rows)
                ax.plot(x0, y0, marker=".", linestyle="--", color=palette[model], alpha=0.6,
                        label=f"{model} at init")  # fmt: skip
        if attr == "mean":
            ax.axhline(self.chance, color="gray", linestyle="--", linewidth=1, label="chance")
            title, ylabel = f"{PREFIX}{self.task}: test {name} vs length", f"test {name}"
        else:
            ax.set_yscale("log")
            title = f"{PREFIX}{self.task}: gradient reaching t=1"
            ylabel = "||dL/dx_1|| (mean over test examples)"
        if len(self.lengths) > 1 and self.lengths[-1] / self.lengths[0] > 8:
            ax.set_xscale("log")
        ax.set_xticks(self.lengths, [str(n) for n in self.lengths])
        ax.minorticks_off()
        ax.set_xlabel("sequence length T")
        ax.set_ylabel(ylabel)
        bars = "95% intervals" if attr == "mean" else "± std"
        seeds = f"\nmean over {len(self.seeds)} seeds, {bars}" if several else ""
        if not several and attr == "mean":
            seeds = "\nbars: 95% intervals"
        ax.set_title(title + seeds, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        return fig


def _with_interval(s: SyntheticSummary) -> str:
    """'0.812 (0.790–0.832)', or mean ± std without an interval."""
    if s.mean is not None and s.interval is not None:
        return f"{s.mean:.3f} ({s.interval[0]:.3f}–{s.interval[1]:.3f})"
    return pm(s.mean, s.std)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _positive(
    x: list[int], y: list[float], rows: list[Any]
) -> tuple[list[int], list[float], list[Any]]:
    keep = [i for i, v in enumerate(y) if v > 0 and math.isfinite(v)]
    return [x[i] for i in keep], [y[i] for i in keep], [rows[i] for i in keep]


def seeds_at_chance(result: SyntheticResult, model: str, length: int) -> bool | None:
    """The seed rule for one (model, length): True when every seed's test value is at chance,
    False when none is, None when the seeds disagree (not settled)."""
    flags = {
        bool(result.at_chance(c.value))
        for c in result.cells
        if c.model == model and c.length == length and c.value is not None
    }
    return flags.pop() if len(flags) == 1 else None


def read_result(result: SyntheticResult) -> list[str]:
    """Plain words per model: from which length it is at chance, or how well it holds out."""
    lines = []
    unit = "accuracy" if result.metric == "accuracy" else "MSE"
    chance_words = "at chance" if result.metric == "accuracy" else "no better than the mean"
    for model in result.models:
        rows = [s for s in result.summary if s.model == model and s.mean is not None]
        if not rows:
            continue
        settled = [seeds_at_chance(result, model, s.length) for s in rows]
        unsettled = [s.length for s, f in zip(rows, settled, strict=True) if f is None]
        if unsettled:  # some seeds at chance, others not: no reading for that length
            lines.append(
                f"{model}: not settled with {len(result.seeds)} seeds at "
                f"T={int_list(unsettled)} (some seeds at chance, others not)"
            )
        rows = [s for s, f in zip(rows, settled, strict=True) if f is not None]
        flags = [bool(f) for f in settled if f is not None]
        lengths = [s.length for s in rows]
        if not rows:
            continue
        if all(flags):
            every = "every other length" if unsettled else "every length"
            lines.append(f"{model} {chance_words} at {every} (T={int_list(lengths)})")
        elif not any(flags):
            sign = 1.0 if result.higher_is_better else -1.0
            worst = min(rows, key=lambda s: sign * float(s.mean or 0.0))
            lines.append(
                f"{model} beats chance at {'every other' if unsettled else 'every'} length "
                f"(worst {unit} {worst.mean:.3f} at "
                f"T={worst.length})"
            )
        else:
            first = next(i for i, f in enumerate(flags) if f)
            if all(flags[first:]):
                lines.append(f"{model} {chance_words} from T={lengths[first]}")
            else:
                bad = [n for n, f in zip(lengths, flags, strict=True) if f]
                lines.append(f"{model} {chance_words} at T={int_list(bad)} only")
    longest = max((s.length for s in result.summary), default=None)
    grads = [
        (s.model, s.first_step_grad_mean)
        for s in result.summary
        if s.length == longest and s.first_step_grad_mean is not None
    ]
    if len(grads) > 1:
        parts = ", ".join(f"{m} {sci(g, 1)}" for m, g in grads)
        lines.append(f"gradient reaching t=1 at T={longest}: {parts}")
    return lines


# ----- the measurement -------------------------------------------------------------------------
def first_step_gradient(
    model: nn.Module, split: EncodedSplit, *, batch_size: int = GRAD_BATCH
) -> float | None:
    """Mean over the first `batch_size` examples of ||d loss_i / d x_{i,1}|| (x = model.embed).

    Runs on a float64 copy of the model (the caller's model is untouched), in train mode with
    dropout off; each row's gradient is that example's own loss gradient (`sum_loss`).
    """
    param = next(model.parameters())
    twin = private_copy(model, param.device, torch.float64)
    rows = np.arange(min(batch_size, len(split)))
    batch = collate(split, rows).to(param.device)
    tokens = batch.tokens.double() if batch.tokens.is_floating_point() else batch.tokens
    with gradient_mode(twin):
        x = twin.embed(tokens)  # type: ignore[operator]  # (B, T, E)
        if not x.requires_grad:  # continuous inputs: embed is the identity
            x = x.detach().clone().requires_grad_(True)
        x.retain_grad()
        logits = twin.forward_embedded(x, batch.lengths)  # type: ignore[operator]  # (B, C)
        sum_loss(twin, logits, batch.labels).backward()
    assert x.grad is not None
    first = x.grad[:, 0, :]  # (B, E)
    return finite(first.norm(dim=1).mean().item())


@dataclass
class SweepProgress:
    """Passed to the progress callback before every cell (cell None) and after it."""

    done: int
    total: int
    model: str
    length: int
    seed: int
    cell: SyntheticCell | None = None


Progress = Callable[[SweepProgress], None]


def cell_config(config: RunConfig, length: int, seed: int) -> RunConfig:
    """The config of one cell: its data at `length`, its data and weights drawn from `seed`."""
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, length=length, seed=seed),
        train=dataclasses.replace(config.train, seed=seed),
    )


def _train_cell(config: RunConfig, model_name: str, splits: EncodedSplits) -> SyntheticCell:
    """One (model, length, seed), trained and tested by the job runner's in-memory path; the
    first-step gradient measured before training and after."""
    at_init: list[float | None] = []
    trained = train_and_test(
        config, splits, name=model_name,
        before_fit=lambda model: at_init.append(first_step_gradient(model, splits.test)),
    )  # fmt: skip
    fitted, test = trained.fit, trained.test
    value = None if test is None else (test.accuracy if test.task == "classification" else test.mse)
    return SyntheticCell(
        model=model_name,
        length=config.data.length,
        seed=config.train.seed,
        value=finite(value),
        first_step_grad=first_step_gradient(trained.model, splits.test),
        first_step_grad_init=at_init[0],
        train_seconds=float(sum(r["train_seconds"] for r in fitted.history)),
        fit_seconds=float(fitted.seconds),
        epochs_run=fitted.epochs_run,
        best_epoch=fitted.best_epoch,
        test_loss=None if test is None else finite(test.loss),
        parameters=int(count_parameters(trained.model)["total"]),
        status=fitted.status,
    )


def synthetic_sweep(
    settings: Settings | None = None,
    *,
    seed: int = 0,
    device: str = "auto",
    progress: Progress | None = None,
    **changes: Any,
) -> SyntheticResult:
    """Train every model at every length (and seed) on the task with equal budgets.

    Everything is checked before the first cell trains. Ctrl-C stops after the cell in
    progress (its best weights so far are measured) and returns the cells done, with status
    "interrupted".
    """
    s = dataclasses.replace(settings or Settings(), **changes)
    spec = get_task(s.task)
    seeds = list(range(seed, seed + s.seeds))
    data = DataConfig(
        dataset=PREFIX + spec.name, num_examples=s.num_examples, vocab_size=s.vocab_size, seed=seed
    )
    sizes = split_sizes(s.num_examples, data.val_fraction, data.test_fraction)
    monitor: Monitor = "val_loss" if spec.task == "regression" else "val_accuracy"
    train = TrainConfig(
        epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, patience=None, monitor=monitor,
        device=device, threads=s.threads, progress=False,
    )  # fmt: skip
    config = RunConfig(data, ModelConfig(hidden_dim=s.hidden_dim, gate_bias=s.gate_bias), train)
    resolve_device(device)  # an unavailable device fails now, not after the first cell
    result = SyntheticResult(
        task=spec.name,
        metric="accuracy" if spec.task == "classification" else "mse",
        chance=spec.chance(s.vocab_size),
        lengths=list(s.lengths),
        models=list(s.models),
        seeds=seeds,
        settings={
            "epochs": s.epochs, "num_examples": s.num_examples, "hidden_dim": s.hidden_dim,
            "batch_size": s.batch_size, "lr": s.lr,
            "vocab_size": s.vocab_size if spec.inputs == "tokens" else None, "device": device,
            "threads": s.threads, "gate_bias": s.gate_bias, "train_examples": sizes[0],
            "val_examples": sizes[1], "test_examples": sizes[2],
            "grad_examples": min(GRAD_BATCH, sizes[2]),
        },
    )  # fmt: skip
    start = time.perf_counter()
    total = len(s.lengths) * len(s.models) * len(seeds)
    done = 0
    try:
        with num_threads(s.threads):  # for the gradients and the test pass too, not only fit's
            for cell_seed in seeds:
                for length in s.lengths:
                    cfg = cell_config(config, length, cell_seed)
                    splits = load_synthetic(cfg.data)
                    for name in s.models:
                        if progress:
                            progress(SweepProgress(done, total, name, length, cell_seed))
                        cell = _train_cell(cfg, name, splits)
                        result.cells.append(cell)
                        done += 1
                        if progress:
                            progress(SweepProgress(done, total, name, length, cell_seed, cell))
                        if cell.status == "interrupted":
                            raise KeyboardInterrupt
    except KeyboardInterrupt:
        result.status = "interrupted"
    result.total_seconds = time.perf_counter() - start
    result.summarize()
    return result


def log_cells(log: Logger) -> Progress:
    """A progress callback that logs one line per finished cell."""

    def report(event: SweepProgress) -> None:
        cell = event.cell
        if cell is None:
            return
        value = "-" if cell.value is None else f"{cell.value:.3f}"
        grad = "-" if cell.first_step_grad is None else f"{cell.first_step_grad:.1e}"
        log(
            f"{event.model} T={event.length} seed {event.seed}: test {value}, ||dL/dx_1|| {grad}, "
            f"{cell.train_seconds:.1f} s ({event.done}/{event.total})"
        )

    return report


def run(settings: Settings, inputs: Inputs) -> SyntheticResult:
    return synthetic_sweep(
        settings, seed=inputs.seed, device=inputs.device,
        progress=log_cells(inputs.log) if inputs.log else None,
    )  # fmt: skip


def estimate(settings: Settings, models: int) -> float:
    steps = 0.8 * settings.num_examples * settings.epochs * settings.seeds * sum(settings.lengths)
    return len(settings.models) * steps * settings.hidden_dim / 64 * 2.5e-6  # make demo, AMD


DIAGNOSTIC = Diagnostic(
    name="synthetic",
    command=("synthetic", None),
    help="train every model at every length on a synthetic memory task",
    title="Synthetic tasks",
    how_to_read=(
        "Tasks built to need memory over a known distance: e.g. remember-first labels a "
        "sequence by the sign of its first input, so the model must carry one number to the end.",
        "Chance level is the accuracy of guessing; a model at chance for long sequences "
        "cannot carry the information that far.",
    ),
    settings=Settings,
    quick=QUICK,
    result=SyntheticResult,
    run=run,
    reads="none",
    estimate=estimate,
    positional=("task",),
)
