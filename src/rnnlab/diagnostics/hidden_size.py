"""Hidden size vs accuracy: the fixed-memory bottleneck.

A recurrent encoder squeezes a whole review into one hidden vector of H numbers. Training the
same model at several hidden sizes (otherwise equal settings) shows what that memory buys,
overall and per review-length bucket (`rnnlab.training.metrics.accuracy_by_length`): long
reviews are where a small state runs out of room first.

result.json (`"kind": "hidden_size"`; earlier versions wrote `"capacity"`, read the same):
  dataset, sizes, models, seeds, max_len, edges (length-bucket edges), settings, config,
  cells: one object per (model, size, seed): hidden_dim plus everything a seq-len cell has
    (test_accuracy, ..., parameters, accuracy_by_length: [{lo, hi, count, accuracy}]),
  summary: one object per (model, size): model, hidden_dim, runs, parameters, accuracy_mean,
    accuracy_std, train_seconds_mean, bucket_accuracy (mean over seeds per bucket, aligned
    with `edges`; null for an empty bucket).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rnnlab.config import RunConfig, check_positive
from rnnlab.data import load_splits
from rnnlab.data.encoded import EncodedSplits
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.inputs import Inputs, Logger, parse_names
from rnnlab.diagnostics.result import FigureSpec, NotApplicable, Result
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
from rnnlab.formatting import pct, pm
from rnnlab.models import get_preset, preset_family
from rnnlab.models.families import colors
from rnnlab.plotting import colormap, nan_for_none, new_figure
from rnnlab.stats import mean_std
from rnnlab.tables import Table
from rnnlab.training.metrics import length_edges


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...] = (16, 32, 64, 128, 256)
    """Hidden sizes H to train at."""
    models: tuple[str, ...] = ("lstm",)
    """Model presets to train at every size."""
    seeds: int = 3
    """Repeat every cell with this many seeds (--seed, --seed+1, ...): mean ± std; a change
    from the first to the last setting is a finding only under the seed rule (rnnlab study
    --help)."""
    epochs: int | None = None
    """Epochs per cell (None: the training settings' --epochs)."""
    limit: int | None = None
    """Training examples per cell (None: all of the training split); the validation and test
    splits stay whole, so every cell is scored on every test text."""
    max_len: int | None = None
    """Tokens kept per text (None: the data settings' --max-len)."""

    def __post_init__(self) -> None:
        check_positive(self, "sizes", "seeds", "epochs", "limit", "max_len")
        object.__setattr__(self, "sizes", tuple(sorted(set(self.sizes))))
        parse_names(list(self.models))


QUICK = Settings(sizes=(4, 16, 128), seeds=3, epochs=2, limit=8_000, max_len=100)
"""8,000 training reviews cut to 100 tokens, 2 epochs, 3 seeds, sizes far enough apart for a
difference to show beyond the ±1.8-point interval of the 2,490 test texts."""


@dataclass
class HiddenSizeCell(TrainedCell):
    hidden_dim: int = 0


@dataclass
class HiddenSizeSummary:
    model: str
    hidden_dim: int
    runs: int
    parameters: int
    accuracy_mean: float | None
    accuracy_std: float | None
    train_seconds_mean: float | None
    bucket_accuracy: list[float | None]
    accuracy_interval: list[float] | None = None
    """95%: Wilson with one seed, mean ± 1.96 std / sqrt(seeds) with several."""
    test_examples: int = 0
    """Test texts behind the mean (over all seeds)."""


@dataclass
class HiddenSizeResult(Result):
    kind = "hidden_size"

    dataset: str
    sizes: list[int]
    models: list[str]
    seeds: list[int]
    max_len: int | None
    edges: list[int]
    settings: dict[str, Any]
    config: dict[str, Any]
    cells: list[HiddenSizeCell] = field(default_factory=list)
    summary: list[HiddenSizeSummary] = field(default_factory=list)

    def bucket_names(self) -> list[str]:
        edges = self.edges
        return [
            f"{lo}-{edges[i + 1] - 1}" if i + 1 < len(edges) else f"{lo}+"
            for i, lo in enumerate(edges)
        ]

    def summarize(self) -> None:
        self.summary = []
        for model in self.models:
            for size in self.sizes:
                cells = [c for c in self.cells if c.model == model and c.hidden_dim == size]
                if not cells:
                    continue
                buckets = [
                    mean_std([c.accuracy_by_length[i]["accuracy"] for c in cells])[0]
                    for i in range(len(self.edges))
                ]
                p = point(size, cells)
                self.summary.append(
                    HiddenSizeSummary(
                        model, size, len(cells), cells[0].parameters,
                        *mean_std([c.test_accuracy for c in cells]),
                        mean_std([c.train_seconds for c in cells])[0], buckets,
                        list(p.interval) if p else None, p.examples if p else 0,
                    )
                )  # fmt: skip

    def points(self, model: str) -> list[Point]:
        return summary_points(self.summary, model, "hidden_dim")

    def tables(self) -> list[Table]:
        names = self.bucket_names()
        counts = [b["count"] for b in self.cells[0].accuracy_by_length] if self.cells else []
        bucket_cols = [f"{n} ({counts[i]})" if i < len(counts) else n for i, n in enumerate(names)]
        points = {(m, p.setting): p for m in self.models for p in self.points(m)}
        rows = [
            [s.model, str(s.hidden_dim), f"{s.parameters:,}", interval_text(points.get((s.model, s.hidden_dim))),
             *(pm(a, None) for a in s.bucket_accuracy), pm(s.train_seconds_mean, None, ".1f")]
            for s in self.summary
        ]  # fmt: skip
        st = self.settings
        title = (
            f"Mean test accuracy by hidden size ({self.dataset}, max_len {self.max_len}, "
            f"{st['epochs']} epochs, limit {st['limit']}, {len(self.seeds)} seed(s))"
        )
        columns = ["model", "hidden", "parameters", "test accuracy", *bucket_cols, "train s"]
        return [
            Table(
                title, columns, rows,
                ["test accuracy: mean (95% interval); length buckets in tokens (test texts per "
                 "bucket in brackets)"],
                [False, *([True] * (len(columns) - 1))],
                row_ids=[f"H-{s.model}-{s.hidden_dim}" for s in self.summary],
            )
        ]  # fmt: skip

    def figures(self) -> list[FigureSpec]:
        series = {
            m: [(s.hidden_dim, s.accuracy_mean) for s in self.summary if s.model == m and s.accuracy_mean is not None]
            for m in self.models
        }  # fmt: skip
        longest = [
            f"{s.model} H={s.hidden_dim} {pct(s.bucket_accuracy[-1])}"
            for s in self.summary
            if s.bucket_accuracy and s.bucket_accuracy[-1] is not None
        ]
        by_length = []
        if longest and self.edges:
            by_length = [
                "Accuracy per review-length bucket, one line per hidden size.",
                f"On the longest reviews (≥{self.edges[-1]:,} tokens): " + ", ".join(longest) + ".",
            ]
        caption = trend(series, "H")
        caption += noise_readings(self.cells, self.models, "hidden_dim", "H")
        return [
            FigureSpec("accuracy_vs_hidden.png", "Test accuracy vs hidden size", caption, self._draw_accuracy),
            FigureSpec("accuracy_by_length.png", "Accuracy per review length, by hidden size", by_length, self._draw_buckets),
        ]  # fmt: skip

    def _draw_accuracy(self) -> Any:
        palette = colors(self.models, self.models)
        fig, axes = new_figure(1, 1, f"accuracy vs hidden size: {self.dataset}")
        ax = axes[0][0]
        for model in self.models:
            draw_points(ax, self.points(model), model, palette[model])
        ax.set_xscale("log", base=2)
        ax.set_xticks(self.sizes, [str(n) for n in self.sizes])
        ax.set_xlabel("hidden size H")
        ax.set_ylabel("test accuracy (95% interval)")
        ax.legend(fontsize=8)
        return fig

    def _draw_buckets(self) -> Any:
        names = self.bucket_names()
        if self.cells:  # test texts per bucket under each name
            counts = [b.get("count", 0) for b in self.cells[0].accuracy_by_length]
            names = [f"{n}\n(n={c})" for n, c in zip(names, counts, strict=False)]
        fig, axes = new_figure(
            1, len(self.models), "accuracy by review length, per hidden size", width=4.8
        )
        cmap = colormap("viridis")
        for ax, model in zip(axes[0], self.models, strict=True):
            rows = [s for s in self.summary if s.model == model]
            for i, s in enumerate(rows):
                ax.plot(range(len(names)), nan_for_none(s.bucket_accuracy), marker="o",
                        color=cmap(i / max(len(rows) - 1, 1)), label=f"H={s.hidden_dim}")  # fmt: skip
            ax.set_xticks(range(len(names)), names, fontsize=8)
            ax.set_xlabel("review length (tokens)")
            ax.set_title(model, fontsize=10)
            ax.legend(fontsize=8)
        return fig


def hidden_size_sweep(
    config: RunConfig,
    settings: Settings | None = None,
    *,
    seed: int = 0,
    splits: EncodedSplits | None = None,
    log: Logger | None = None,
    **changes: Any,
) -> HiddenSizeResult:
    """Train each model at each hidden size (and seed) on config's data (cut to its max_len)."""
    s = dataclasses.replace(settings or Settings(), **changes)
    config = sweep_config(config, epochs=s.epochs)
    if s.max_len is not None:
        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, max_len=s.max_len)
        )
    splits = splits if splits is not None else load_splits(config.data)
    splits = limit_training(splits, s.limit, config.data.seed)
    check(
        splits.task == "classification",
        "sweep hidden measures accuracy; use a classification dataset",
    )
    edges = list(length_edges(config.data.max_len))
    seeds = [seed + i for i in range(s.seeds)]
    sized = [m for m in s.models if preset_family(m).reads_hidden_dim]
    result = HiddenSizeResult(
        str(splits.info.get("dataset", config.data.dataset)), list(s.sizes), sized,
        seeds, config.data.max_len, edges, sweep_settings(config, splits), config.to_dict(),
    )  # fmt: skip
    result.not_applicable = [
        NotApplicable(m, str(get_preset(m).settings["kind"]),
                      f"{preset_family(m).family}: it has no hidden state to size")
        for m in s.models if m not in sized
    ]  # fmt: skip
    for model in sized:
        for size in s.sizes:
            for cell_seed in seeds:
                cell = sweep_cell(
                    config, model, splits, seed=cell_seed, length_edges=edges, hidden_dim=size,
                    log=log, label=f"hidden-size sweep: {model}, hidden {size}",
                )  # fmt: skip
                result.cells.append(HiddenSizeCell(**dataclasses.asdict(cell), hidden_dim=size))
    result.summarize()
    return result


def run(settings: Settings, inputs: Inputs) -> HiddenSizeResult:
    return hidden_size_sweep(inputs.config, settings, seed=inputs.seed, log=inputs.log)


def estimate(settings: Settings, models: int) -> float:
    texts = 0.8 * (settings.limit or 20_000) * (settings.epochs or 5) * settings.seeds
    tokens = min(settings.max_len or 400, 230)
    return len(settings.models) * len(settings.sizes) * texts * tokens * 4.9e-6  # make demo, AMD


DIAGNOSTIC = Diagnostic(
    name="hidden-size",
    command=("sweep", "hidden"),
    aliases=("hidden-size",),
    help="accuracy (overall and per length bucket) vs hidden size",
    title="Hidden size vs accuracy",
    how_to_read=(
        "Test accuracy against the size of the hidden state.",
        "The whole text must fit in one fixed-size vector: where accuracy stops improving, "
        "more memory does not help.",
    ),
    settings=Settings,
    quick=QUICK,
    result=HiddenSizeResult,
    run=run,
    reads="training",
    estimate=estimate,
    legacy_kinds=("capacity",),
)
