"""The gradient-flow diagnostic's result: per model, the gradient norm at every time step
(||dL/dx_t||, ||dL/dh_t||, ||dL/dc_t||), its values at the chosen steps and the early/late
ratios in words; its tables and figures (linear and log scale).

result.json (`"kind": "gradient_flow"`):
  dataset, split, seq_len (T), batch_size (texts used), rows (their indices in the split),
  labels (their class ids), dtype, device, seed,
  steps: [early, middle, late] checkpoint steps (0-based),
  thresholds: {"severe": 0.01, "vanishing": 0.1, "growing": 10.0} (see `gradient_flow.reading`),
  models: one object per model with
    label, kind, source ("fresh" or the run folder),
    grad_x: T numbers, ||dL/dx_t|| per step (null where not finite),
    grad_h: T numbers, ||dL/dh_t|| per step (null for a model without per-step states),
    grad_c: T numbers for an LSTM (||dL/dc_t||), else null,
    x_at_steps, h_at_steps: the values at `steps`,
    ratio_x, ratio_h: value at steps[0] / value at steps[-1] (null if undefined),
    reading_x, reading_h: plain words for the ratios,
    decades_x, decades_h: orders of magnitude lost per 100 steps back in time (slope of a
      least-squares fit of log10(norm) against t over the steps with a non-zero norm),
    trace_max_rel_diff: max |dL/dx (fused) - dL/dx (hand-written cells)| / max |dL/dx|,
      a self-check that both paths agree (about 1e-15 in float64).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from rnnlab.diagnostics.result import FigureSpec, Result
from rnnlab.formatting import fixed, sci, share, sig
from rnnlab.models.families import colors
from rnnlab.plotting import nan_for_none, new_figure
from rnnlab.tables import Table


@dataclass
class ModelGradients:
    label: str
    kind: str
    source: str
    grad_x: list[float | None]
    grad_h: list[float | None] | None
    grad_c: list[float | None] | None
    x_at_steps: list[float | None]
    h_at_steps: list[float | None] | None
    ratio_x: float | None
    ratio_h: float | None
    reading_x: str
    reading_h: str
    decades_x: float | None
    decades_h: float | None
    trace_max_rel_diff: float | None


@dataclass
class GradientFlowResult(Result):
    kind = "gradient_flow"

    dataset: str
    split: str
    seq_len: int
    batch_size: int
    rows: list[int]
    labels: list[int]
    dtype: str
    device: str
    seed: int
    steps: list[int]
    thresholds: dict[str, float]
    models: list[ModelGradients] = field(default_factory=list)

    def tables(self) -> list[Table]:
        s = self.steps
        columns = ["model", *(f"t={t}" for t in s), f"t={s[0]} / t={s[-1]}", "reading"]
        numeric = [False, *([True] * (len(s) + 1)), False]
        x_rows = [
            [m.label, *map(sci, m.x_at_steps), sci(m.ratio_x), m.reading_x, fixed(m.decades_x)]
            for m in self.models
        ]
        traced = [m for m in self.models if m.h_at_steps is not None]
        h_rows = [
            [m.label, *map(sci, m.h_at_steps or []), sci(m.ratio_h), m.reading_h] for m in traced
        ]
        notes = [
            "reading: early/late ratio < 0.01 severe vanishing, < 0.1 vanishing, > 10 growing, "
            "else well preserved"
        ]
        h_notes = [
            f"||dL/dh_t||: not applicable to {m.label}"
            + (f" ({m.kind})" if m.kind != m.label else "")
            + f": {m.reading_h}"
            for m in self.models
            if m.h_at_steps is None
        ]
        return [
            Table(
                f"||dL/dx_t|| at chosen steps ({self.dataset} {self.split}, {self.batch_size} "
                f"texts cut to T={self.seq_len}, {self.dtype})",
                [*columns, "decades / 100 steps"], x_rows, notes, [*numeric, True],
                row_ids=[f"grad-{m.label}" for m in self.models],
            ),
            Table(
                "||dL/dh_t|| through the hand-written cells (model.trace)", columns, h_rows,
                h_notes, numeric=numeric,
            ),
        ]  # fmt: skip

    def figures(self) -> list[FigureSpec]:
        early, late = self.steps[0], self.steps[-1]
        keeps = [
            f"{m.label} keeps {share(m.ratio_x)}" for m in self.models if m.ratio_x is not None
        ]
        caption = []
        if keeps:
            caption.append(
                f"Gradient at step t={early} as a share of the gradient at t={late} "
                f"(||dL/dx_t||, {self.batch_size} texts cut to T={self.seq_len}): "
                + "; ".join(keeps) + "."
            )  # fmt: skip
        caption.append(
            f"In words (share below {share(self.thresholds['severe'])}: severe vanishing, "
            f"below {share(self.thresholds['vanishing'])}: vanishing): "
            + ", ".join(f"{m.label} {m.reading_x}" for m in self.models) + "."
        )  # fmt: skip
        decades = [
            f"{m.label} {sig(m.decades_x, 2)}" for m in self.models if m.decades_x is not None
        ]
        log_caption = list(caption)
        if decades:
            log_caption = [
                "The same norms on a log scale: a straight line means the gradient shrinks by "
                "the same factor at every step back in time.",
                "Slope of log10 of the norm per 100 steps, from a straight-line fit (2 means the "
                "gradient 100 steps earlier is about 100 times smaller): "
                + ", ".join(decades) + ".",
            ]  # fmt: skip
        return [
            FigureSpec(
                f"gradient_flow_{scale}.png",
                f"Gradient norm at every time step ({scale} scale)",
                text,
                functools.partial(self._draw, scale),
            )
            for scale, text in (("linear", caption), ("log", log_caption))
        ]

    def _draw(self, scale: str) -> Any:
        palette = colors([m.label for m in self.models], [m.kind for m in self.models])
        title = (
            f"gradient flow through time: {self.dataset} {self.split}, "
            f"{self.batch_size} texts, T={self.seq_len} ({scale} scale)"
        )
        fig, axes = new_figure(1, 2, title)
        for ax, key, name in (
            (axes[0][0], "grad_x", "||dL/dx_t|| (embedded input)"),
            (axes[0][1], "grad_h", "||dL/dh_t|| (hidden state, hand-written cells)"),
        ):
            drawn = [m for m in self.models if getattr(m, key) is not None]  # dL/dh_t: states
            for m in drawn:
                ax.plot(
                    nan_for_none(getattr(m, key)), label=m.label, color=palette[m.label], lw=1.4
                )
            ax.set_yscale(scale)
            ax.set_xlabel("time step t")
            ax.set_title(name, fontsize=10)
            for t in self.steps:
                ax.axvline(t, color="0.8", lw=0.8, ls=":")
            if drawn:
                ax.legend(fontsize=8)
            else:
                ax.text(0.5, 0.5, "no model here has per-step states", ha="center",
                        va="center", transform=ax.transAxes, color="0.4")  # fmt: skip
        return fig
