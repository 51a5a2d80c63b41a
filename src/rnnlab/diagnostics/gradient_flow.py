"""Gradient flow through time: how much of the loss gradient reaches each time step.

For a batch of texts that are all at least T tokens long (cut to their first T tokens, so every
position is a real token), the loss is backpropagated once and we read, at every step t:

- ||dL/dx_t||: the gradient w.r.t. the embedded input, through the model's own forward pass
  (the fused torch.nn layer, or whatever `impl` / `sequence_mode` the model uses);
- ||dL/dh_t|| (and ||dL/dc_t|| for an LSTM): the gradient w.r.t. the hidden (cell) state of the
  last layer's forward direction, through the hand-written cells (`model.trace`, minGRU /
  minLSTM: their sequential mode), where each state is a node on the loss path. Families
  without per-step states (bag of n-grams, Transformer) get ||dL/dx_t|| only; their dL/dh_t
  part is "not applicable" (grad_h null, reading_h says why).

Norms are L2 over the feature dimension, then averaged over the batch. L is the *sum* of the
per-example losses, so each row's gradient is that example's own loss gradient, independent of
the batch size. Gradients run in train mode with every dropout off (cuDNN refuses RNN backward
in eval mode) and, by default, in float64: a vanilla RNN's gradient at early steps easily falls
below float32's smallest number (~1e-45) and would read as exactly 0. float64 also keeps the
measurement independent of the CPU's flush-to-zero mode: its smallest normal number is 2e-308.

The early/late ratio compares the value at an early step with the one at a late step (by
default t = 10 and 190 of T = 200, 0-based, scaled to T); `reading` gives the plain words.

The result (result.json's schema, tables, figures) is
`rnnlab.diagnostics.gradient_flow_result`'s.

A trained run with a `tensorboard/` folder (trained with --tensorboard) also gets its curves
there (`write_tensorboard`): scalars gradient_flow/grad_x_T<T>, grad_h_T<T> (and grad_c_T<T>
for an LSTM), one point per time step t (TensorBoard's step axis is t).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab.config import check_positive
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.gradient_flow_result import GradientFlowResult, ModelGradients
from rnnlab.diagnostics.gradients import gradient_mode, private_copy, sum_loss
from rnnlab.diagnostics.inputs import Inputs, Logger, ModelEntry
from rnnlab.diagnostics.texts import long_texts, make_batch
from rnnlab.errors import check
from rnnlab.formatting import finite, finite_list
from rnnlab.layout import TENSORBOARD
from rnnlab.training import tensorboard

THRESHOLDS = {"severe": 0.01, "vanishing": 0.1, "growing": 10.0}
"""early/late ratio < severe: "severe vanishing"; < vanishing: "vanishing"; > growing:
"growing" (early steps get more gradient than late ones); otherwise "well preserved"."""
REFERENCE_STEPS = (10, 100, 190)
REFERENCE_T = 200
DTYPES = {"float32": torch.float32, "float64": torch.float64}
Split = Literal["test", "val", "train"]


@dataclass(frozen=True)
class Settings:
    seq_len: int = 200
    """Time steps T: texts with at least T tokens, cut to their first T."""
    batch_size: int = 32
    """Texts to read (fewer when fewer are that long)."""
    split: Split = "test"
    """The split the texts come from."""
    dtype: Literal["float64", "float32"] = "float64"
    """float64 keeps gradients below float32's smallest number (1e-45) visible."""

    def __post_init__(self) -> None:
        check_positive(self, "seq_len", "batch_size")
        check(self.dtype in DTYPES, f"--dtype must be float64 or float32, not {self.dtype!r}")


