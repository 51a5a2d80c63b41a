"""The serial bottleneck: time per batch vs sequence length.

A recurrent layer must finish step t before it starts step t+1, so its time grows linearly
with the sequence length whatever the hardware. For every model and mode we time one batch of
random token ids (every row full length T, so padding costs nothing and packing shows its own
overhead) for the forward pass (no grad) and for forward + backward, after warm-up calls,
several times, and keep the median; on CUDA every timed call is bracketed by
`torch.cuda.synchronize()`. A least-squares line time = intercept + slope * T (with R^2) per
model and mode summarises the growth.

Modes, what each family runs in them:
- `padded`: the model's own training path on the padded batch: the fused torch.nn layer (or
  rnnlab's CPU kernels) for rnn / lstm / gru, the log-space parallel scan for minGRU / minLSTM,
  one batched pass for the bag of n-grams and the Transformer;
- `packed`: the fused layer on a PackedSequence (rnn / lstm / gru only);
- `scratch`: one Python step per token: the hand-written cells (rnn / lstm / gru), the
  sequential mode of minGRU / minLSTM.
A mode a family does not run is left out with a "not applicable" line (`not_applicable`).

Flush: `on` times with subnormal floats flushed to zero on the CPU (rnnlab's default), `off`
without. Measuring both shows, on the machine that ran it, how much of the backward pass was
arithmetic on subnormals: gradients vanishing through many steps underflow below float32's
smallest normal number, and Intel cores compute on such numbers many times slower.

This is a measurement tool, not a test: numbers depend on the machine and its load.

The result (result.json's schema, table, figure) is `rnnlab.diagnostics.timing_result`'s.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnlab.config import check_positive
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.gradients import gradient_mode
from rnnlab.diagnostics.inputs import Inputs, Logger, parse_names
from rnnlab.diagnostics.result import NotApplicable
from rnnlab.diagnostics.timing_result import LinearFit, ModelTiming, ModeTiming, TimingResult
from rnnlab.errors import check
from rnnlab.formatting import finite
from rnnlab.models import create_model_from_config, from_spec, supports
from rnnlab.training.device import cpu_model, flush_denormal, synchronize

MODES: dict[str, dict[str, str]] = {
    "padded": {"impl": "torch", "sequence_mode": "padded"},
    "packed": {"impl": "torch", "sequence_mode": "packed"},
    "scratch": {"impl": "scratch", "sequence_mode": "padded"},
}
FLUSH = ("on", "off")


@dataclass(frozen=True)
class Settings:
    lengths: tuple[int, ...] = (100, 200, 400, 800)
    """Sequence lengths T to time."""
    modes: tuple[str, ...] = ("padded", "packed", "scratch")
    """padded (fused layer), packed (PackedSequence), scratch (hand-written cells)."""
    flush_denormal: tuple[str, ...] = ("on", "off")
    """Time with subnormal floats flushed to zero (on), without (off), or both (CPU only)."""
    batch_size: int = 64
    """Rows per batch."""
    repeats: int = 5
    """Timed calls per point (the median is kept)."""
    warmup: int = 1
    """Untimed calls first."""
    vocab_size: int = 20_000
    """Embedding rows of fresh models when no dataset is given."""

    def __post_init__(self) -> None:
        check_positive(self, "lengths", "batch_size", "repeats", "vocab_size")
        check(self.warmup >= 0, f"--warmup must not be negative (got {self.warmup})")
        object.__setattr__(self, "lengths", tuple(sorted(set(self.lengths))))
        for name, values, known in (
            ("--modes", self.modes, MODES),
            ("--flush-denormal", self.flush_denormal, FLUSH),
        ):
            unknown = [v for v in values if v not in known]
            check(
                bool(values) and not unknown,
                f"unknown {name} value(s) {', '.join(unknown) or '(none)'}; use {','.join(known)}",
            )


QUICK = Settings(lengths=(25, 50, 100, 200), modes=("padded", "packed"), batch_size=32, repeats=3)


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


def cpu_description() -> str:
    """`Intel(R) Xeon(R) Processor, AVX512` (model name and the ISA PyTorch dispatches to)."""
    return f"{cpu_model()}, {torch.backends.cpu.get_cpu_capability()}"


def model_variant(model: nn.Module, mode: str) -> nn.Module:
    """The same architecture (and weights) as `model`, run in `mode` (padded/packed/scratch)."""
    spec = dataclasses.replace(getattr(model, "spec"), **MODES[mode])  # noqa: B009
    twin = from_spec(spec)
    twin.load_state_dict(model.state_dict())
    return twin


def mode_applies(model: nn.Module, mode: str) -> str | None:
    """Why `model`'s family does not run in `mode` (None: it does)."""
    reason = supports(getattr(model, "spec"), **MODES[mode])  # noqa: B009
    return None if reason is None else f"{mode} mode: {reason}"


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
    spec = getattr(model, "spec")  # noqa: B009
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
    settings: Settings | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Logger | None = None,
    **changes: Any,
) -> TimingResult:
    """Time every (label, model, source) in every mode, flush setting and length."""
    s = dataclasses.replace(settings or Settings(), **changes)
    check(bool(models), "no models to time")
    target = torch.device(device) if isinstance(device, str) else device
    flushes = list(s.flush_denormal) if target.type == "cpu" else ["on"]  # a CPU register
    result = TimingResult(
        str(target), torch.get_num_threads(), s.batch_size, list(s.lengths), list(s.modes),
        s.warmup, s.repeats, seed, flush_denormal=flushes, cpu=cpu_description(),
    )  # fmt: skip
    skipped = []
    for label, model, source in models:
        spec = getattr(model, "spec")  # noqa: B009
        summary = {k: getattr(spec, k) for k in ("kind", "vocab_size", "embed_dim", "hidden_dim",
                                                 "num_layers", "bidirectional", "pooling")}  # fmt: skip
        entry = ModelTiming(label, spec.kind, source, summary)
        for mode in s.modes:
            reason = mode_applies(model, mode)
            if reason is not None:
                skipped.append(NotApplicable(label, spec.kind, reason))
                continue
            for flush in flushes:
                if log:
                    log(
                        f"timing: {label}, {mode}, flush {flush}, T={','.join(map(str, s.lengths))}"
                    )
                with flush_denormal(flush == "on"):
                    fwd, both = time_model(
                        model_variant(model, mode), lengths=s.lengths, batch_size=s.batch_size,
                        device=target, warmup=s.warmup, repeats=s.repeats, seed=seed,
                    )  # fmt: skip
                fwd_med = [statistics.median(r) for r in fwd]
                both_med = [statistics.median(r) for r in both]
                entry.modes.append(
                    ModeTiming(
                        mode, fwd_med, both_med, fwd, both, linear_fit(s.lengths, fwd_med),
                        linear_fit(s.lengths, both_med), flush,
                    )
                )  # fmt: skip
        result.models.append(entry)
    result.not_applicable = skipped
    return result


