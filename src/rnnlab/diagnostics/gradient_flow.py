"""Gradient flow through time: how much of the loss gradient reaches each time step.

For a batch of texts that are all at least T tokens long (cut to their first T tokens, so every
position is a real token), the loss is backpropagated once and we read, at every step t:

- ||dL/dx_t||: the gradient w.r.t. the embedded input, through the model's own forward pass
  (the fused torch.nn layer, or whatever `impl` / `sequence_mode` the model uses);
- ||dL/dh_t|| (and ||dL/dc_t|| for an LSTM): the gradient w.r.t. the hidden (cell) state of the
  last layer's forward direction, through the hand-written cells (`model.trace`), where each
  state is a node on the loss path.

Norms are L2 over the feature dimension, then averaged over the batch. L is the *sum* of the
per-example losses, so each row's gradient is that example's own loss gradient, independent of
the batch size. Gradients run in train mode with every dropout off (cuDNN refuses RNN backward
in eval mode) and, by default, in float64: a vanilla RNN's gradient at early steps easily falls
below float32's smallest number (~1e-45) and would read as exactly 0.

The early/late ratio compares the value at an early step with the one at a late step (by
default t = 10 and 190 of T = 200, 0-based, scaled to T): READINGS gives the plain words.

result.json (`"kind": "gradient_flow"`):
  dataset, split, seq_len (T), batch_size (texts used), rows (their indices in the split),
  labels (their class ids), dtype, device, seed,
  steps: [early, middle, late] checkpoint steps (0-based),
  thresholds: {"severe": 0.01, "vanishing": 0.1, "growing": 10.0} (see `reading`),
  models: one object per model with
    label, kind, source ("fresh" or the run folder),
    grad_x: T numbers, ||dL/dx_t|| per step (null where not finite),
    grad_h: T numbers, ||dL/dh_t|| per step,
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
    finite_list,
    gradient_mode,
    long_texts,
    make_batch,
    prepare,
    resolve_device,
    sum_loss,
)
from rnnlab.errors import check

THRESHOLDS = {"severe": 0.01, "vanishing": 0.1, "growing": 10.0}
"""early/late ratio < severe: "severe vanishing"; < vanishing: "vanishing"; > growing:
"growing" (early steps get more gradient than late ones); otherwise "well preserved"."""
REFERENCE_STEPS = (10, 100, 190)
REFERENCE_T = 200
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def reading(ratio: float | None) -> str:
    """Plain words for an early/late gradient ratio (thresholds in THRESHOLDS)."""
    if ratio is None:
        return "no gradient"
    if ratio < THRESHOLDS["severe"]:
        return "severe vanishing"
    if ratio < THRESHOLDS["vanishing"]:
        return "vanishing"
    if ratio > THRESHOLDS["growing"]:
        return "growing"
    return "well preserved"


def default_steps(seq_len: int) -> list[int]:
    """t = 10, 100, 190 for T = 200, scaled to T (0-based, within [0, T-1])."""
    return [min(seq_len - 1, max(0, round(t * seq_len / REFERENCE_T))) for t in REFERENCE_STEPS]


def ratio(values: Sequence[float | None], early: int, late: int) -> float | None:
    a, b = values[early], values[late]
    if a is None or b is None or b == 0:
        return None
    return finite(a / b)


def decades_per_100_steps(values: Sequence[float | None]) -> float | None:
    """Orders of magnitude the norm loses per 100 steps back in time (fit over non-zero steps)."""
    pairs = [(t, v) for t, v in enumerate(values) if v is not None and v > 0]
    if len(pairs) < 2:
        return None
    t, v = np.asarray(pairs, dtype=np.float64).T
    slope = np.polyfit(t, np.log10(v), 1)[0]
    return finite(100.0 * slope)


# ----- the computation -------------------------------------------------------------------------
@dataclass
class StepGradients:
    """Per-step gradients of the summed loss for one batch."""

    x: Tensor  # (B, T, E) dL/dx_t through the model's own forward pass
    x_trace: Tensor  # (B, T, E) dL/dx_t through the hand-written cells
    h: Tensor  # (B, T, H) dL/dh_t, last layer, forward direction
    c: Tensor | None  # (B, T, H) dL/dc_t for an LSTM
    lengths: Tensor  # (B,) int64 on the CPU

    def norms(self) -> dict[str, np.ndarray]:
        """(T,) per-step norms, L2 over features and mean over the rows that reach step t."""
        out = {"x": _mean_norm(self.x, self.lengths), "h": _mean_norm(self.h, self.lengths)}
        if self.c is not None:
            out["c"] = _mean_norm(self.c, self.lengths)
        return out


def _mean_norm(grad: Tensor, lengths: Tensor) -> np.ndarray:
    norms = grad.detach().double().norm(dim=-1).cpu()  # (B, T)
    mask = torch.arange(norms.shape[1])[None, :] < lengths[:, None]  # (B, T)
    counts = mask.sum(dim=0)  # (T,)
    means = (norms * mask).sum(dim=0) / counts.clamp(min=1)
    means[counts == 0] = float("nan")
    return means.numpy()


def step_gradients(
    model: nn.Module, tokens: Tensor, lengths: Tensor, labels: Tensor
) -> StepGradients:
    """dL/dx_t (model forward and hand-written cells) and dL/dh_t, dL/dc_t at every step.

    tokens (B, T) ids (or (B, T, F) features), lengths (B,), labels (B,); everything on the
    model's device. Runs in gradient mode (train, dropout off); parameter .grad is untouched.
    """
    with gradient_mode(model):
        embedded = model.embed(tokens).detach()  # type: ignore[operator]  # (B, T, E)
        x = embedded.clone().requires_grad_(True)
        logits = model.forward_embedded(x, lengths)  # type: ignore[operator]  # (B, C)
        (grad_x,) = torch.autograd.grad(sum_loss(model, logits, labels), [x])

        x_cells = embedded.clone().requires_grad_(True)
        logits, trace = model.trace(x_cells, lengths)  # type: ignore[operator]
        cells = list(trace.cell) if trace.cell is not None else []
        nodes = [x_cells, *trace.hidden, *cells]
        raw = torch.autograd.grad(sum_loss(model, logits, labels), nodes, allow_unused=True)
    grads = [torch.zeros_like(n) if g is None else g for n, g in zip(nodes, raw, strict=True)]
    steps = len(trace.hidden)
    grad_h = torch.stack(grads[1 : 1 + steps], dim=1)  # (B, T, H)
    grad_c = torch.stack(grads[1 + steps :], dim=1) if cells else None  # (B, T, H)
    return StepGradients(grad_x, grads[0], grad_h, grad_c, trace.lengths)


# ----- the result ------------------------------------------------------------------------------
@dataclass
class ModelGradients:
    label: str
    kind: str
    source: str
    grad_x: list[float | None]
    grad_h: list[float | None]
    grad_c: list[float | None] | None
    x_at_steps: list[float | None]
    h_at_steps: list[float | None]
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
        columns = ["model", *(f"t={t}" for t in s), f"t={s[0]}/t={s[-1]}", "reading"]
        title = (
            f"||dL/dx_t|| on {self.batch_size} {self.dataset} {self.split} texts cut to "
            f"T={self.seq_len} ({self.dtype})"
        )
        x_rows, h_rows = [], []
        for m in self.models:
            x_rows.append([m.label, *map(_sci, m.x_at_steps), _sci(m.ratio_x), m.reading_x])
            h_rows.append([m.label, *map(_sci, m.h_at_steps), _sci(m.ratio_h), m.reading_h])
        notes = [
            "reading: early/late ratio < 0.01 severe vanishing, < 0.1 vanishing, > 10 growing, "
            "else well preserved",
            "decades lost per 100 steps back in time (dL/dx): "
            + ", ".join(f"{m.label} {_fixed(m.decades_x)}" for m in self.models),
        ]
        return [
            Table(title, columns, x_rows, notes),
            Table("||dL/dh_t|| through the hand-written cells (model.trace)", columns, h_rows),
        ]

    def figures(self, folder: Path) -> list[Path]:
        from rnnlab.diagnostics import plots

        return plots.plot_gradient_flow(self, folder)


def _sci(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def _fixed(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def gradient_flow(
    entries: Sequence[ModelEntry],
    *,
    seq_len: int = 200,
    batch_size: int = 32,
    split: str = "test",
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: str = "float64",
    log: Logger | None = None,
) -> GradientFlowResult:
    """Per-step gradient norms for every model on the same texts (at least `seq_len` tokens)."""
    check(seq_len > 0, f"seq_len must be positive (got {seq_len}); e.g. --seq-len 200")
    check(batch_size > 0, f"batch_size must be positive (got {batch_size})")
    check(dtype in DTYPES, f"dtype must be float32 or float64, not {dtype!r}")
    check(bool(entries), "no models to diagnose")
    target = resolve_device(device) if isinstance(device, str) else device
    dataset = dataset_name(entries)
    steps = default_steps(seq_len)
    result: GradientFlowResult | None = None
    for entry in entries:
        data = entry.splits.split(split)
        rows = long_texts(data, seq_len, batch_size, seed=seed, what=f"the {dataset} {split} split")
        batch = make_batch(data, rows, seq_len).to(target)
        if result is None:
            result = GradientFlowResult(
                dataset, split, seq_len, len(rows), rows.tolist(), batch.labels.tolist(),
                dtype, str(target), seed, steps, dict(THRESHOLDS),
            )  # fmt: skip
        if log:
            log(f"gradient flow: {entry.label} on {len(rows)} texts, T={seq_len}")
        model = prepare(entry.model, target, DTYPES[dtype])
        tokens = batch.tokens
        if tokens.is_floating_point():  # continuous inputs follow the model's dtype
            tokens = tokens.to(DTYPES[dtype])
        grads = step_gradients(model, tokens, batch.lengths, batch.labels)
        norms = {k: finite_list(v) for k, v in grads.norms().items()}
        scale = float(grads.x.abs().max())
        diff = float((grads.x - grads.x_trace).abs().max())
        result.models.append(
            ModelGradients(
                label=entry.label,
                kind=entry.kind,
                source=entry.source,
                grad_x=norms["x"],
                grad_h=norms["h"],
                grad_c=norms.get("c"),
                x_at_steps=[norms["x"][t] for t in steps],
                h_at_steps=[norms["h"][t] for t in steps],
                ratio_x=(rx := ratio(norms["x"], steps[0], steps[-1])),
                ratio_h=(rh := ratio(norms["h"], steps[0], steps[-1])),
                reading_x=reading(rx),
                reading_h=reading(rh),
                decades_x=decades_per_100_steps(norms["x"]),
                decades_h=decades_per_100_steps(norms["h"]),
                trace_max_rel_diff=finite(diff / scale) if scale > 0 else None,
            )
        )
    assert result is not None
    return result
