"""PNG figures of the diagnostic results. Each function reads only a result dataclass (what
result.json holds), writes its PNGs atomically into a folder and returns their paths.

Figures are drawn on matplotlib's Agg canvas directly (Figure + FigureCanvasAgg), never through
pyplot, so no global backend is switched and a notebook's own backend stays as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rnnlab.io import write_with

if TYPE_CHECKING:
    from rnnlab.diagnostics.capacity import CapacityResult
    from rnnlab.diagnostics.embedding_grad import EmbeddingGradResult
    from rnnlab.diagnostics.gradient_flow import GradientFlowResult
    from rnnlab.diagnostics.hidden_states import HiddenStatesResult
    from rnnlab.diagnostics.length_sweep import LengthSweepResult
    from rnnlab.diagnostics.padding import PaddingResult
    from rnnlab.diagnostics.parameters import ParametersResult
    from rnnlab.diagnostics.timing import TimingResult

DPI = 110
KIND_COLORS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
PALETTE = ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink"]


def _figure(nrows: int, ncols: int, title: str, *, width: float = 5.0, height: float = 3.6) -> Any:
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    if title:
        fig.suptitle(title)
    return fig, axes


def _save(fig: Any, path: Path) -> Path:
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    return path


def _colors(labels: Sequence[str], kinds: Sequence[str] | None = None) -> dict[str, str]:
    """One color per label: the kind's color when kinds are distinct, else a palette."""
    if kinds is not None and len(set(kinds)) == len(kinds):
        return {
            lab: KIND_COLORS.get(k, PALETTE[i % len(PALETTE)])
            for i, (lab, k) in enumerate(zip(labels, kinds, strict=True))
        }
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(labels)}


