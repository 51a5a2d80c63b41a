"""Hidden- and cell-state dynamics: ||h_t|| (and ||c_t|| for an LSTM) at every step of real
reviews, a few per class, through the hand-written cells (`model.trace`, eval mode, no grad).

A tanh RNN's state saturates and is overwritten at every step; an LSTM's cell state can grow
and carry information; the per-text variance of the norms over time summarises how much the
state moves. Texts are chosen per class (default 5 each) among those with at least `min_len`
tokens and cut to their first `max_steps` tokens.

result.json (`"kind": "hidden_states"`):
  dataset, split, per_class, min_len, max_steps, seed, device, label_names,
  texts: one object per text: row (index in the split), label (class id), label_name, length
    (steps used),
  models: one object per model with label, kind, source,
    h_norms: one list per text (same order as texts) of ||h_t|| for t < length,
    c_norms: the same for ||c_t|| (LSTM), else null,
    h_stats / c_stats (c_stats null unless LSTM): {var_mean, var_std, norm_mean, norm_std}:
      mean and standard deviation over texts of the per-text variance over time of the norm,
      and of the per-text mean norm,
    by_label: {label_name: {"h": stats, "c": stats or null}} with the same statistics per class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab.diagnostics.common import (
    Logger,
    ModelEntry,
    Result,
    Table,
    dataset_name,
    finite,
    make_batch,
    prepare,
    resolve_device,
)
from rnnlab.errors import RnnlabError, check


def state_norms(model: nn.Module, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
    """||h_t|| and ||c_t|| (LSTM, else None), each (B, T) on the CPU, last layer forward
    direction, eval mode, no grad. Values at t >= lengths[b] are computed over padding."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = model.embed(tokens)  # type: ignore[operator]  # (B, T, E)
            _, trace = model.trace(x, lengths)  # type: ignore[operator]
    finally:
        model.train(was_training)
    h = torch.stack(trace.hidden, dim=1).norm(dim=-1).double().cpu()  # (B, T)
    c = None
    if trace.cell is not None:
        c = torch.stack(trace.cell, dim=1).norm(dim=-1).double().cpu()  # (B, T)
    return h, c


@dataclass
class NormStats:
    var_mean: float | None
    var_std: float | None
    norm_mean: float | None
    norm_std: float | None


def norm_stats(series: Sequence[Sequence[float]]) -> NormStats:
    """Mean and std over texts of each text's variance over time (and of its mean norm)."""
    if not series:
        return NormStats(None, None, None, None)
    variances = np.asarray([np.var(s) for s in series], dtype=np.float64)
    means = np.asarray([np.mean(s) for s in series], dtype=np.float64)
    return NormStats(
        finite(variances.mean()), finite(variances.std()), finite(means.mean()), finite(means.std())
    )


@dataclass
class TextInfo:
    row: int
    label: int
    label_name: str
    length: int


@dataclass
class LabelStats:
    h: NormStats
    c: NormStats | None


@dataclass
class ModelStates:
    label: str
    kind: str
    source: str
    h_norms: list[list[float]]
    c_norms: list[list[float]] | None
    h_stats: NormStats
    c_stats: NormStats | None
    by_label: dict[str, LabelStats]


