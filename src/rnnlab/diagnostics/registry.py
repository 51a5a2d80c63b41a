"""Every diagnostic, in the order the study runs them and the report shows them.

Adding a diagnostic: write its module (Settings, run, Result, DIAGNOSTIC) and add one line
here (or, from outside rnnlab, call `register(DIAGNOSTIC)` before the CLI parser is built); the
CLI verb, `diagnose all`, the study and the report section follow from the entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnlab.diagnostics import (
    attribution,
    embedding_grad,
    gradient_flow,
    hidden_size,
    hidden_states,
    memory_capacity,
    padding,
    parameters,
    seq_len,
    synthetic,
    timing,
)
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.result import NotApplicableResult, Result
from rnnlab.errors import RnnlabError
from rnnlab.io import read_json
from rnnlab.layout import RESULT

REGISTRY: list[Diagnostic] = [
    parameters.DIAGNOSTIC,
    gradient_flow.DIAGNOSTIC,
    embedding_grad.DIAGNOSTIC,
    hidden_states.DIAGNOSTIC,
    attribution.DIAGNOSTIC,
    seq_len.DIAGNOSTIC,
    hidden_size.DIAGNOSTIC,
    timing.DIAGNOSTIC,
    padding.DIAGNOSTIC,
    synthetic.DIAGNOSTIC,
    memory_capacity.DIAGNOSTIC,
]


def register(entry: Diagnostic) -> Diagnostic:
    """Add a diagnostic (last in the study and the report); a name or kind taken is refused."""
    taken = {n for d in REGISTRY for n in (d.name, d.kind, *d.legacy_kinds)}
    if entry.name in taken or entry.kind in taken:
        raise RnnlabError(f"diagnostic {entry.name!r} is registered twice")
    REGISTRY.append(entry)
    return entry


def names() -> list[str]:
    return [d.name for d in REGISTRY]


def get(name: str) -> Diagnostic:
    """The diagnostic called `name` (e.g. gradient-flow); an unknown name lists the valid ones."""
    for entry in REGISTRY:
        if name in (entry.name, entry.kind):
            return entry
    raise RnnlabError(f"unknown diagnostic {name!r}; choose one of {', '.join(names())}")


def for_kind(kind: str) -> Diagnostic | None:
    """The entry whose results have this kind (or had it in an earlier version)."""
    return next((d for d in REGISTRY if kind == d.kind or kind in d.legacy_kinds), None)


def for_data(raw: dict[str, Any]) -> Diagnostic | None:
    """The entry a result.json belongs to: by its kind, or, for a NotApplicableResult, by the
    diagnostic it names."""
    kind = raw.get("kind")
    if kind == NotApplicableResult.kind:
        name = raw.get("name")
        return next((d for d in REGISTRY if name in (d.name, d.kind)), None)
    return for_kind(kind) if isinstance(kind, str) else None


def result_class(raw: dict[str, Any]) -> type[Result] | None:
    """The Result class that reads this result.json (None: a kind this version does not know)."""
    if raw.get("kind") == NotApplicableResult.kind:
        return NotApplicableResult if for_data(raw) is not None else None
    entry = for_data(raw)
    return entry.result if entry is not None else None


def read_result(path: Path | str) -> Result:
    """Any registered diagnostic's result.json (or the folder holding it), as its result."""
    path = Path(path)
    file = path / RESULT if path.is_dir() else path
    if not file.is_file():
        raise RnnlabError(f"{file} does not exist; give a folder written by an rnnlab diagnostic")
    try:
        raw: Any = read_json(file)
    except (OSError, UnicodeDecodeError, ValueError):
        raise RnnlabError(f"{file} is not valid JSON; run the diagnostic again") from None
    kind = raw.get("kind") if isinstance(raw, dict) else None
    cls = result_class(raw) if isinstance(raw, dict) else None
    if cls is None:
        raise RnnlabError(
            f"{file} has unknown kind {kind!r}; known: {', '.join(d.kind for d in REGISTRY)}"
        )
    return cls.from_dict(raw, where=str(file))
