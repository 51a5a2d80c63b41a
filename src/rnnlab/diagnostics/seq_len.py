"""Accuracy vs maximum sequence length: train every model at every truncation length with
otherwise equal settings, and record test accuracy and training time per cell.

The corpus is encoded once at full length; each length cuts it with
`rnnlab.data.pipeline.apply_length_policy` (train, val and test alike), so a cell trains and
tests on texts cut to the same length. With several seeds each cell reports mean ± std.

result.json (`"kind": "seq_len"`; earlier versions wrote `"length_sweep"`, read the same):
  dataset, lengths, models, seeds, settings (epochs, batch_size, lr, limit, embed_dim,
  hidden_dim, device), config (the base RunConfig as a dict),
  cells: one object per (model, length, seed): model, max_len, seed, test_accuracy,
    test_macro_f1, test_loss, best_val_accuracy, epochs_run, train_seconds (training steps
    only), fit_seconds (with validation), parameters, accuracy_by_length, status,
  summary: one object per (model, length): model, max_len, runs, accuracy_mean, accuracy_std,
    train_seconds_mean, train_seconds_std (std is 0 with one seed).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rnnlab.config import RunConfig, check_positive
from rnnlab.data.encoded import EncodedSplits
from rnnlab.data.pipeline import apply_length_policy, load_full_splits
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.inputs import Inputs, Logger, parse_names
from rnnlab.diagnostics.result import FigureSpec, Result
from rnnlab.diagnostics.sweep_runs import (
    Point,
    TrainedCell,
    draw_points,
    interval_text,
    limit_training,
    noise_readings,
    point,
    summary_points,
    sweep_cell,
    sweep_config,
    sweep_settings,
    trend,
)
from rnnlab.errors import check
from rnnlab.formatting import pm
from rnnlab.models.families import colors
from rnnlab.plotting import nan_for_none, new_figure
from rnnlab.stats import mean_std
from rnnlab.tables import Table
from rnnlab.training.metrics import length_edges


@dataclass(frozen=True)
class Settings:
    lengths: tuple[int, ...] = (50, 100, 200, 400)
    """Maximum sequence lengths to train at."""
    models: tuple[str, ...] = ("rnn", "lstm")
    """Model presets to train at every length."""
    seeds: int = 3
    """Repeat every cell with this many seeds (--seed, --seed+1, ...): mean ± std; a change
    from the first to the last setting is a finding only under the seed rule (rnnlab study
    --help)."""
    epochs: int | None = None
    """Epochs per cell (None: the training settings' --epochs)."""
    limit: int | None = None
    """Training examples per cell (None: all of the training split); the validation and test
    splits stay whole, so every cell is scored on every test text."""

    def __post_init__(self) -> None:
        check_positive(self, "lengths", "seeds", "epochs", "limit")
        object.__setattr__(self, "lengths", tuple(sorted(set(self.lengths))))
        parse_names(list(self.models))


QUICK = Settings(lengths=(50, 100, 200), models=("rnn", "lstm"), seeds=3, epochs=2, limit=4_000)
"""3 seeds of 4,000 training reviews and 2 epochs per cell, each scored on all 2,490 test texts
(95% interval about ±1.8 points); 1,000 reviews and 2 epochs left the cells near chance."""


@dataclass
class LengthCell(TrainedCell):
    max_len: int = 0


@dataclass
class LengthSummary:
    model: str
    max_len: int
    runs: int
    accuracy_mean: float | None
    accuracy_std: float | None
    train_seconds_mean: float | None
    train_seconds_std: float | None
    accuracy_interval: list[float] | None = None
    """95%: Wilson with one seed, mean ± 1.96 std / sqrt(seeds) with several."""
    test_examples: int = 0
    """Test texts behind the mean (over all seeds)."""


@dataclass
class SeqLenResult(Result):
    kind = "seq_len"

    dataset: str
    lengths: list[int]
    models: list[str]
    seeds: list[int]
    settings: dict[str, Any]
    config: dict[str, Any]
    cells: list[LengthCell] = field(default_factory=list)
    summary: list[LengthSummary] = field(default_factory=list)

    def summarize(self) -> None:
        self.summary = []
        for model in self.models:
            for length in self.lengths:
                cells = [c for c in self.cells if c.model == model and c.max_len == length]
                if not cells:
                    continue
                acc = mean_std([c.test_accuracy for c in cells])
                secs = mean_std([c.train_seconds for c in cells])
                p = point(length, cells)
                self.summary.append(
                    LengthSummary(
                        model, length, len(cells), *acc, *secs,
                        list(p.interval) if p else None, p.examples if p else 0,
                    )
                )  # fmt: skip

    def points(self, model: str) -> list[Point]:
        return summary_points(self.summary, model, "max_len")

    def _cell(self, model: str, length: int) -> LengthSummary | None:
        return next((x for x in self.summary if x.model == model and x.max_len == length), None)

    def tables(self) -> list[Table]:
        rows = []
        for model in self.models:
            acc, secs = [], []
            by_length = {p.setting: p for p in self.points(model)}
            for length in self.lengths:
                s = self._cell(model, length)
                acc.append(interval_text(by_length.get(length)))
                secs.append(
                    pm(s.train_seconds_mean, s.train_seconds_std, ".1f") if s else pm(None, None)
                )
            rows.append([model, "test accuracy", *acc])
            rows.append(["", "train seconds", *secs])
        st = self.settings
        title = (
            f"Mean test accuracy by max_len ({self.dataset}, {st['epochs']} epoch(s), batch "
            f"{st['batch_size']}, limit {st['limit']}, {len(self.seeds)} seed(s))"
        )
        return [
            Table(
                title, ["model", "", *(f"L={n}" for n in self.lengths)], rows,
                ["test accuracy: mean (95% interval: Wilson with one seed, over the seeds with more)"],
                numeric=[False, False, *([True] * len(self.lengths))],
                row_ids=[f"L-{m}{'-time' if i % 2 else ''}" for m in self.models for i in range(2)],
            )
        ]  # fmt: skip

    def figures(self) -> list[FigureSpec]:
        series = {
            m: [(s.max_len, s.accuracy_mean) for s in self.summary if s.model == m and s.accuracy_mean is not None]
            for m in self.models
        }  # fmt: skip
        caption = trend(series, "max_len")
        caption += noise_readings(self.cells, self.models, "max_len", "L")
        grow = []
        for m in self.models:
            times = [s.train_seconds_mean for s in self.summary if s.model == m]
            if len(times) >= 2 and times[0] is not None and times[-1] is not None:
                grow.append(f"{m} {times[0]:.1f} s to {times[-1]:.1f} s")
        if grow:
            caption.append("Training time grows with max_len: " + ", ".join(grow) + ".")
        return [
            FigureSpec(
                "accuracy_vs_length.png", "Test accuracy and training time vs max_len (sweep)",
                caption, self._draw,
            )
        ]  # fmt: skip

    def _draw(self) -> Any:
        fig, axes = new_figure(1, 2, f"accuracy vs max sequence length: {self.dataset}")
        palette = colors(self.models, self.models)
        for model in self.models:
            rows = [s for s in self.summary if s.model == model]
            x = [s.max_len for s in rows]
            draw_points(axes[0][0], self.points(model), model, palette[model])
            axes[0][1].plot(x, nan_for_none([s.train_seconds_mean for s in rows]), marker="o",
                            label=model, color=palette[model])  # fmt: skip
        for ax, name in (
            (axes[0][0], "test accuracy (95% interval)"),
            (axes[0][1], "training seconds"),
        ):
            ax.set_xscale("log", base=2)
            ax.set_xticks(self.lengths, [str(n) for n in self.lengths])
            ax.set_xlabel("max sequence length (tokens kept)")
            ax.set_title(name, fontsize=10)
            ax.legend(fontsize=8)
        return fig


def seq_len_sweep(
    config: RunConfig,
    settings: Settings | None = None,
    *,
    seed: int = 0,
    full: EncodedSplits | None = None,
    log: Logger | None = None,
    **changes: Any,
) -> SeqLenResult:
    """Train each model at each max length (and seed) with config's other settings; `full`
    reuses whole-text splits."""
    s = dataclasses.replace(settings or Settings(), **changes)
    check(
        not config.data.dataset.startswith("synthetic:"),
        "sweep seq-len cuts real texts; for synthetic tasks train with --length instead",
    )
    config = sweep_config(config, epochs=s.epochs)
    full = full if full is not None else load_full_splits(config.data)
    full = limit_training(full, s.limit, config.data.seed)  # the same texts at every length
    seeds = [seed + i for i in range(s.seeds)]
    result = SeqLenResult(
        str(full.info.get("dataset", config.data.dataset)), list(s.lengths), list(s.models),
        seeds, sweep_settings(config, full), config.to_dict(),
    )  # fmt: skip
    for length in s.lengths:
        splits = apply_length_policy(full, dataclasses.replace(config.data, max_len=length))
        for model in s.models:
            for cell_seed in seeds:
                cell = sweep_cell(
                    config, model, splits, seed=cell_seed, length_edges=length_edges(length),
                    log=log, label=f"seq-len sweep: {model}, max_len {length}",
                )  # fmt: skip
                result.cells.append(LengthCell(**dataclasses.asdict(cell), max_len=length))
    result.summarize()
    return result


def run(settings: Settings, inputs: Inputs) -> SeqLenResult:
    return seq_len_sweep(inputs.config, settings, seed=inputs.seed, log=inputs.log)


MEAN_TOKENS = 230
"""Mean tokens per IMDB review; texts shorter than a length cap cost their own length."""


def estimate(settings: Settings, models: int) -> float:
    texts = 0.8 * (settings.limit or 20_000) * (settings.epochs or 5) * settings.seeds
    tokens = sum(min(n, MEAN_TOKENS) for n in settings.lengths)
    return len(settings.models) * texts * tokens * 6.8e-6  # make demo, 2-core AMD EPYC, 2026-12-07


DIAGNOSTIC = Diagnostic(
    name="seq-len",
    command=("sweep", "seq-len"),
    help="test accuracy and training time vs max sequence length",
    title="Accuracy vs sequence length",
    how_to_read=(
        "Test accuracy of models trained with different truncation lengths (max_len).",
        "Longer inputs carry more evidence, but a model that cannot carry information far "
        "gains little or even loses accuracy as max_len grows.",
    ),
    settings=Settings,
    quick=QUICK,
    result=SeqLenResult,
    run=run,
    reads="training",
    estimate=estimate,
    legacy_kinds=("length_sweep",),
)
