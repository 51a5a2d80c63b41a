"""Hidden- and cell-state dynamics: ||h_t|| (and ||c_t|| for an LSTM) at every step of real
reviews, a few per class, through the hand-written cells (`model.trace`, eval mode, no grad;
minGRU / minLSTM through their sequential mode). Families without per-step states (bag of
n-grams, Transformer) are left out with a "not applicable" line.

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

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab.config import check_positive
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.gradients import private_copy
from rnnlab.diagnostics.inputs import Inputs, Logger, ModelEntry
from rnnlab.diagnostics.result import FigureSpec, Result
from rnnlab.diagnostics.texts import make_batch, pick_per_class
from rnnlab.errors import check
from rnnlab.formatting import MISSING, finite, sig
from rnnlab.plotting import PALETTE, new_figure
from rnnlab.tables import Table


@dataclass(frozen=True)
class Settings:
    per_class: int = 5
    """Texts per label."""
    min_len: int = 150
    """Only texts with at least this many tokens."""
    max_steps: int = 400
    """Steps kept per text (its first ones)."""
    split: Literal["test", "val", "train"] = "test"
    """The split the texts come from."""

    def __post_init__(self) -> None:
        check_positive(self, "per_class", "min_len", "max_steps")


QUICK = Settings(per_class=2, min_len=100, max_steps=200)


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


def _sig(value: float | None) -> str:
    return MISSING if value is None else sig(value)


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
            stats = [
                _sig(getattr(s, k) if s is not None else None)
                for s in (m.h_stats, m.c_stats)
                for k in ("norm_mean", "var_mean")
            ]
            rows.append([m.label, *stats])
        counts = ", ".join(
            f"{sum(t.label_name == n for t in self.texts)} {n}" for n in self.label_names
        )
        return [
            Table(
                "State norms: mean over steps and texts, and variance over steps (mean over "
                f"texts); {counts} {self.dataset} {self.split} texts (>= {self.min_len} tokens, "
                f"first {self.max_steps} steps)",
                ["model", "mean ||h_t||", "var ||h_t||", "mean ||c_t||", "var ||c_t||"],
                rows,
                ["variance: each text's variance of the norm over time, then mean over texts"],
                [False, True, True, True, True],
                row_ids=[f"states-{m.label}" for m in self.models],
            )
        ]

    def figures(self) -> list[FigureSpec]:
        lead = []
        if self.texts:
            lengths = [t.length for t in self.texts]
            lead.append(
                f"{len(self.texts)} {self.dataset} {self.split} texts, "
                f"{min(lengths)}–{max(lengths)} steps."
            )
        means = [f"{m.label} {sig(v)}" for m in self.models if (v := m.h_stats.norm_mean)]
        if means:
            lead.append("Mean ||h_t|| over steps and texts: " + ", ".join(means) + ".")
        moves = [
            f"{m.label} {sig(m.h_stats.var_mean)}"
            for m in self.models
            if m.h_stats.var_mean is not None
        ]
        if moves:
            lead.append(
                "How much ||h_t|| moves over time (variance over steps, mean over texts): "
                + ", ".join(moves) + "."
            )  # fmt: skip
        contrasts = []
        for m in self.models:
            pairs = [(k, v.h.norm_mean) for k, v in m.by_label.items() if v.h.norm_mean is not None]
            if len(pairs) >= 2:
                contrasts.append(f"{m.label}: " + ", ".join(f"{k} {sig(v)}" for k, v in pairs))
        if contrasts:
            lead.append("Mean ||h_t|| per class — " + "; ".join(contrasts) + ".")
        specs = [
            FigureSpec(
                "hidden_norms.png", "Hidden-state norm ||h_t|| over time", lead,
                functools.partial(self._draw, "h_norms", "||h_t||"),
            )
        ]  # fmt: skip
        if any(m.c_norms is not None for m in self.models):
            cells = [
                f"{m.label}: mean ||c_t|| {sig(m.c_stats.norm_mean)}, variance over time "
                f"{sig(m.c_stats.var_mean)}"
                for m in self.models
                if m.c_stats is not None
                and m.c_stats.norm_mean is not None
                and m.c_stats.var_mean is not None
            ]
            caption = [
                "The LSTM cell state ||c_t|| on the same texts; unlike h_t = o_t * tanh(c_t) it "
                "is not squashed, so it can grow to carry information.",
            ] + (["; ".join(cells) + "."] if cells else [])
            specs.append(
                FigureSpec(
                    "cell_norms.png", "LSTM cell-state norm ||c_t|| over time", caption,
                    functools.partial(self._draw, "c_norms", "||c_t||"),
                )
            )  # fmt: skip
        return specs

    def _draw(self, key: str, name: str) -> Any:
        label_colors = {n: PALETTE[(i + 1) % len(PALETTE)] for i, n in enumerate(self.label_names)}
        if len(self.label_names) == 2:
            label_colors = dict(zip(self.label_names, ["tab:red", "tab:blue"], strict=True))
        models = [m for m in self.models if getattr(m, key) is not None]
        title = f"{name} over time: {self.dataset} {self.split} texts (colour: label)"
        fig, axes = new_figure(1, len(models), title, width=4.6)
        for ax, m in zip(axes[0], models, strict=True):
            seen: set[str] = set()
            for text, series in zip(self.texts, getattr(m, key), strict=True):
                label = text.label_name
                ax.plot(series, color=label_colors[label], lw=0.9, alpha=0.75,
                        label=label if label not in seen else None)  # fmt: skip
                seen.add(label)
            ax.set_title(f"{m.label} {name}", fontsize=10)
            ax.set_xlabel("time step t")
            ax.legend(fontsize=8)
        return fig


def hidden_states(
    entries: Sequence[ModelEntry],
    settings: Settings | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Logger | None = None,
    **changes: Any,
) -> HiddenStatesResult:
    """State norms over time for `per_class` texts of each class (at least `min_len` tokens)."""
    s = dataclasses.replace(settings or Settings(), **changes)
    check(bool(entries), "no models to diagnose")
    target = torch.device(device) if isinstance(device, str) else device
    dataset = entries[0].dataset
    result: HiddenStatesResult | None = None
    for entry in entries:
        rows, data, names = _texts(entry, s, seed)
        batch = make_batch(data, rows, s.max_steps)
        if result is None:
            texts = [
                TextInfo(int(r), int(y), names[int(y)], int(n))
                for r, y, n in zip(rows, batch.labels, batch.lengths, strict=True)
            ]
            result = HiddenStatesResult(
                dataset, s.split, s.per_class, s.min_len, s.max_steps, seed, str(target), names,
                texts,
            )  # fmt: skip
        if log:
            log(f"hidden states: {entry.label} on {len(rows)} texts")
        model = private_copy(entry.model, target)
        on_device = batch.to(target)
        h, c = state_norms(model, on_device.tokens, on_device.lengths)
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


def _texts(entry: ModelEntry, s: Settings, seed: int) -> tuple[np.ndarray, Any, list[str]]:
    splits = entry.splits
    check(
        splits.task == "classification",
        "hidden-states picks texts per class; use a classification dataset",
    )
    data = splits.split(s.split)
    names = list(splits.label_names)
    rows = pick_per_class(
        data.labels, data.lengths, names, per_class=s.per_class, min_len=s.min_len, seed=seed,
        what=f"the {entry.dataset} {s.split} split",
    )  # fmt: skip
    return rows, data, names


def run(settings: Settings, inputs: Inputs) -> HiddenStatesResult:
    return hidden_states(
        inputs.entries(), settings, seed=inputs.seed, device=inputs.target, log=inputs.log
    )


def check_texts(settings: Settings, inputs: Inputs) -> None:
    for entry in inputs.entries():
        _texts(entry, settings, inputs.seed)


def estimate(settings: Settings, models: int) -> float:
    return models * 2 * settings.per_class * settings.max_steps * 1e-4


DIAGNOSTIC = Diagnostic(
    name="hidden-states",
    command=("diagnose", "hidden-states"),
    help="||h_t|| (and ||c_t||) over time, per label",
    title="Hidden- and cell-state dynamics",
    how_to_read=(
        "The norm of the hidden state (and of the LSTM cell state) at every step while "
        "the model reads a positive and a negative review.",
        "A tanh hidden state is bounded by 1 per unit; an LSTM cell state is not, which is "
        "how it carries information over long distances.",
    ),
    settings=Settings,
    quick=QUICK,
    result=HiddenStatesResult,
    run=run,
    estimate=estimate,
    check=check_texts,
    applies=lambda entry: entry.no_states,
)