QUICK = Settings(seq_len=100, batch_size=16)


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
    x_trace: Tensor | None  # (B, T, E) dL/dx_t through the hand-written cells
    h: Tensor | None  # (B, T, H) dL/dh_t, last layer, forward direction (None: no states)
    c: Tensor | None  # (B, T, H) dL/dc_t for an LSTM
    lengths: Tensor  # (B,) int64 on the CPU

    def norms(self) -> dict[str, np.ndarray]:
        """(T,) per-step norms, L2 over features and mean over the rows that reach step t."""
        out = {"x": _mean_norm(self.x, self.lengths)}
        if self.h is not None:
            out["h"] = _mean_norm(self.h, self.lengths)
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
    A model without per-step states (no `trace`) gets dL/dx_t only.
    """
    with gradient_mode(model):
        embedded = model.embed(tokens).detach()  # type: ignore[operator]  # (B, T, E)
        x = embedded.clone().requires_grad_(True)
        logits = model.forward_embedded(x, lengths)  # type: ignore[operator]  # (B, C)
        (grad_x,) = torch.autograd.grad(sum_loss(model, logits, labels), [x])
        if not getattr(model, "has_states", hasattr(model, "trace")):
            steps = tokens.shape[1]
            clean = lengths.detach().to("cpu", torch.int64).clamp(1, max(steps, 1))
            return StepGradients(grad_x, None, None, None, clean)

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


def gradient_flow(
    entries: Sequence[ModelEntry],
    settings: Settings | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Logger | None = None,
    **changes: Any,
) -> GradientFlowResult:
    """Per-step gradient norms for every model on the same texts (at least `seq_len` tokens);
    `changes` replace single settings (gradient_flow(entries, seq_len=100))."""
    s = dataclasses.replace(settings or Settings(), **changes)
    check(bool(entries), "no models to diagnose")
    target = torch.device(device) if isinstance(device, str) else device
    dataset = entries[0].dataset
    steps = default_steps(s.seq_len)
    result: GradientFlowResult | None = None
    for entry in entries:
        data = entry.splits.split(s.split)
        rows = long_texts(
            data, s.seq_len, s.batch_size, seed=seed, what=f"the {dataset} {s.split} split"
        )
        batch = make_batch(data, rows, s.seq_len).to(target)
        if result is None:
            result = GradientFlowResult(
                dataset, s.split, s.seq_len, len(rows), rows.tolist(), batch.labels.tolist(),
                s.dtype, str(target), seed, steps, dict(THRESHOLDS),
            )  # fmt: skip
        if log:
            log(f"gradient flow: {entry.label} on {len(rows)} texts, T={s.seq_len}")
        model = private_copy(entry.model, target, DTYPES[s.dtype])
        tokens = batch.tokens
        if tokens.is_floating_point():  # continuous inputs follow the model's dtype
            tokens = tokens.to(DTYPES[s.dtype])
        grads = step_gradients(model, tokens, batch.lengths, batch.labels)
        norms = {k: finite_list(v) for k, v in grads.norms().items()}
        scale = float(grads.x.abs().max())
        diff = None if grads.x_trace is None else float((grads.x - grads.x_trace).abs().max())
        grad_h = norms.get("h")
        rx = ratio(norms["x"], steps[0], steps[-1])
        rh = ratio(grad_h, steps[0], steps[-1]) if grad_h is not None else None
        no_states = entry.no_states
        result.models.append(
            ModelGradients(
                label=entry.label,
                kind=entry.kind,
                source=entry.source,
                grad_x=norms["x"],
                grad_h=grad_h,
                grad_c=norms.get("c"),
                x_at_steps=[norms["x"][t] for t in steps],
                h_at_steps=[grad_h[t] for t in steps] if grad_h is not None else None,
                ratio_x=rx,
                ratio_h=rh,
                reading_x=reading(rx),
                reading_h=reading(rh) if grad_h is not None else str(no_states),
                decades_x=decades_per_100_steps(norms["x"]),
                decades_h=decades_per_100_steps(grad_h) if grad_h is not None else None,
                trace_max_rel_diff=(
                    finite(diff / scale) if diff is not None and scale > 0 else None
                ),
            )
        )
    assert result is not None
    return result


def write_tensorboard(result: GradientFlowResult, log: Logger | None = None) -> list[Path]:
    """Each diagnosed run's curves into its tensorboard/ folder, where it has one; returns the
    folders written (none for fresh models, or without the tensorboard package)."""
    written = []
    for m in result.models:
        folder = Path(m.source) / TENSORBOARD
        if m.source == "fresh" or not folder.is_dir():
            continue
        if not tensorboard.available():
            if log:
                log(f"gradient flow: {folder} left as it is (no tensorboard package)")
            continue
        for key, values in (("x", m.grad_x), ("h", m.grad_h), ("c", m.grad_c)):
            if values is not None:
                tensorboard.write_series(
                    folder, f"gradient_flow/grad_{key}_T{result.seq_len}", values
                )
        written.append(folder)
    return written


def run(settings: Settings, inputs: Inputs) -> GradientFlowResult:
    result = gradient_flow(
        inputs.entries(), settings, seed=inputs.seed, device=inputs.target, log=inputs.log
    )
    write_tensorboard(result, inputs.log)
    return result


def check_texts(settings: Settings, inputs: Inputs) -> None:
    for entry in inputs.entries():
        data = entry.splits.split(settings.split)
        long_texts(data, settings.seq_len, 1, what=f"the {entry.dataset} {settings.split} split")


def estimate(settings: Settings, models: int) -> float:
    return models * settings.batch_size * settings.seq_len * 2.5e-4


DIAGNOSTIC = Diagnostic(
    name="gradient-flow",
    command=("diagnose", "gradient-flow"),
    help="||dL/dx_t|| and ||dL/dh_t|| at every time step",
    title="Gradient flow through time",
    how_to_read=(
        "How large the loss gradient is at each input time step: the signal a step gets "
        "from the loss at the end of the text.",
        "A curve that drops towards the early steps means those steps learn little "
        "(vanishing gradients); the log-scale view shows how many orders of magnitude are lost.",
    ),
    settings=Settings,
    quick=QUICK,
    result=GradientFlowResult,
    run=run,
    estimate=estimate,
    check=check_texts,
)