def _values(values: Sequence[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def plot_gradient_flow(result: GradientFlowResult, folder: Path) -> list[Path]:
    """gradient_flow_linear.png and gradient_flow_log.png: ||dL/dx_t|| and ||dL/dh_t||."""
    colors = _colors([m.label for m in result.models], [m.kind for m in result.models])
    paths = []
    for scale in ("linear", "log"):
        title = (
            f"gradient flow through time: {result.dataset} {result.split}, "
            f"{result.batch_size} texts, T={result.seq_len} ({scale} scale)"
        )
        fig, axes = _figure(1, 2, title)
        for ax, key, name in (
            (axes[0][0], "grad_x", "||dL/dx_t|| (embedded input)"),
            (axes[0][1], "grad_h", "||dL/dh_t|| (hidden state, hand-written cells)"),
        ):
            for m in result.models:
                ax.plot(_values(getattr(m, key)), label=m.label, color=colors[m.label], lw=1.4)
            ax.set_yscale(scale)
            ax.set_xlabel("time step t")
            ax.set_title(name, fontsize=10)
            for t in result.steps:
                ax.axvline(t, color="0.8", lw=0.8, ls=":")
            ax.legend(fontsize=8)
        paths.append(_save(fig, folder / f"gradient_flow_{scale}.png"))
    return paths


def plot_embedding_grad(result: EmbeddingGradResult, folder: Path) -> list[Path]:
    """embedding_grad.png: ||dL/dE|| (and the recurrent weights') vs truncation length."""
    colors = _colors([m.label for m in result.models], [m.kind for m in result.models])
    fig, axes = _figure(1, 2, f"gradient norm vs sequence length: {result.dataset} {result.split}")
    for ax, key, name in (
        (axes[0][0], "embedding", "||dL/dEmbedding||"),
        (axes[0][1], "recurrent", "||dL/dW recurrent||"),
    ):
        for m in result.models:
            ax.plot(result.lengths, _values(getattr(m, key)), marker="o", label=m.label,
                    color=colors[m.label])  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(result.lengths, [str(n) for n in result.lengths])
        ax.set_xlabel("sequence length L (tokens kept)")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8)
    return [_save(fig, folder / "embedding_grad.png")]


def plot_hidden_states(result: HiddenStatesResult, folder: Path) -> list[Path]:
    """hidden_norms.png (||h_t|| per model, coloured by label) and, for an LSTM,
    cell_norms.png (||c_t||)."""
    label_colors = {n: PALETTE[(i + 1) % len(PALETTE)] for i, n in enumerate(result.label_names)}
    if len(result.label_names) == 2:
        label_colors = dict(zip(result.label_names, ["tab:red", "tab:blue"], strict=True))
    paths = []
    for key, fname, name in (
        ("h_norms", "hidden_norms.png", "||h_t||"),
        ("c_norms", "cell_norms.png", "||c_t||"),
    ):
        models = [m for m in result.models if getattr(m, key) is not None]
        if not models:
            continue
        title = f"{name} over time: {result.dataset} {result.split} texts (colour: label)"
        fig, axes = _figure(1, len(models), title, width=4.6)
        for ax, m in zip(axes[0], models, strict=True):
            seen: set[str] = set()
            for text, series in zip(result.texts, getattr(m, key), strict=True):
                name_ = text.label_name
                ax.plot(series, color=label_colors[name_], lw=0.9, alpha=0.75,
                        label=name_ if name_ not in seen else None)  # fmt: skip
                seen.add(name_)
            ax.set_title(f"{m.label} {name}", fontsize=10)
            ax.set_xlabel("time step t")
            ax.legend(fontsize=8)
        paths.append(_save(fig, folder / fname))
    return paths


def plot_length_sweep(result: LengthSweepResult, folder: Path) -> list[Path]:
    """accuracy_vs_length.png: test accuracy (mean ± std) and training time vs max length."""
    fig, axes = _figure(1, 2, f"accuracy vs max sequence length: {result.dataset}")
    colors = _colors(result.models, result.models)
    for model in result.models:
        rows = [s for s in result.summary if s.model == model]
        x = [s.max_len for s in rows]
        axes[0][0].errorbar(x, _values([s.accuracy_mean for s in rows]),
                            yerr=[s.accuracy_std or 0.0 for s in rows], marker="o", capsize=3,
                            label=model, color=colors[model])  # fmt: skip
        axes[0][1].plot(x, _values([s.train_seconds_mean for s in rows]), marker="o",
                        label=model, color=colors[model])  # fmt: skip
    for ax, name in ((axes[0][0], "test accuracy"), (axes[0][1], "training seconds")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(result.lengths, [str(n) for n in result.lengths])
        ax.set_xlabel("max sequence length (tokens kept)")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8)
    return [_save(fig, folder / "accuracy_vs_length.png")]


def plot_capacity(result: CapacityResult, folder: Path) -> list[Path]:
    """accuracy_vs_hidden.png and accuracy_by_length.png (one panel per model, a line per size)."""
    colors = _colors(result.models, result.models)
    fig, axes = _figure(1, 1, f"accuracy vs hidden size: {result.dataset}")
    ax = axes[0][0]
    for model in result.models:
        rows = [s for s in result.summary if s.model == model]
        ax.errorbar([s.hidden_dim for s in rows], _values([s.accuracy_mean for s in rows]),
                    yerr=[s.accuracy_std or 0.0 for s in rows], marker="o", capsize=3,
                    label=model, color=colors[model])  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(result.sizes, [str(n) for n in result.sizes])
    ax.set_xlabel("hidden size H")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    paths = [_save(fig, folder / "accuracy_vs_hidden.png")]

    names = result.bucket_names()
    if result.cells:  # test texts per bucket under each name
        counts = [b.get("count", 0) for b in result.cells[0].accuracy_by_length]
        names = [f"{n}\n(n={c})" for n, c in zip(names, counts, strict=False)]
    fig, axes = _figure(
        1, len(result.models), "accuracy by review length, per hidden size", width=4.8
    )
    cmap = matplotlib.colormaps["viridis"]
    for ax, model in zip(axes[0], result.models, strict=True):
        rows = [s for s in result.summary if s.model == model]
        for i, s in enumerate(rows):
            ax.plot(range(len(names)), _values(s.bucket_accuracy), marker="o",
                    color=cmap(i / max(len(rows) - 1, 1)), label=f"H={s.hidden_dim}")  # fmt: skip
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("review length (tokens)")
        ax.set_title(model, fontsize=10)
        ax.legend(fontsize=8)
    paths.append(_save(fig, folder / "accuracy_by_length.png"))
    return paths


def plot_timing(result: TimingResult, folder: Path) -> list[Path]:
    """timing.png: one panel per model, a line per mode (solid forward+backward, dashed
    forward), with the least-squares lines dotted."""
    styles = {"padded": "tab:blue", "packed": "tab:orange", "scratch": "tab:red"}
    title = f"time per batch of {result.batch_size} vs sequence length ({result.device})"
    fig, axes = _figure(1, len(result.models), title, width=4.6)
    for ax, m in zip(axes[0], result.models, strict=True):
        for t in m.modes:
            color = styles.get(t.mode, "0.3")
            ms_both = [1e3 * v for v in t.forward_backward]
            ax.plot(result.lengths, ms_both, marker="o", color=color, label=f"{t.mode} fwd+bwd")
            ax.plot(result.lengths, [1e3 * v for v in t.forward], marker=".", ls="--",
                    color=color, label=f"{t.mode} fwd")  # fmt: skip
            fit = t.forward_backward_fit
            if fit.slope is not None and fit.intercept is not None:
                line = [1e3 * (fit.intercept + fit.slope * n) for n in result.lengths]
                ax.plot(result.lengths, line, ls=":", color=color, lw=0.8)
        ax.set_title(m.label, fontsize=10)
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("ms per batch")
        ax.legend(fontsize=7)
    return [_save(fig, folder / "timing.png")]


def plot_padding(result: PaddingResult, folder: Path) -> list[Path]:
    """padding.png: padded share per strategy, and the packed per-step batch size."""
    fig, axes = _figure(
        1, 2, f"padding waste: {result.dataset} {result.split}, batch {result.batch_size}"
    )
    ax = axes[0][0]
    names = [s.strategy for s in result.strategies]
    shares = [100 * s.padding_share for s in result.strategies]
    bars = ax.bar(names, shares, color=["tab:red", "tab:blue", "tab:green"][: len(names)])
    ax.bar_label(bars, [f"{v:.1f}%" for v in shares], fontsize=8)
    ax.set_ylabel("padded positions (%)")
    ax.set_title("share of computed positions that are padding", fontsize=10)
    ax = axes[0][1]
    ax.plot(result.step_batch_size, color="tab:green", label="mean sequences still running")
    ax.axhline(result.batch_size, color="0.6", ls="--", lw=0.8, label="batch size")
    if result.example_batch_sizes:
        ax.plot(result.example_batch_sizes, color="0.4", lw=0.8, label="first batch")
    ax.set_xlabel("time step t")
    ax.set_ylabel("packed batch size at step t")
    ax.set_title("packed: per-step batch sizes (the tail)", fontsize=10)
    ax.legend(fontsize=8)
    return [_save(fig, folder / "padding.png")]


def plot_parameters(result: ParametersResult, folder: Path) -> list[Path]:
    """parameters.png: stacked bars of embedding / recurrent / head parameters per model."""
    fig, axes = _figure(1, 1, "parameters per model")
    ax = axes[0][0]
    labels = [m.label for m in result.models]
    bottom = [0.0] * len(labels)
    for part, color in (("embedding", "0.7"), ("recurrent", "tab:blue"), ("head", "tab:orange")):
        values = [float(m.counts.get(part, 0)) for m in result.models]
        ax.bar(labels, values, bottom=bottom, color=color, label=part)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("parameters")
    ax.legend(fontsize=8)
    return [_save(fig, folder / "parameters.png")]
