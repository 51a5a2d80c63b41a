"""Text classifiers: presets, the model families (recurrent cells, bag of n-grams, minGRU /
minLSTM, Transformer), hand-written cells, pretrained vectors."""

from rnnlab.models.classifier import (
    ModelSpec,
    RecurrentClassifier,
    StateTrace,
    TextClassifier,
    count_parameters,
)
from rnnlab.models.families import colors, from_spec, model_class, supports
from rnnlab.models.family import FAMILIES, Family, family, kinds, register_family
from rnnlab.models.registry import (
    Preset,
    build_model,
    create_model,
    create_model_from_config,
    get_preset,
    list_models,
    preset_family,
    register_preset,
)

__all__ = [
    "FAMILIES",
    "Family",
    "ModelSpec",
    "Preset",
    "RecurrentClassifier",
    "StateTrace",
    "TextClassifier",
    "build_model",
    "colors",
    "count_parameters",
    "create_model",
    "create_model_from_config",
    "family",
    "from_spec",
    "get_preset",
    "kinds",
    "list_models",
    "model_class",
    "preset_family",
    "register_family",
    "register_preset",
    "supports",
]
