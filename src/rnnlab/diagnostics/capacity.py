"""Hidden size vs accuracy: the fixed-memory bottleneck.

A recurrent encoder squeezes a whole review into one hidden vector of H numbers. Training the
same model at several hidden sizes (otherwise equal settings) shows what that memory buys,
overall and per review-length bucket (`rnnlab.training.metrics.accuracy_by_length`): long
reviews are where a small state runs out of room first.

result.json (`"kind": "capacity"`):
  dataset, sizes, models, seeds, max_len, edges (length-bucket edges), settings, config,
  cells: one object per (model, size, seed): hidden_dim plus everything a length-sweep cell has
    (test_accuracy, ..., parameters, accuracy_by_length: [{lo, hi, count, accuracy}]),
  summary: one object per (model, size): model, hidden_dim, runs, parameters, accuracy_mean,
    accuracy_std, train_seconds_mean, bucket_accuracy (mean over seeds per bucket, aligned
    with `edges`; null for an empty bucket).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.config import RunConfig
from rnnlab.data.encoded import EncodedSplits
from rnnlab.diagnostics.common import Logger, Result, Table
from rnnlab.diagnostics.sweep_runs import TrainedCell, mean_std, pm, sweep_settings, train_and_test
from rnnlab.errors import check


@dataclass
class CapacityCell(TrainedCell):
    hidden_dim: int = 0


@dataclass
class CapacitySummary:
    model: str
    hidden_dim: int
    runs: int
    parameters: int
    accuracy_mean: float | None
    accuracy_std: float | None
    train_seconds_mean: float | None
    bucket_accuracy: list[float | None]


@dataclass
class CapacityResult(Result):
    kind = "capacity"

    dataset: str
    sizes: list[int]
    models: list[str]
    seeds: list[int]
    max_len: int | None
    edges: list[int]
    settings: dict[str, Any]
    config: dict[str, Any]
    cells: list[CapacityCell] = field(default_factory=list)
    summary: list[CapacitySummary] = field(default_factory=list)

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
                self.summary.append(
                    CapacitySummary(
                        model, size, len(cells), cells[0].parameters,
                        *mean_std([c.test_accuracy for c in cells]),
                        mean_std([c.train_seconds for c in cells])[0], buckets,
                    )
                )  # fmt: skip

    def tables(self) -> list[Table]:
        names = self.bucket_names()
        counts = [b["count"] for b in self.cells[0].accuracy_by_length] if self.cells else []
        bucket_cols = [f"{n} ({counts[i]})" if i < len(counts) else n for i, n in enumerate(names)]
        rows = []
        for s in self.summary:
            rows.append(
                [s.model, str(s.hidden_dim), f"{s.parameters:,}", pm(s.accuracy_mean, s.accuracy_std),
                 *(pm(a, None) for a in s.bucket_accuracy), pm(s.train_seconds_mean, None, ".1f")]
            )  # fmt: skip
        st = self.settings
        title = (
            f"accuracy vs hidden size on {self.dataset} (max_len {self.max_len}, "
            f"{st['epochs']} epochs, limit {st['limit']}, {len(self.seeds)} seed(s))"
        )
        columns = ["model", "hidden", "parameters", "test accuracy", *bucket_cols, "train s"]
        notes = ["length buckets in tokens (test texts per bucket in brackets)"]
        return [Table(title, columns, rows, notes)]

    def figures(self, folder: Path) -> list[Path]:
        from rnnlab.diagnostics import plots

        return plots.plot_capacity(self, folder)


def hidden_sweep(
    config: RunConfig,
    *,
    models: Sequence[str] = ("lstm",),
    sizes: Sequence[int] = (16, 32, 64, 128, 256),
    seeds: Sequence[int] = (0,),
    splits: EncodedSplits | None = None,
    log: Logger | None = None,
) -> CapacityResult:
    """Train each model at each hidden size (and seed) on config's data (cut to its max_len)."""
    from rnnlab.data import load_splits
    from rnnlab.training.metrics import length_edges

    sizes = sorted(set(int(n) for n in sizes))
    check(bool(sizes) and sizes[0] > 0, f"hidden sizes must be positive (got {sizes})")
    check(bool(models), "no models given; e.g. --models lstm")
    check(bool(seeds), "no seeds given")
    splits = splits if splits is not None else load_splits(config.data)
    check(
        splits.task == "classification",
        "sweep hidden measures accuracy; use a classification dataset",
    )
    edges = list(length_edges(config.data.max_len))
    result = CapacityResult(
        str(splits.info.get("dataset", config.data.dataset)), sizes, list(models), list(seeds),
        config.data.max_len, edges, sweep_settings(config), config.to_dict(),
    )  # fmt: skip
    for model in models:
        for size in sizes:
            for seed in seeds:
                if log:
                    log(f"hidden sweep: {model}, hidden {size}, seed {seed}")
                cell = train_and_test(
                    config, model, splits, seed=seed, length_edges=edges, hidden_dim=size
                )
                result.cells.append(CapacityCell(**dataclasses.asdict(cell), hidden_dim=size))
                if log:
                    log(f"  test accuracy {pm(cell.test_accuracy, None, '.4f')}, "
                        f"{cell.train_seconds:.1f} s training")  # fmt: skip
    result.summarize()
    return result
