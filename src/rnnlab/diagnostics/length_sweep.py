"""Accuracy vs maximum sequence length: train every model at every truncation length with
otherwise equal settings, and record test accuracy and training time per cell.

The corpus is encoded once at full length; each length cuts it with
`rnnlab.data.pipeline.apply_length_policy` (train, val and test alike), so a cell trains and
tests on texts cut to the same length. With several seeds each cell reports mean ± std.

result.json (`"kind": "length_sweep"`):
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


@dataclass
class LengthSweepResult(Result):
    kind = "length_sweep"

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
                self.summary.append(LengthSummary(model, length, len(cells), *acc, *secs))

    def tables(self) -> list[Table]:
        rows = []
        for model in self.models:
            acc, secs = [], []
            for length in self.lengths:
                s = next(
                    (x for x in self.summary if x.model == model and x.max_len == length), None
                )
                acc.append(pm(s.accuracy_mean, s.accuracy_std) if s else "-")
                secs.append(pm(s.train_seconds_mean, s.train_seconds_std, ".1f") if s else "-")
            rows.append([model, "test accuracy", *acc])
            rows.append(["", "train seconds", *secs])
        st = self.settings
        title = (
            f"accuracy vs max length on {self.dataset} ({st['epochs']} epochs, batch "
            f"{st['batch_size']}, limit {st['limit']}, {len(self.seeds)} seed(s))"
        )
        return [Table(title, ["model", "", *(f"L={n}" for n in self.lengths)], rows)]

    def figures(self, folder: Path) -> list[Path]:
        from rnnlab.diagnostics import plots

        return plots.plot_length_sweep(self, folder)


def length_sweep(
    config: RunConfig,
    *,
    models: Sequence[str] = ("rnn", "lstm"),
    lengths: Sequence[int] = (50, 100, 200, 400),
    seeds: Sequence[int] = (0,),
    full: EncodedSplits | None = None,
    log: Logger | None = None,
) -> LengthSweepResult:
    """Train each model at each max length (and seed); `full` reuses whole-text splits."""
    from rnnlab.data.pipeline import apply_length_policy, load_full_splits
    from rnnlab.training.metrics import length_edges

    lengths = sorted(set(int(n) for n in lengths))
    check(bool(lengths) and lengths[0] > 0, f"lengths must be positive (got {lengths})")
    check(bool(models), "no models given; e.g. --models rnn,lstm")
    check(bool(seeds), "no seeds given")
    check(
        not config.data.dataset.startswith("synthetic:"),
        "sweep seq-len cuts real texts; for synthetic tasks train with --length instead",
    )
    full = full if full is not None else load_full_splits(config.data)
    result = LengthSweepResult(
        str(full.info.get("dataset", config.data.dataset)), lengths, list(models), list(seeds),
        sweep_settings(config), config.to_dict(),
    )  # fmt: skip
    for length in lengths:
        data_cfg = dataclasses.replace(config.data, max_len=length)
        splits = apply_length_policy(full, data_cfg)
        for model in models:
            for seed in seeds:
                if log:
                    log(f"seq-len sweep: {model}, max_len {length}, seed {seed}")
                cell = train_and_test(
                    config, model, splits, seed=seed, length_edges=length_edges(length)
                )
                result.cells.append(LengthCell(**dataclasses.asdict(cell), max_len=length))
                if log:
                    log(f"  test accuracy {pm(cell.test_accuracy, None, '.4f')}, "
                        f"{cell.train_seconds:.1f} s training")  # fmt: skip
    result.summarize()
    return result
