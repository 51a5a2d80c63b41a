"""The model families: every ModelSpec kind -> the class that builds it.

A family is one module (its layer, padding rule, `trace` if it has per-step states) and one line
here; presets in rnnlab.models.registry name families with their settings.
"""

from __future__ import annotations

from typing import Any

from rnnlab.errors import check
from rnnlab.models.bow import BagOfNgrams
from rnnlab.models.classifier import MODEL_KINDS, ModelSpec, RecurrentClassifier, TextClassifier
from rnnlab.models.minrnn import MinRecurrentClassifier
from rnnlab.models.transformer import TransformerClassifier

FAMILIES: dict[str, type[TextClassifier]] = {
    "rnn": RecurrentClassifier,
    "lstm": RecurrentClassifier,
    "gru": RecurrentClassifier,
    "bow": BagOfNgrams,
    "mingru": MinRecurrentClassifier,
    "minlstm": MinRecurrentClassifier,
    "transformer": TransformerClassifier,
}
assert tuple(FAMILIES) == MODEL_KINDS, "every ModelSpec kind needs its family here"


def model_class(kind: str) -> type[TextClassifier]:
    """The class that builds models of this kind; an unknown kind lists the valid ones."""
    check(kind in FAMILIES, f"kind must be one of {', '.join(FAMILIES)}, not {kind!r}")
    return FAMILIES[kind]


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
