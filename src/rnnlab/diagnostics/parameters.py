"""Parameter counts per model (rnnlab.models.count_parameters), saved for the report.

result.json (`"kind": "parameters"`):
  models: one object per model with label, kind, source, spec (the ModelSpec as a dict) and
    counts: {embedding, recurrent, head, total, trainable}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.diagnostics.common import ModelEntry, Result, Table

PARTS = ("embedding", "recurrent", "head", "total")


@dataclass
class ModelParameters:
    label: str
    kind: str
    source: str
    spec: dict[str, Any]
    counts: dict[str, int]


@dataclass
class ParametersResult(Result):
    kind = "parameters"

    models: list[ModelParameters] = field(default_factory=list)

    def tables(self) -> list[Table]:
        rows = [[m.label, *(f"{m.counts.get(p, 0):,}" for p in PARTS)] for m in self.models]
        return [Table("parameters per model", ["model", *PARTS], rows)]

    def figures(self, folder: Path) -> list[Path]:
        from rnnlab.diagnostics import plots

        return plots.plot_parameters(self, folder)


def parameter_counts(entries: Sequence[ModelEntry]) -> ParametersResult:
    from rnnlab.models import count_parameters

    return ParametersResult(
        [
            ModelParameters(
                e.label,
                e.kind,
                e.source,
                getattr(e.model, "spec").to_dict(),  # noqa: B009
                {k: int(v) for k, v in count_parameters(e.model).items()},  # type: ignore[arg-type]
            )
            for e in entries
        ]
    )
