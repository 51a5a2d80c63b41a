"""The one plotting set-up: figures on matplotlib's Agg canvas, one DPI, one palette.

Figures are drawn on a `Figure` with its own `FigureCanvasAgg`, never through pyplot, so no
global backend is switched and a notebook's own backend stays as it is; a returned figure
still shows inline in Jupyter.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnlab.io import write_with

DPI = 110
PALETTE = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink")


def colormap(name: str) -> Any:
    """A matplotlib colormap by name (e.g. viridis)."""
    from matplotlib import colormaps  # matplotlib loads on first use: the CLI starts faster

    return colormaps[name]


def new_figure(
    nrows: int = 1, ncols: int = 1, title: str = "", *, width: float = 5.0, height: float = 3.6
) -> tuple[Any, Any]:
    """A figure of nrows x ncols panels of width x height inches each; axes as a 2-D array."""
    # matplotlib loads on first use: commands that draw nothing start faster
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    if title:
        fig.suptitle(title)
    return fig, axes


def save_png(fig: Any, path: Path | str) -> Path:
    """Write the figure as a PNG atomically; returns the path."""
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    return Path(path)


def png_bytes(fig: Any) -> bytes:
    """The figure as PNG bytes (for a page that embeds it)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def nan_for_none(values: Sequence[float | None]) -> list[float]:
    """Missing values as NaN, which matplotlib leaves out of a line."""
    return [float("nan") if v is None else float(v) for v in values]