def run(settings: Settings, inputs: Inputs) -> TimingResult:
    """Trained runs, or fresh presets sized for the dataset when one is named, else for
    `vocab_size` and two classes (random token ids need no data)."""
    if inputs.runs or inputs.dataset_given:
        models = [(e.label, e.model, e.source) for e in inputs.entries()]
    else:
        models = []
        for name in parse_names(inputs.models):
            torch.manual_seed(inputs.seed)
            cfg = dataclasses.replace(inputs.config.model, name=name, kind=None, embeddings=None)
            model = create_model_from_config(cfg, vocab_size=settings.vocab_size, num_classes=2)
            models.append((name, model, "fresh"))
    return bench_timing(models, settings, seed=inputs.seed, device=inputs.target, log=inputs.log)


def estimate(settings: Settings, models: int) -> float:
    calls = (1 + settings.repeats) * len(settings.modes) * len(settings.flush_denormal)
    return models * sum(settings.lengths) * calls * settings.batch_size / 64 * 5e-4


DIAGNOSTIC = Diagnostic(
    name="timing",
    command=("bench", "timing"),
    help="forward and forward+backward time vs sequence length (serial bottleneck)",
    title="Serial bottleneck: time vs sequence length",
    how_to_read=(
        "Time for a forward and backward pass against the sequence length.",
        "A recurrent layer must finish step t before step t+1, so time grows linearly with "
        "length however many cores there are.",
        "padded is each model's own training path (for minGRU / minLSTM the parallel scan, for "
        "the bag of n-grams and the Transformer one batched pass); packed runs rnn / lstm / gru "
        "on a PackedSequence; scratch steps through the text one token at a time (the "
        "hand-written cells, minGRU / minLSTM's sequential mode).",
    ),
    settings=Settings,
    quick=QUICK,
    result=TimingResult,
    run=run,
    estimate=estimate,
)
