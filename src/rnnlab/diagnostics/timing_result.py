"""The timing diagnostic's result: per model, mode and flush setting, the median seconds per
batch at every sequence length (forward, forward + backward, every repeat) and a straight-line
fit of time against length; its table and figure, and the share of the backward time that
flushing subnormal floats saved.

result.json (`"kind": "timing"`):
  device, threads (CPU threads), batch_size, lengths, modes, flush_denormal (the settings
  measured, "on"/"off"), warmup, repeats, seed, cpu (model name and ISA),
  models: one object per model with label, kind, source, spec (hidden_dim, embed_dim, ...),
    modes: one object per (mode, flush) with mode, flush_denormal, forward, forward_backward
      (median seconds per batch, aligned with `lengths`), forward_runs, forward_backward_runs
      (every repeat, seconds), forward_fit, forward_backward_fit: {slope (seconds per step),
      intercept (seconds), r2 (null with fewer than 3 lengths or no spread)}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rnnlab.diagnostics.result import FigureSpec, Result
from rnnlab.formatting import MISSING, factor, pct
from rnnlab.plotting import new_figure
from rnnlab.tables import Table


@dataclass
class LinearFit:
    slope: float | None
    """Seconds per time step."""
    intercept: float | None
    r2: float | None


@dataclass
class ModeTiming:
    mode: str
    forward: list[float]
    forward_backward: list[float]
    forward_runs: list[list[float]]
    forward_backward_runs: list[list[float]]
    forward_fit: LinearFit
    forward_backward_fit: LinearFit
    flush_denormal: str = "off"
    """`on` or `off` (results written before the flush comparison: off)."""

    @property
    def backward(self) -> list[float]:
        """Median forward+backward minus median forward per length: the backward's share."""
        return [max(b - f, 0.0) for f, b in zip(self.forward, self.forward_backward, strict=True)]


@dataclass
class ModelTiming:
    label: str
    kind: str
    source: str
    spec: dict[str, Any]
    modes: list[ModeTiming] = field(default_factory=list)

    def timing(self, mode: str, flush: str) -> ModeTiming | None:
        return next((t for t in self.modes if t.mode == mode and t.flush_denormal == flush), None)


def _ms(seconds: float | None) -> str:
    return MISSING if seconds is None else f"{1e3 * seconds:.3f}"


