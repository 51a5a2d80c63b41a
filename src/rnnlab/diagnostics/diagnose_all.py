"""`rnnlab diagnose all`: every diagnostic with modest defaults, one sub-folder each.

```
OUT/
  gradient-flow/   result.json (gradient_flow)  gradient_flow_linear.png gradient_flow_log.png
  embedding-grad/  result.json (embedding_grad) embedding_grad.png
  hidden-states/   result.json (hidden_states)  hidden_norms.png [cell_norms.png]
  seq-len/         result.json (length_sweep)   accuracy_vs_length.png
  hidden-size/     result.json (capacity)       accuracy_vs_hidden.png accuracy_by_length.png
  timing/          result.json (timing)         timing.png
  padding/         result.json (padding)        padding.png
  parameters/      result.json (parameters)     parameters.png
  result.json      (diagnose_all), written last
```

The sweeps train small models (`AllSettings.sweep_limit` examples, `sweep_epochs` epochs) so
the whole run fits in about 15 minutes on 2 CPU cores; run `rnnlab sweep ...` for the full
studies. Every sub-folder is complete or absent; the top-level result.json is written last.

result.json (`"kind": "diagnose_all"`):
  dataset, models (labels), source ("fresh" or "runs"), seed, device, settings (AllSettings),
  estimated_seconds, skipped (parts left out with --skip), seconds (total wall time),
  parts: one object per diagnostic with name (sub-folder), kind, seconds.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rnnlab.config import RunConfig
from rnnlab.diagnostics.capacity import hidden_sweep
from rnnlab.diagnostics.common import (
    Logger,
    ModelEntry,
    Result,
    Table,
    count_long,
    dataset_name,
    resolve_device,
)
from rnnlab.diagnostics.embedding_grad import embedding_grad
from rnnlab.diagnostics.gradient_flow import gradient_flow
from rnnlab.diagnostics.hidden_states import hidden_states, pick_per_class
from rnnlab.diagnostics.length_sweep import length_sweep
from rnnlab.diagnostics.padding import padding_waste
from rnnlab.diagnostics.parameters import parameter_counts
from rnnlab.diagnostics.timing import bench_timing
from rnnlab.errors import RnnlabError


@dataclass
class AllSettings:
    """Defaults of `diagnose all`: 2 to 5 minutes on 2 idle CPU cores (measured), which leaves
    room to stay within 15 minutes when other jobs share the cores."""

    split: str = "test"
    seq_len: int = 200
    grad_batch: int = 32
    grad_dtype: str = "float64"
    embed_lengths: list[int] = field(default_factory=lambda: [50, 100, 200, 400])
    per_class: int = 5
    min_len: int = 150
    max_steps: int = 400
    sweep_models: list[str] = field(default_factory=lambda: ["rnn", "lstm"])
    sweep_lengths: list[int] = field(default_factory=lambda: [50, 100, 200, 400])
    sweep_limit: int = 2000
    sweep_epochs: int = 2
    hidden_models: list[str] = field(default_factory=lambda: ["lstm"])
    hidden_sizes: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256])
    hidden_max_len: int = 200
    timing_lengths: list[int] = field(default_factory=lambda: [25, 50, 100, 200])
    timing_batch: int = 16
    timing_repeats: int = 3
    padding_batch: int = 64
    padding_max_len: int = 400


DATA_SECONDS = 10.0
MEAN_TOKENS = 230
"""Mean tokens per IMDB review; texts shorter than a length cap cost their own length."""
# Seconds per unit of work on 2 idle CPU cores, measured with the default presets. Units:
# token x model (gradients, states), time step x call x model (timing: all three modes, forward
# and forward+backward), training token (sweeps, validation and test included). While other
# jobs kept both cores busy the same work took 5 to 20 times longer.
GRAD_SECONDS_PER_TOKEN = 2.5e-4
EMBED_SECONDS_PER_TOKEN = 2e-5
STATE_SECONDS_PER_TOKEN = 1e-4
TIMING_SECONDS_PER_STEP = 2e-3
TRAIN_SECONDS_PER_TOKEN = 1e-5
CAPACITY_SECONDS_PER_TOKEN = 2e-5

PARTS = (
    "parameters",
    "padding",
    "gradient-flow",
    "embedding-grad",
    "hidden-states",
    "timing",
    "seq-len",
    "hidden-size",
)


def check_skip(skip: Sequence[str]) -> list[str]:
    unknown = [p for p in skip if p not in PARTS]
    if unknown:
        raise RnnlabError(
            f"unknown part(s) {', '.join(unknown)} in --skip; parts: {', '.join(PARTS)}"
        )
    return list(skip)


def part_estimates(settings: AllSettings, num_models: int) -> dict[str, float]:
    """Rough seconds per part on 2 idle CPU cores (rates measured for the default presets)."""
    s = settings
    train_texts = 0.8 * s.sweep_limit * s.sweep_epochs
    return {
        "parameters": 1.0,
        "padding": 5.0,
        "gradient-flow": num_models * s.grad_batch * s.seq_len * GRAD_SECONDS_PER_TOKEN,
        "embedding-grad": num_models * s.grad_batch * sum(s.embed_lengths) * EMBED_SECONDS_PER_TOKEN,
        "hidden-states": num_models * 2 * s.per_class * s.max_steps * STATE_SECONDS_PER_TOKEN,
        "timing": num_models * sum(s.timing_lengths) * (1 + s.timing_repeats)
        * TIMING_SECONDS_PER_STEP,
        "seq-len": len(s.sweep_models) * train_texts
        * sum(min(n, MEAN_TOKENS) for n in s.sweep_lengths) * TRAIN_SECONDS_PER_TOKEN,
        "hidden-size": len(s.hidden_models) * len(s.hidden_sizes) * train_texts
        * min(s.hidden_max_len, MEAN_TOKENS) * CAPACITY_SECONDS_PER_TOKEN,
    }  # fmt: skip


def estimate_seconds(settings: AllSettings, num_models: int, skip: Sequence[str] = ()) -> float:
    """Expected wall time of `run_all` without the parts in `skip`, plus data loading."""
    estimates = part_estimates(settings, num_models)
    return DATA_SECONDS + sum(v for k, v in estimates.items() if k not in skip)


@dataclass
class PartInfo:
    name: str
    kind: str
    seconds: float


@dataclass
class AllResult(Result):
    kind = "diagnose_all"

    dataset: str
    models: list[str]
    source: str
    seed: int
    device: str
    settings: AllSettings
    estimated_seconds: float
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    parts: list[PartInfo] = field(default_factory=list)

    def tables(self) -> list[Table]:
        rows = [[p.name, p.kind, f"{p.seconds:.0f}"] for p in self.parts]
        rows.append(["total", "", f"{self.seconds:.0f}"])
        return [Table(f"diagnose all on {self.dataset}", ["part", "kind", "seconds"], rows)]


def preflight(entries: Sequence[ModelEntry], settings: AllSettings) -> None:
    """Check up front that every part will find its texts, so nothing fails half-way."""
    s = settings
    for entry in entries:
        data = entry.splits.split(s.split)
        dataset = dataset_name([entry])
        for need, option in ((s.seq_len, "--seq-len"), (max(s.embed_lengths), "--embed-lengths")):
            if count_long(data, need) == 0:
                raise RnnlabError(
                    f"the {dataset} {s.split} split has no text with at least {need} tokens "
                    f"(longest: {int(data.lengths.max()) if len(data) else 0}); use a smaller {option}"
                )
        if count_long(data, s.min_len) == 0:
            raise RnnlabError(
                f"the {dataset} {s.split} split has no text with at least {s.min_len} tokens; "
                "use a smaller --min-len"
            )
        if entry.splits.task == "classification":
            pick_per_class(
                data.labels, data.lengths, entry.splits.label_names, per_class=s.per_class,
                min_len=s.min_len, seed=0, what=f"the {dataset} {s.split} split",
            )  # fmt: skip


def run_all(
    entries: Sequence[ModelEntry],
    config: RunConfig,
    out: Path,
    *,
    settings: AllSettings | None = None,
    seed: int = 0,
    device: str = "auto",
    source: str = "fresh",
    skip: Sequence[str] = (),
    threads: int | None = None,
    log: Logger | None = None,
    on_part: Callable[[str, Result], None] | None = None,
) -> AllResult:
    """Run every diagnostic into `out/<part>/`; `config` gives the data and the sweeps' base
    settings (its train section is shrunk to settings.sweep_epochs / sweep_limit). `threads`
    sets torch's CPU threads for the whole run (restored afterwards)."""
    s = settings or AllSettings()
    skip = check_skip(skip)
    preflight(entries, s)
    target = resolve_device(device)
    result = AllResult(
        dataset_name(entries), [e.label for e in entries], source, seed, str(target), s,
        estimate_seconds(s, len(entries), skip), skipped=list(skip),
    )  # fmt: skip
    sweep_cfg = RunConfig(
        dataclasses.replace(config.data, limit=min(s.sweep_limit, config.data.limit or s.sweep_limit)),
        config.model,
        dataclasses.replace(
            config.train, epochs=s.sweep_epochs, seed=seed, device=device, progress=False,
            threads=threads if threads is not None else config.train.threads,
        ),
    )  # fmt: skip
    common: dict[str, Any] = {"seed": seed, "device": target, "log": log}
    parts: list[tuple[str, Callable[[], Result]]] = [
        ("parameters", lambda: parameter_counts(entries)),
        ("padding", lambda: _padding(config, s, seed)),
        ("gradient-flow", lambda: gradient_flow(
            entries, seq_len=s.seq_len, batch_size=s.grad_batch, split=s.split,
            dtype=s.grad_dtype, **common)),
        ("embedding-grad", lambda: embedding_grad(
            entries, lengths=s.embed_lengths, batch_size=s.grad_batch, split=s.split, **common)),
        ("hidden-states", lambda: hidden_states(
            entries, per_class=s.per_class, min_len=s.min_len, max_steps=s.max_steps,
            split=s.split, **common)),
        ("timing", lambda: bench_timing(
            [(e.label, e.model, e.source) for e in entries], lengths=s.timing_lengths,
            batch_size=s.timing_batch, repeats=s.timing_repeats, seed=seed, device=target,
            log=log)),
        ("seq-len", lambda: length_sweep(
            sweep_cfg, models=s.sweep_models, lengths=s.sweep_lengths, seeds=[seed], log=log)),
        ("hidden-size", lambda: hidden_sweep(
            dataclasses.replace(sweep_cfg, data=dataclasses.replace(
                sweep_cfg.data, max_len=s.hidden_max_len)),
            models=s.hidden_models, sizes=s.hidden_sizes, seeds=[seed], log=log)),
    ]  # fmt: skip
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        _run_parts(parts, out, result, skip, log, on_part)
    finally:
        torch.set_num_threads(before)
    result.save(out)
    return result


def _run_parts(
    parts: Sequence[tuple[str, Callable[[], Result]]],
    out: Path,
    result: AllResult,
    skip: Sequence[str],
    log: Logger | None,
    on_part: Callable[[str, Result], None] | None,
) -> None:
    start = time.perf_counter()
    for name, compute in parts:
        if name in skip:
            continue
        part_start = time.perf_counter()
        if log:
            log(f"== {name}")
        part = compute()
        part.save(out / name)
        seconds = time.perf_counter() - part_start
        result.parts.append(PartInfo(name, part.kind, seconds))
        if on_part:
            on_part(name, part)
    result.seconds = time.perf_counter() - start


def _padding(config: RunConfig, s: AllSettings, seed: int) -> Result:
    from rnnlab.data import load_splits

    data = dataclasses.replace(config.data, max_len=s.padding_max_len)
    splits = load_splits(data)
    return padding_waste(
        splits.train, batch_size=s.padding_batch, max_len=s.padding_max_len, seed=seed,
        dataset=str(splits.info.get("dataset", data.dataset)), split_name="train",
    )  # fmt: skip
