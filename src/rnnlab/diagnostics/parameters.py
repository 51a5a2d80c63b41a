"""Parameter counts per model (rnnlab.models.count_parameters), saved for the report.

result.json (`"kind": "parameters"`):
  models: one object per model with label, kind, source, spec (the ModelSpec as a dict) and
    counts: {embedding, recurrent, head, total, trainable}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.inputs import Inputs, ModelEntry
from rnnlab.diagnostics.result import FigureSpec, Result
from rnnlab.formatting import count, factor
from rnnlab.models import count_parameters
from rnnlab.plotting import new_figure
from rnnlab.tables import Table

PARTS = ("embedding", "recurrent", "head", "total")


@dataclass(frozen=True)
class Settings:
    """Nothing to set: every model's parameters are counted."""


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
        rows = [[m.label, m.kind, *(count(m.counts.get(p, 0)) for p in PARTS)] for m in self.models]
        return [
            Table(
                "Parameters per model", ["model", "cell", *PARTS], rows,
                numeric=[False, False, True, True, True, True],
                row_ids=[f"paramcount-{m.label}" for m in self.models],
            )
        ]  # fmt: skip

    def figures(self) -> list[FigureSpec]:
        recurrent = {m.kind: m.counts.get("recurrent") for m in self.models}
        base = recurrent.get("rnn")
        caption = []
        ratios = [
            f"{k.upper()} {factor(v / base)}"
            for k, v in recurrent.items()
            if k != "rnn" and v and base
        ]
        if ratios and base:
            caption.append(
                f"Recurrent weights relative to the vanilla RNN ({count(base)}): "
                + ", ".join(ratios) + "; bars are stacked embedding, recurrent and head parameters."
            )  # fmt: skip
        return [
            FigureSpec(
                "parameters.png", "Parameters per model: embedding, recurrent, head", caption,
                self._draw,
            )
        ]  # fmt: skip

    def _draw(self) -> Any:
        fig, axes = new_figure(1, 1, "parameters per model")
        ax = axes[0][0]
        labels = [m.label for m in self.models]
        bottom = [0.0] * len(labels)
        for part, color in (
            ("embedding", "0.7"),
            ("recurrent", "tab:blue"),
            ("head", "tab:orange"),
        ):
            values = [float(m.counts.get(part, 0)) for m in self.models]
            ax.bar(labels, values, bottom=bottom, color=color, label=part)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_ylabel("parameters")
        ax.legend(fontsize=8)
        return fig


def parameter_counts(entries: Sequence[ModelEntry]) -> ParametersResult:
    return ParametersResult(
        [
            ModelParameters(
                e.label, e.kind, e.source, getattr(e.model, "spec").to_dict(),  # noqa: B009
                {k: int(v) for k, v in count_parameters(e.model).items()},
            )
            for e in entries
        ]
    )  # fmt: skip


def run(settings: Settings, inputs: Inputs) -> ParametersResult:
    return parameter_counts(inputs.entries())


DIAGNOSTIC = Diagnostic(
    name="parameters",
    command=("diagnose", "parameters"),
    help="parameters per model: embedding, recurrent, head",
    title="The models",
    how_to_read=(),
    settings=Settings,
    quick=Settings(),
    result=ParametersResult,
    run=run,
    estimate=lambda settings, models: 1.0,
    section="models",
)
