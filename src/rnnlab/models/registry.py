"""Named model presets and create_model(name, **overrides)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rnnlab.config import ModelConfig
from rnnlab.data.encoded import EncodedSplits
from rnnlab.errors import RnnlabError
from rnnlab.models.classifier import ModelSpec, TextClassifier
from rnnlab.models.embeddings import load_pretrained
from rnnlab.models.families import from_spec, model_class

OVERRIDES = (
    "kind",
    "embed_dim",
    "hidden_dim",
    "num_layers",
    "bidirectional",
    "dropout",
    "pooling",
    "sequence_mode",
    "impl",
    "binary_single_logit",
    "embeddings",
    "freeze_embeddings",
    "gate_bias",
    "hash_buckets",
    "num_heads",
    "ff_dim",
    "positions",
    "max_positions",
    "state_dim",
    "expand",
    "transition",
    "scan",
)
"""Keys create_model accepts on top of a preset (plus `itos`, the vocabulary words)."""


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)


_NOTEBOOK = {
    "embed_dim": 100,
    "hidden_dim": 128,
    "num_layers": 1,
    "bidirectional": False,
    "pooling": "last",
    "dropout": 0.0,
}

_PRESETS = {
    p.name: p
    for p in (
        Preset(
            "rnn",
            "Vanilla tanh RNN, last real step (the reference notebooks' setup)",
            {"kind": "rnn", **_NOTEBOOK},
        ),
        Preset(
            "lstm",
            "LSTM, last real step (the reference notebooks' setup)",
            {"kind": "lstm", **_NOTEBOOK},
        ),
        Preset(
            "gru",
            "GRU, last real step (the reference notebooks' setup)",
            {"kind": "gru", **_NOTEBOOK},
        ),
        Preset(
            "bigru-max",
            "Bidirectional GRU, max-pooled over time, dropout 0.3",
            {**_NOTEBOOK, "kind": "gru", "bidirectional": True, "pooling": "max", "dropout": 0.3},
        ),
        Preset(
            "bilstm-max",
            "Bidirectional LSTM, max-pooled over time, dropout 0.3",
            {**_NOTEBOOK, "kind": "lstm", "bidirectional": True, "pooling": "max", "dropout": 0.3},
        ),
        Preset(
            "bow",
            "fastText-style bag of words + 65,536 hashed bigrams, 10-d, mean, linear head (no "
            "word order beyond pairs)",
            {
                **_NOTEBOOK,
                "kind": "bow",
                "embed_dim": 10,
                "pooling": "mean",
                "hash_buckets": 65_536,
            },
        ),
        Preset(
            "mingru",
            "minGRU (gates read only the input; trains as a parallel scan), last real step",
            {"kind": "mingru", **_NOTEBOOK},
        ),
        Preset(
            "mingru-signed",
            "minGRU with transitions in [-1, 1] (Grazzi et al. 2025: can learn parity)",
            {"kind": "mingru", **_NOTEBOOK, "transition": "signed"},
        ),
        Preset(
            "minlstm",
            "minLSTM (normalised forget/input gates; parallel scan), last real step",
            {"kind": "minlstm", **_NOTEBOOK},
        ),
        Preset(
            "bimingru-max",
            "Bidirectional 2-layer minGRU, max-pooled over time, dropout 0.3",
            {
                **_NOTEBOOK,
                "kind": "mingru",
                "bidirectional": True,
                "pooling": "max",
                "dropout": 0.3,
                "num_layers": 2,
            },
        ),
        Preset(
            "mamba",
            "Mamba (selective state space, d_state 16, expand 2; parallel scan), last real step",
            {"kind": "mamba", **_NOTEBOOK},
        ),
        Preset(
            "mamba-signed",
            "Mamba with transitions in [-1, 1] (Grazzi et al. 2025: can learn parity)",
            {"kind": "mamba", **_NOTEBOOK, "transition": "signed"},
        ),
        Preset(
            "hawk",
            "Hawk (Griffin's RG-LRU recurrent block; parallel scan), last real step",
            {"kind": "hawk", **_NOTEBOOK},
        ),
        Preset(
            "mlstm",
            "mLSTM (xLSTM's matrix memory, 4 heads; quadratic parallel form), last real step",
            {"kind": "mlstm", **_NOTEBOOK, "num_heads": 4},
        ),
        Preset(
            "transformer",
            "Transformer encoder, 2 layers, d_model 128, 4 heads, sinusoidal positions, mean "
            "pooling, dropout 0.1",
            {
                "kind": "transformer",
                "embed_dim": 128,
                "hidden_dim": 128,
                "num_layers": 2,
                "num_heads": 4,
                "positions": "sinusoidal",
                "pooling": "mean",
                "dropout": 0.1,
                "bidirectional": False,
            },
        ),
    )
}


def register_preset(preset: Preset) -> Preset:
    """Add a preset (an extension's model, e.g. one of its own registered family); a name that
    is taken is an error, so an extension cannot silently replace a preset."""
    if preset.name in _PRESETS:
        raise RnnlabError(f"model preset {preset.name!r} already exists; pick another name")
    model_class(preset.settings.get("kind", ""))  # a registered family, or one line why not
    _PRESETS[preset.name] = preset
    return preset


def list_models() -> list[str]:
    """Preset names, notebook presets first."""
    return list(_PRESETS)


def get_preset(name: str) -> Preset:
    """The preset called `name` (case-insensitive); an unknown name lists the valid ones."""
    preset = _PRESETS.get(name.lower()) if isinstance(name, str) else None
    if preset is None:
        raise RnnlabError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    return preset


def preset_family(name: str) -> type[TextClassifier]:
    """The class a preset builds (its family), without building it."""
    return model_class(get_preset(name).settings["kind"])


def create_model(
    name: str,
    *,
    vocab_size: int,
    num_classes: int,
    input_dim: int | None = None,
    task: str = "classification",
    **overrides: Any,
) -> TextClassifier:
    """Build a preset, with overrides applied (None values are ignored).

    Pretrained vectors (`embeddings="glove-6b-50d"` or a GloVe text file) need `itos`, the
    vocabulary words in id order; the share found is kept on `model.embedding_coverage`.
    """
    preset = get_preset(name)
    itos = overrides.pop("itos", None)
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise RnnlabError(
            f"unknown model override(s) {', '.join(unknown)}; valid ones: {', '.join(OVERRIDES)}"
        )
    settings = {**preset.settings, **{k: v for k, v in overrides.items() if v is not None}}
    spec = ModelSpec(
        name=preset.name,
        vocab_size=vocab_size,
        num_classes=num_classes,
        input_dim=input_dim,
        task=task,
        **settings,
    )
    model = from_spec(spec)
    if spec.embeddings is not None:
        if itos is None:
            raise RnnlabError(
                "pretrained embeddings need the vocabulary words in id order; "
                "pass itos=<the vocabulary's words> to create_model"
            )
        if len(itos) != vocab_size:
            raise RnnlabError(
                f"itos has {len(itos)} words but vocab_size is {vocab_size}; pass the same vocabulary"
            )
        matrix, coverage = load_pretrained(spec.embeddings, list(itos), spec.embed_dim)
        model.load_embeddings(matrix)
        model.embedding_coverage = coverage
    return model


def create_model_from_config(
    cfg: ModelConfig,
    *,
    vocab_size: int,
    num_classes: int,
    input_dim: int | None = None,
    task: str = "classification",
    itos: list[str] | None = None,
) -> TextClassifier:
    """create_model(cfg.name, ...) with the fields set in cfg as overrides."""
    return create_model(
        cfg.name,
        vocab_size=vocab_size,
        num_classes=num_classes,
        input_dim=input_dim,
        task=task,
        itos=itos,
        **cfg.overrides(),
    )


def build_model(
    cfg: ModelConfig, splits: EncodedSplits, *, name: str | None = None, **overrides: Any
) -> TextClassifier:
    """The model `cfg` asks for, sized for `splits` (vocabulary, classes, inputs, task).

    `name` switches to another preset (and drops cfg.kind, which belonged to the old one);
    `overrides` replace ModelConfig fields, e.g. hidden_dim=64 for a sweep cell.
    """
    if name is not None:
        cfg = dataclasses.replace(cfg, name=name, kind=None)
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)
    itos = None
    if cfg.embeddings is not None and splits.encoder is not None:
        itos = list(splits.encoder.itos)
    return create_model_from_config(
        cfg,
        vocab_size=splits.vocab_size,
        num_classes=splits.num_classes,
        input_dim=splits.input_dim,
        task=splits.task,
        itos=itos,
    )
