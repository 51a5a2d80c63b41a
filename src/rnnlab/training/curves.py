"""Learning-curve PNGs from metrics.jsonl records (one run, or several side by side)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rnnlab.plotting import new_figure, save_png

Record = Mapping[str, Any]


def _series(history: Sequence[Record], key: str) -> tuple[list[int], list[float]]:
    points = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def _panels(history: Sequence[Record]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, [(metric key, legend label)]) per panel, depending on what was recorded."""
    panels = [("loss", [("train_loss", "train"), ("val_loss", "val")])]
    if any(r.get("train_accuracy") is not None for r in history):
        acc = [("train_accuracy", "train acc"), ("val_accuracy", "val acc")]
        panels.append(("accuracy / macro-F1", [*acc, ("val_macro_f1", "val macro-F1")]))
    elif any(r.get("val_mse") is not None for r in history):
        panels.append(("validation MSE", [("val_mse", "val mse")]))
    return panels


def curves_figure(history: Sequence[Record], *, title: str = "") -> Any:
    """Loss and accuracy (or MSE) per epoch for one run; the best epoch is marked."""
    panels = _panels(history)
    fig, axes = new_figure(1, len(panels), title, width=4.6)
    best = [r["epoch"] for r in history if r.get("best")]
    for ax, (name, keys) in zip(axes[0], panels, strict=True):
        for key, label in keys:
            epochs, values = _series(history, key)
            if epochs:
                ax.plot(epochs, values, marker="o", label=label)
        if best:
            ax.axvline(best[-1], color="grey", linestyle=":", linewidth=1, label="best epoch")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def compare_curves_figure(histories: Mapping[str, Sequence[Record]], *, title: str = "") -> Any:
    """Several runs side by side: one panel per metric, one colour per run (val solid, train
    dashed)."""
    panels = _panels([r for h in histories.values() for r in h])
    fig, axes = new_figure(1, len(panels), title, width=4.6)
    colors = [f"C{i % 10}" for i in range(len(histories))]
    for ax, (name, keys) in zip(axes[0], panels, strict=True):
        for color, (run, history) in zip(colors, histories.items(), strict=True):
            for key, _ in keys:
                epochs, values = _series(history, key)
                if not epochs:
                    continue
                style = "--" if key.startswith("train") else ":" if "macro_f1" in key else "-"
                short = key.replace("_accuracy", " acc").replace("_", " ")
                ax.plot(epochs, values, style, color=color, marker="o", label=f"{run} {short}")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    return fig


def plot_curves(history: Sequence[Record], path: Path | str, *, title: str = "") -> Path:
    return save_png(curves_figure(history, title=title), path)


def plot_compare_curves(
    histories: Mapping[str, Sequence[Record]], path: Path | str, *, title: str = ""
) -> Path:
    return save_png(compare_curves_figure(histories, title=title), path)
