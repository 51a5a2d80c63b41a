"""The serial bottleneck: time per batch vs sequence length.

A recurrent layer must finish step t before it starts step t+1, so its time grows linearly
with the sequence length whatever the hardware. For every model and mode we time one batch of
random token ids (every row full length T, so padding costs nothing and packing shows its own
overhead) for the forward pass (no grad) and for forward + backward, after warm-up calls,
several times, and keep the median; on CUDA every timed call is bracketed by
`torch.cuda.synchronize()`. A least-squares line time = intercept + slope * T (with R^2) per
model and mode summarises the growth.

Modes: `padded` (fused torch.nn layer on the padded batch), `packed` (fused layer on a
PackedSequence), `scratch` (the hand-written cells, one Python step per token).

This is a measurement tool, not a test: numbers depend on the machine and its load.

result.json (`"kind": "timing"`):
  device, threads (CPU threads), batch_size, lengths, modes, warmup, repeats, seed,
  models: one object per model with label, kind, source, spec (hidden_dim, embed_dim, ...),
    modes: one object per mode with mode, forward, forward_backward (median seconds per batch,
      aligned with `lengths`), forward_runs, forward_backward_runs (every repeat, seconds),
      forward_fit, forward_backward_fit: {slope (seconds per step), intercept (seconds),
      r2 (null with fewer than 3 lengths or no spread)}.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnlab.diagnostics.common import Logger, Result, Table, finite, gradient_mode, synchronize
from rnnlab.errors import check

MODES: dict[str, dict[str, str]] = {
    "padded": {"impl": "torch", "sequence_mode": "padded"},
    "packed": {"impl": "torch", "sequence_mode": "packed"},
    "scratch": {"impl": "scratch", "sequence_mode": "padded"},
}


@dataclass
class LinearFit:
    slope: float | None
    """Seconds per time step."""
    intercept: float | None
    r2: float | None


def linear_fit(x: Sequence[float], y: Sequence[float]) -> LinearFit:
    """Least-squares y = intercept + slope * x; R^2 needs at least 3 points and some spread."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(xs) < 2 or np.ptp(xs) == 0:
        return LinearFit(None, None, None)
    slope, intercept = np.polyfit(xs, ys, 1)
    r2 = None
    total = float(((ys - ys.mean()) ** 2).sum())
    if len(xs) >= 3 and total > 0:
        r2 = 1.0 - float(((ys - (intercept + slope * xs)) ** 2).sum()) / total
    return LinearFit(finite(slope), finite(intercept), finite(r2))


