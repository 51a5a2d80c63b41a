"""Figures that no run folder already holds, drawn from saved numbers into PNG bytes
(rnnlab.plotting: the Agg canvas and no pyplot state, so it is safe in threads and servers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnnlab.plotting import new_figure, png_bytes


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Any, list[Any]]:
    fig, axes = new_figure(1, ncols, width=width / ncols, height=height)
    return fig, list(axes[0])


def _png(fig: Any) -> bytes:
    return png_bytes(fig)


def length_histogram(
    edges: Sequence[float], counts: Sequence[float], *, max_len: int | None = None
) -> bytes:
    """Token lengths of the training texts, with the truncation length marked."""
    fig, (ax,) = _figure(6.4, 3.4)
    edges_a = np.asarray(edges, dtype=float)
    counts_a = np.asarray(counts, dtype=float)
    ax.bar(edges_a[:-1], counts_a, width=np.diff(edges_a), align="edge", color="C0", alpha=0.8)
    if max_len:
        ax.axvline(max_len, color="C3", linestyle="--", label=f"max_len = {max_len}")
        ax.legend(fontsize="small")
    ax.set_xlabel("tokens per text")
    ax.set_ylabel("texts")
    ax.set_title("Length of the training texts")
    ax.grid(alpha=0.3)
    return _png(fig)


def confusion_matrices(
    matrices: Mapping[str, tuple[Sequence[str], Sequence[Sequence[int]]]],
) -> bytes:
    """One heat map per model: rows are true labels, columns predictions, cells counts."""
    n = len(matrices)
    size = max(len(labels) for labels, _ in matrices.values())
    panel = 2.2 + 0.45 * size
    fig, axes = _figure(panel * n, panel + 0.4, ncols=n)
    for ax, (name, (labels, matrix)) in zip(axes, matrices.items(), strict=True):
        m = np.asarray(matrix, dtype=float)
        total = m.sum(axis=1, keepdims=True)
        share = np.divide(m, total, out=np.zeros_like(m), where=total > 0)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                color = "white" if share[i, j] > 0.6 else "black"
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", color=color)
        ticks = range(len(labels))
        short = [str(label)[:12] for label in labels]
        ax.set_xticks(list(ticks), short, rotation=30 if size > 2 else 0, fontsize="small")
        ax.set_yticks(list(ticks), short, fontsize="small")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(str(name))
    return _png(fig)


def accuracy_intervals(points: Mapping[str, tuple[float, float, float]]) -> bytes:
    """Test accuracy per model as a dot with its 95% interval (model -> (accuracy, low, high))."""
    fig, (ax,) = _figure(6.4, 0.9 + 0.45 * len(points))
    names = list(points)
    y = np.arange(len(names))[::-1]  # the first model on top
    acc = np.array([points[n][0] for n in names])
    low = acc - np.array([points[n][1] for n in names])
    high = np.array([points[n][2] for n in names]) - acc
    ax.errorbar(acc, y, xerr=[low, high], fmt="o", capsize=4, color="C0")
    for yi, a in zip(y, acc, strict=True):
        ax.annotate(f"{100 * a:.1f}%", (a, yi), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize="small")  # fmt: skip
    ax.set_yticks(list(y), names)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlabel("test accuracy (bars: 95% interval)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def accuracy_by_length(series: Mapping[str, Sequence[tuple[str, float]]]) -> bytes:
    """Test accuracy per length bucket, one line per model (buckets as category labels)."""
    fig, (ax,) = _figure(6.4, 3.4)
    buckets: list[str] = []
    for points in series.values():
        for bucket, _ in points:
            if bucket not in buckets:
                buckets.append(bucket)
    for i, (name, points) in enumerate(series.items()):
        xs = [buckets.index(b) for b, _ in points]
        ax.plot(xs, [v for _, v in points], marker="o", color=f"C{i % 10}", label=str(name))
    ax.set_xticks(range(len(buckets)), buckets, fontsize="small")
    ax.set_xlabel("tokens per test text")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("Test accuracy by text length")
    return _png(fig)
