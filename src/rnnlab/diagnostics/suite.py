"""Running registered diagnostics: one at a time (`run_one`), or all of them into one folder
(`run_all`, the `diagnose all` command and the study's diagnostic steps).

```
OUT/
  <name>/      result.json + PNG figures, one folder per diagnostic (gradient-flow/, seq-len/, ...)
  result.json  (kind "diagnose_all"), written last
```
Every sub-folder is complete or absent; the top-level result.json is written last.

result.json (`"kind": "diagnose_all"`):
  dataset, models (labels), source ("fresh" or "runs"), seed, device, settings (name ->
  the Settings used, as a dict), estimated_seconds, skipped (names left out), seconds (total
  wall time), parts: one object per diagnostic with name (sub-folder), kind, seconds.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.inputs import Inputs
from rnnlab.diagnostics.registry import REGISTRY, names
from rnnlab.diagnostics.result import NotApplicable, NotApplicableResult, Result
from rnnlab.errors import RnnlabError
from rnnlab.tables import Table
from rnnlab.training.device import flush_denormal, flush_wanted, num_threads

DATA_SECONDS = 10.0
"""Loading the data and the models, before the first diagnostic."""


def presets(*, quick: bool) -> dict[str, Any]:
    """name -> Settings: every diagnostic's quick preset, or its full one (the defaults)."""
    return {d.name: d.quick if quick else d.settings() for d in REGISTRY}


def check_skip(skip: Sequence[str]) -> list[str]:
    unknown = [p for p in skip if p not in names()]
    if unknown:
        raise RnnlabError(
            f"unknown part(s) {', '.join(unknown)} in --skip; parts: {', '.join(names())}"
        )
    return list(skip)


def estimate_seconds(settings: Mapping[str, Any], models: int, skip: Sequence[str] = ()) -> float:
    """Expected wall time on 2 idle CPU cores (each entry's measured rates), data included."""
    total = DATA_SECONDS
    for entry in REGISTRY:
        if entry.name not in skip and entry.estimate is not None:
            total += entry.estimate(settings[entry.name], models)
    return total


def describe_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(seconds, 1):.0f} seconds on 2 idle CPU cores"
    return f"about {seconds / 60:.0f} minutes on 2 idle CPU cores (more when other jobs share them)"


def run_one(entry: Diagnostic, settings: Any, inputs: Inputs) -> Result:
    """One diagnostic with the run's CPU threads, subnormals flushed as the config says.

    Models the entry does not apply to (`entry.applies`) are left out with one line each in the
    result (`Result.not_applicable`); when it applies to none, a NotApplicableResult says so.
    """
    skipped: list[NotApplicable] = []
    if entry.applies is not None and entry.reads == "models":
        kept = []
        for model in inputs.entries():
            reason = entry.applies(model)
            if reason is None:
                kept.append(model)
            else:
                skipped.append(NotApplicable(model.label, model.kind, reason))
        if not kept:
            return NotApplicableResult(entry.name, skipped)
        inputs = inputs.only(kept)
    with (
        num_threads(inputs.threads),
        flush_denormal(flush_wanted(inputs.config.train.flush_denormal)),
    ):
        result = entry.run(settings, inputs)
    if skipped:
        result.not_applicable = [*result.not_applicable, *skipped]
    return result


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
    settings: dict[str, dict[str, Any]]
    estimated_seconds: float
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    parts: list[PartInfo] = field(default_factory=list)

    def tables(self) -> list[Table]:
        rows = [[p.name, p.kind, f"{p.seconds:.0f}"] for p in self.parts]
        rows.append(["total", "", f"{self.seconds:.0f}"])
        return [Table(f"diagnose all on {self.dataset}", ["part", "kind", "seconds"], rows)]


def run_all(
    inputs: Inputs,
    out: Path,
    *,
    settings: Mapping[str, Any] | None = None,
    skip: Sequence[str] = (),
    on_part: Callable[[str, Result], None] | None = None,
) -> AllResult:
    """Every registered diagnostic not in `skip` into `out/<name>/`, then out/result.json.

    `settings` maps names to Settings (missing ones: the quick preset). Every entry's checks
    run before the first diagnostic starts, so nothing fails half-way for a missing text.
    """
    skip = check_skip(skip)
    chosen = {**presets(quick=True), **(settings or {})}
    entries = [e for e in REGISTRY if e.name not in skip]
    models = inputs.entries() if any(e.reads == "models" for e in entries) else []
    for entry in entries:
        if entry.check is not None:
            entry.check(chosen[entry.name], inputs)
    result = AllResult(
        dataset=models[0].dataset if models else inputs.config.data.dataset,
        models=[e.label for e in models],
        source=inputs.source,
        seed=inputs.seed,
        device=str(inputs.target),
        settings={e.name: dataclasses.asdict(chosen[e.name]) for e in entries},
        estimated_seconds=estimate_seconds(chosen, len(models), skip),
        skipped=list(skip),
    )
    start = time.perf_counter()
    for entry in entries:
        part_start = time.perf_counter()
        inputs.say(f"== {entry.name}")
        part = run_one(entry, chosen[entry.name], inputs)
        part.save(out / entry.name)
        result.parts.append(PartInfo(entry.name, part.kind, time.perf_counter() - part_start))
        if on_part:
            on_part(entry.name, part)
    result.seconds = time.perf_counter() - start
    result.save(out)
    return result