def time_call(
    fn: Callable[[], Any], device: torch.device, *, warmup: int, repeats: int
) -> list[float]:
    """Seconds of each of `repeats` calls of fn, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


@dataclass
class ModeTiming:
    mode: str
    forward: list[float]
    forward_backward: list[float]
    forward_runs: list[list[float]]
    forward_backward_runs: list[list[float]]
    forward_fit: LinearFit
    forward_backward_fit: LinearFit


@dataclass
class ModelTiming:
    label: str
    kind: str
    source: str
    spec: dict[str, Any]
    modes: list[ModeTiming] = field(default_factory=list)


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

    def tables(self) -> list[Table]:
        rows = []
        for m in self.models:
            for t in m.modes:
                rows.append(
                    [m.label, t.mode, *(f"{1e3 * v:.1f}" for v in t.forward_backward),
                     _ms(t.forward_fit.slope), _ms(t.forward_backward_fit.slope),
                     _r2(t.forward_backward_fit.r2)]
                )  # fmt: skip
        columns = [
            "model", "mode", *(f"T={n} ms" for n in self.lengths),
            "fwd ms/step", "fwd+bwd ms/step", "R^2",
        ]  # fmt: skip
        title = (
            f"forward+backward time per batch of {self.batch_size} on {self.device} "
            f"(median of {self.repeats})"
        )
        notes = [
            "ms/step: slope of a least-squares line of time against T; R^2 of the fwd+bwd line"
        ]
        return [Table(title, columns, rows, notes)]

    def figures(self, folder: Path) -> list[Path]:
        from rnnlab.diagnostics import plots

        return plots.plot_timing(self, folder)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{1e3 * seconds:.3f}"


def _r2(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def model_variant(model: nn.Module, mode: str) -> nn.Module:
    """The same architecture (and weights) as `model`, run in `mode` (padded/packed/scratch)."""
    from rnnlab.models import RecurrentClassifier

    spec = dataclasses.replace(_spec(model), **MODES[mode])
    twin = RecurrentClassifier.from_spec(spec)
    twin.load_state_dict(model.state_dict())
    return twin


def time_model(
    model: nn.Module,
    *,
    lengths: Sequence[int],
    batch_size: int,
    device: torch.device,
    warmup: int,
    repeats: int,
    seed: int = 0,
) -> tuple[list[list[float]], list[list[float]]]:
    """Forward and forward+backward seconds (every repeat) per length, random token batches."""
    model = model.to(device)
    spec = _spec(model)
    gen = torch.Generator().manual_seed(seed)
    forward, both = [], []
    with gradient_mode(model):
        for length in lengths:
            if spec.input_dim is None:
                tokens = torch.randint(1, spec.vocab_size, (batch_size, length), generator=gen)
            else:
                tokens = torch.randn(batch_size, length, spec.input_dim, generator=gen)
            tokens = tokens.to(device)  # (B, T) or (B, T, F)
            lengths_t = torch.full((batch_size,), length, dtype=torch.int64)
            labels = torch.zeros(batch_size, dtype=torch.int64, device=device)
            if spec.task == "regression":
                labels = labels.float()

            args = (model, tokens, lengths_t, labels)
            forward.append(
                time_call(partial(_forward, *args), device, warmup=warmup, repeats=repeats)
            )
            both.append(time_call(partial(_both, *args), device, warmup=warmup, repeats=repeats))
    return forward, both


def _forward(
    model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, _: torch.Tensor
) -> None:
    with torch.no_grad():
        model(tokens, lengths)


def _both(
    model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor
) -> None:
    model.loss(model(tokens, lengths), labels).backward()  # type: ignore[operator]
    model.zero_grad(set_to_none=True)


def bench_timing(
    models: Sequence[tuple[str, nn.Module, str]],
    *,
    lengths: Sequence[int] = (100, 200, 400, 800),
    modes: Sequence[str] = ("padded", "packed", "scratch"),
    batch_size: int = 64,
    warmup: int = 1,
    repeats: int = 5,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Logger | None = None,
) -> TimingResult:
    """Time every (label, model, source) in every mode at every length."""
    from rnnlab.diagnostics.common import resolve_device

    lengths = sorted(set(int(n) for n in lengths))
    check(bool(lengths) and lengths[0] > 0, f"lengths must be positive (got {lengths})")
    check(batch_size > 0, f"batch_size must be positive (got {batch_size})")
    check(repeats > 0, f"repeats must be positive (got {repeats})")
    check(warmup >= 0, f"warmup must not be negative (got {warmup})")
    unknown = [m for m in modes if m not in MODES]
    check(not unknown, f"unknown mode(s) {unknown}; use {', '.join(MODES)}")
    check(bool(models), "no models to time")
    target = resolve_device(device) if isinstance(device, str) else device
    result = TimingResult(
        str(target), torch.get_num_threads(), batch_size, lengths, list(modes), warmup, repeats,
        seed,
    )  # fmt: skip
    for label, model, source in models:
        spec = _spec(model)
        entry = ModelTiming(label, spec.kind, source, _spec_summary(spec))
        for mode in modes:
            if log:
                log(f"timing: {label}, {mode}, T={','.join(map(str, lengths))}")
            fwd, both = time_model(
                model_variant(model, mode), lengths=lengths, batch_size=batch_size,
                device=target, warmup=warmup, repeats=repeats, seed=seed,
            )  # fmt: skip
            fwd_med = [statistics.median(r) for r in fwd]
            both_med = [statistics.median(r) for r in both]
            entry.modes.append(
                ModeTiming(
                    mode, fwd_med, both_med, fwd, both,
                    linear_fit(lengths, fwd_med), linear_fit(lengths, both_med),
                )
            )  # fmt: skip
        result.models.append(entry)
    return result


def _spec(model: nn.Module) -> Any:
    """The model's ModelSpec (typed loosely: nn.Module attributes read as Tensor | Module)."""
    return getattr(model, "spec")  # noqa: B009


def _spec_summary(spec: Any) -> dict[str, Any]:
    keys = (
        "kind",
        "vocab_size",
        "embed_dim",
        "hidden_dim",
        "num_layers",
        "bidirectional",
        "pooling",
    )
    return {k: getattr(spec, k) for k in keys}