@dataclass
class HiddenStatesResult(Result):
    kind = "hidden_states"

    dataset: str
    split: str
    per_class: int
    min_len: int
    max_steps: int
    seed: int
    device: str
    label_names: list[str]
    texts: list[TextInfo] = field(default_factory=list)
    models: list[ModelStates] = field(default_factory=list)

    def tables(self) -> list[Table]:
        rows = []
        for m in self.models:
            for part, stats in (("h", m.h_stats), ("c", m.c_stats)):
                if stats is None:
                    continue
                per_label = "  ".join(
                    f"{name} {_f(getattr(ls, part).norm_mean)}"
                    for name, ls in m.by_label.items()
                    if getattr(ls, part) is not None
                )
                rows.append(
                    [m.label, f"||{part}_t||", _f(stats.norm_mean), _f(stats.var_mean),
                     _f(stats.var_std), per_label]
                )  # fmt: skip
        counts = ", ".join(
            f"{sum(t.label_name == n for t in self.texts)} {n}" for n in self.label_names
        )
        title = (
            f"state norms on {counts} {self.dataset} {self.split} texts "
            f"(>= {self.min_len} tokens, first {self.max_steps} steps)"
        )
        columns = [
            "model",
            "state",
            "mean norm",
            "variance: mean",
            "variance: std",
            "mean norm by label",
        ]
        notes = ["variance: each text's variance of the norm over time, then mean / std over texts"]
        return [Table(title, columns, rows, notes)]

    def figures(self, folder: Path) -> list[Path]:
        from rnnlab.diagnostics import plots

        return plots.plot_hidden_states(self, folder)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def pick_per_class(
    labels: np.ndarray,
    lengths: np.ndarray,
    label_names: Sequence[str],
    *,
    per_class: int,
    min_len: int,
    seed: int,
    what: str,
) -> np.ndarray:
    """`per_class` rows of every class among texts of at least `min_len` tokens (sorted by
    class, then row). Too few in a class is a user error with the numbers to fix it."""
    rng = np.random.default_rng(seed)
    chosen = []
    for cls, name in enumerate(label_names):
        in_class = labels == cls
        eligible = np.flatnonzero(in_class & (lengths >= min_len))
        if len(eligible) < per_class:
            ordered = np.sort(lengths[in_class])[::-1]
            suggest = int(ordered[per_class - 1]) if len(ordered) >= per_class else 0
            hint = f"--min-len {suggest}" if suggest > 0 else "--per-class with a smaller count"
            raise RnnlabError(
                f"{what} has only {len(eligible)} {name} texts with at least {min_len} tokens "
                f"(need {per_class}); lower the length, e.g. {hint}"
            )
        chosen.append(np.sort(rng.choice(eligible, size=per_class, replace=False)))
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def hidden_states(
    entries: Sequence[ModelEntry],
    *,
    per_class: int = 5,
    min_len: int = 150,
    max_steps: int = 400,
    split: str = "test",
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Logger | None = None,
) -> HiddenStatesResult:
    """State norms over time for `per_class` texts of each class (at least `min_len` tokens)."""
    check(per_class > 0, f"per_class must be positive (got {per_class}); e.g. --per-class 5")
    check(min_len > 0, f"min_len must be positive (got {min_len}); e.g. --min-len 150")
    check(max_steps > 0, f"max_steps must be positive (got {max_steps}); e.g. --max-steps 400")
    check(bool(entries), "no models to diagnose")
    target = resolve_device(device) if isinstance(device, str) else device
    dataset = dataset_name(entries)
    result: HiddenStatesResult | None = None
    for entry in entries:
        splits = entry.splits
        check(
            splits.task == "classification",
            "hidden-states picks texts per class; use a classification dataset",
        )
        data = splits.split(split)
        names = list(splits.label_names)
        rows = pick_per_class(
            data.labels, data.lengths, names, per_class=per_class, min_len=min_len, seed=seed,
            what=f"the {dataset} {split} split",
        )  # fmt: skip
        batch = make_batch(data, rows, max_steps)
        if result is None:
            texts = [
                TextInfo(int(r), int(y), names[int(y)], int(n))
                for r, y, n in zip(rows, batch.labels, batch.lengths, strict=True)
            ]
            result = HiddenStatesResult(
                dataset, split, per_class, min_len, max_steps, seed, str(target), names, texts
            )
        if log:
            log(f"hidden states: {entry.label} on {len(rows)} texts")
        model = prepare(entry.model, target)
        gpu = batch.to(target)
        h, c = state_norms(model, gpu.tokens, gpu.lengths)
        lengths = batch.lengths.tolist()
        h_list = [h[i, :n].tolist() for i, n in enumerate(lengths)]
        c_list = [c[i, :n].tolist() for i, n in enumerate(lengths)] if c is not None else None
        labels = batch.labels.tolist()
        by_label = {}
        for cls, name in enumerate(names):
            idx = [i for i, y in enumerate(labels) if y == cls]
            by_label[name] = LabelStats(
                norm_stats([h_list[i] for i in idx]),
                norm_stats([c_list[i] for i in idx]) if c_list is not None else None,
            )
        result.models.append(
            ModelStates(
                entry.label, entry.kind, entry.source, h_list, c_list, norm_stats(h_list),
                norm_stats(c_list) if c_list is not None else None, by_label,
            )
        )  # fmt: skip
    assert result is not None
    return result
