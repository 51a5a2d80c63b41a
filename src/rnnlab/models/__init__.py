"""Text classifiers: presets, the model families (recurrent cells, bag of n-grams, minGRU /
minLSTM, Transformer), hand-written cells, pretrained vectors."""

from rnnlab.models.classifier import (
    ModelSpec,
    RecurrentClassifier,
    StateTrace,
    TextClassifier,
    count_parameters,
)
from rnnlab.models.families import FAMILIES, from_spec, model_class, supports
from rnnlab.models.registry import (
    build_model,
    create_model,
    create_model_from_config,
    get_preset,
    list_models,
    preset_family,
)

__all__ = [
    "FAMILIES",
    "ModelSpec",
    "RecurrentClassifier",
    "StateTrace",
    "TextClassifier",
    "build_model",
    "count_parameters",
    "create_model",
    "create_model_from_config",
    "from_spec",
    "get_preset",
    "list_models",
    "model_class",
    "preset_family",
    "supports",
]
