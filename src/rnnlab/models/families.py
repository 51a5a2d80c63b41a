"""The model families: every ModelSpec kind -> the class that builds it.

A family is one module: its layer, padding rule, `trace` if it has per-step states, and its
`register_family` declaration (rnnlab.models.family). Importing this module registers the
families rnnlab ships; presets in rnnlab.models.registry name families with their settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# each module registers its family
from rnnlab.models import bow, hawk, mamba, minrnn, mlstm, transformer  # noqa: F401
from rnnlab.models.classifier import ModelSpec, TextClassifier
from rnnlab.models.family import FAMILIES, family
from rnnlab.plotting import PALETTE


def model_class(kind: str) -> type[TextClassifier]:
    """The class that builds models of this kind; an unknown kind lists the valid ones."""
    builder: type[TextClassifier] = family(kind).builder
    return builder


def colors(labels: Sequence[str], kinds: Sequence[str] | None = None) -> dict[str, str]:
    """One colour per label: its kind's colour (the family's) when the kinds are distinct,
    else the palette in order."""
    if kinds is not None and len(set(kinds)) == len(kinds):
        return {
            label: FAMILIES[kind].colour if kind in FAMILIES else PALETTE[i % len(PALETTE)]
            for i, (label, kind) in enumerate(zip(labels, kinds, strict=True))
        }
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def from_spec(spec: ModelSpec | dict[str, Any]) -> TextClassifier:
    """A fresh model of any family for a spec (or its to_dict()); weights via load_state_dict."""
    spec = spec if isinstance(spec, ModelSpec) else ModelSpec.from_dict(spec)
    return model_class(spec.kind)(spec)


def supports(spec: ModelSpec, **changes: Any) -> str | None:
    """None when the spec's family runs `changes` (e.g. sequence_mode="packed"), else why not."""
    family = model_class(spec.kind)
    for name, allowed in (
        ("sequence_mode", family.sequence_modes),
        ("impl", family.impls),
        ("pooling", family.poolings),
    ):
        value = changes.get(name, getattr(spec, name))
        if value not in allowed:
            return f"{name} {value} does not apply to {spec.kind} (it runs {' or '.join(allowed)})"
    return None