@dataclass
class TimingResult(Result):
    kind = "timing"

    device: str
    threads: int
    batch_size: int
    lengths: list[int]
    modes: list[str]
    warmup: int
    repeats: int
    seed: int
    models: list[ModelTiming] = field(default_factory=list)
    flush_denormal: list[str] = field(default_factory=lambda: ["off"])
    cpu: str = ""

    def subnormal_shares(self) -> list[tuple[str, float]]:
        """(model, share of the padded backward time at the longest T that the flush saved),
        where both settings were measured."""
        shares = []
        for m in self.models:
            on, off = m.timing("padded", "on"), m.timing("padded", "off")
            if on is None or off is None or not off.backward[-1]:
                continue
            shares.append((m.label, max(0.0, 1.0 - on.backward[-1] / off.backward[-1])))
        return shares

    def tables(self) -> list[Table]:
        several = len(self.flush_denormal) > 1
        rows = []
        for m in self.models:
            for t in m.modes:
                rows.append(
                    [m.label, t.mode, *([t.flush_denormal] if several else []),
                     *(f"{1e3 * v:.1f}" for v in t.forward_backward),
                     _ms(t.forward_fit.slope), _ms(t.forward_backward_fit.slope),
                     MISSING if t.forward_backward_fit.r2 is None else f"{t.forward_backward_fit.r2:.3f}"]
                )  # fmt: skip
        columns = ["model", "mode", *(["flush"] if several else []),
                   *(f"T={n} ms" for n in self.lengths), "fwd ms/step", "fwd+bwd ms/step", "R²"]  # fmt: skip
        notes = ["ms/step: slope of a least-squares line of time against T; R² of the fwd+bwd line"]
        shares = self.subnormal_shares()
        if shares:
            notes.append(self.subnormal_sentence(shares))
        title = (
            f"Forward + backward time per batch of {self.batch_size} (median of {self.repeats}, "
            f"ms) on {self.device}{f' ({self.cpu})' if self.cpu else ''}"
        )
        left = 3 if several else 2
        return [Table(title, columns, rows, notes, [False] * left + [True] * (len(columns) - left))]

    def subnormal_sentence(self, shares: list[tuple[str, float]]) -> str:
        parts = ", ".join(f"{label} {pct(s)}" for label, s in shares)
        return (
            f"Subnormal arithmetic on this machine ({self.cpu or self.device}): flushing subnormal "
            f"floats to zero cut the padded backward time at T={self.lengths[-1]} by {parts}."
        )

    def figures(self) -> list[FigureSpec]:
        growth, slopes = [], []
        flush = "on" if "on" in self.flush_denormal else self.flush_denormal[0]
        for m in self.models:
            t = m.timing("padded", flush)
            if t is None:
                continue
            fit = t.forward_backward_fit
            if fit.slope is not None:
                r2 = f", R² {fit.r2:.2f}" if fit.r2 is not None else ""
                slopes.append(f"{m.label} {1e3 * fit.slope:.3f} ms per step{r2}")
            fb = t.forward_backward
            if len(fb) >= 2 and fb[0]:
                growth.append(f"{m.label} {factor(fb[-1] / fb[0])}")
        caption = []
        if growth:
            caption.append(
                f"Going from T={self.lengths[0]} to T={self.lengths[-1]} "
                f"({self.lengths[-1] / self.lengths[0]:.0f}x the steps) multiplies the padded "
                "forward+backward time by: " + ", ".join(growth) + "."
            )
        if slopes:
            caption.append(
                "Slope of a straight line through time vs T (padded): " + ", ".join(slopes)
                + "; an R² near 1 means the time is linear in the length, the serial bottleneck."
            )  # fmt: skip
        shares = self.subnormal_shares()
        if shares:
            caption.append(self.subnormal_sentence(shares))
        return [FigureSpec("timing.png", "Time per batch vs sequence length", caption, self._draw)]

    def _draw(self) -> Any:
        palette = {"padded": "tab:blue", "packed": "tab:orange", "scratch": "tab:red"}
        title = f"time per batch of {self.batch_size} vs sequence length ({self.device})"
        fig, axes = new_figure(1, len(self.models), title, width=4.6)
        for ax, m in zip(axes[0], self.models, strict=True):
            for t in m.modes:
                color = palette.get(t.mode, "0.3")
                name = (
                    t.mode
                    if len(self.flush_denormal) == 1
                    else f"{t.mode}, flush {t.flush_denormal}"
                )
                dim = t.flush_denormal == "off" and len(self.flush_denormal) > 1
                alpha = 0.5 if dim else 1.0
                ax.plot(self.lengths, [1e3 * v for v in t.forward_backward], marker="o",
                        color=color, alpha=alpha, label=f"{name} fwd+bwd")  # fmt: skip
                ax.plot(self.lengths, [1e3 * v for v in t.forward], marker=".", ls="--",
                        color=color, alpha=alpha, label=f"{name} fwd")  # fmt: skip
                fit = t.forward_backward_fit
                if fit.slope is not None and fit.intercept is not None:
                    line = [1e3 * (fit.intercept + fit.slope * n) for n in self.lengths]
                    ax.plot(self.lengths, line, ls=":", color=color, lw=0.8, alpha=alpha)
            ax.set_title(m.label, fontsize=10)
            ax.set_xlabel("sequence length T")
            ax.set_ylabel("ms per batch")
            ax.legend(fontsize=7)
        return fig
