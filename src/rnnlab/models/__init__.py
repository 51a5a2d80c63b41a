"""Recurrent text classifiers: presets, the model, hand-written cells, pretrained vectors."""

from rnnlab.models.classifier import (
    ModelSpec,
    RecurrentClassifier,
    StateTrace,
    count_parameters,
)
from rnnlab.models.registry import (
    build_model,
    create_model,
    create_model_from_config,
    get_preset,
    list_models,
)

__all__ = [
    "ModelSpec",
    "RecurrentClassifier",
    "StateTrace",
    "build_model",
    "count_parameters",
    "create_model",
    "create_model_from_config",
    "get_preset",
    "list_models",
]
