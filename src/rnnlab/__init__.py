"""rnnlab: train, compare and diagnose recurrent text classifiers (RNN, LSTM, GRU) in PyTorch.

    import rnnlab
    splits = rnnlab.load_splits(rnnlab.DataConfig(dataset="imdb"))
    model = rnnlab.create_model("lstm", vocab_size=splits.vocab_size, num_classes=2)
    result = rnnlab.train(rnnlab.RunConfig(model=rnnlab.ModelConfig(name="gru")))
    run = rnnlab.load_run(result.run_dir)

Names are imported on first use, so `import rnnlab` (and the CLI) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "DataConfig": "rnnlab.config",
    "ModelConfig": "rnnlab.config",
    "TrainConfig": "rnnlab.config",
    "RunConfig": "rnnlab.config",
    "RnnlabError": "rnnlab.errors",
    "load_splits": "rnnlab.data",
    "EncodedSplit": "rnnlab.data",
    "EncodedSplits": "rnnlab.data",
    "TextEncoder": "rnnlab.data",
    "Vocab": "rnnlab.data",
    "iterate_batches": "rnnlab.data",
    "create_model": "rnnlab.models",
    "list_models": "rnnlab.models",
    "count_parameters": "rnnlab.models",
    "RecurrentClassifier": "rnnlab.models",
    "fit": "rnnlab.training",
    "evaluate": "rnnlab.training",
    "train": "rnnlab.api",
    "compare": "rnnlab.api",
    "diagnose": "rnnlab.api",
    "explain": "rnnlab.api",
    "run_study": "rnnlab.study",
    "study_settings": "rnnlab.study",
    "evaluate_run": "rnnlab.api",
    "predict": "rnnlab.api",
    "load_run": "rnnlab.runs",
}

__all__ = [
    "DataConfig",
    "EncodedSplit",
    "EncodedSplits",
    "ModelConfig",
    "RecurrentClassifier",
    "RnnlabError",
    "RunConfig",
    "TextEncoder",
    "TrainConfig",
    "Vocab",
    "compare",
    "count_parameters",
    "create_model",
    "diagnose",
    "evaluate",
    "evaluate_run",
    "explain",
    "fit",
    "iterate_batches",
    "list_models",
    "load_run",
    "load_splits",
    "predict",
    "run_study",
    "study_settings",
    "train",
]

if TYPE_CHECKING:
    from rnnlab.api import compare, diagnose, evaluate_run, explain, predict, train
    from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from rnnlab.data import (
        EncodedSplit,
        EncodedSplits,
        TextEncoder,
        Vocab,
        iterate_batches,
        load_splits,
    )
    from rnnlab.errors import RnnlabError
    from rnnlab.models import RecurrentClassifier, count_parameters, create_model, list_models
    from rnnlab.runs import load_run
    from rnnlab.study import run_study, study_settings
    from rnnlab.training import evaluate, fit


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rnnlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
