"""Training: the loop (`fit`, `train_one_epoch`), `evaluate`, callbacks, metrics, checkpoints."""

from rnnlab.training import metrics
from rnnlab.training.callbacks import (
    Callback,
    ConsoleLogger,
    MetricsWriter,
    StepStats,
    TrainState,
)
from rnnlab.training.checkpoint import load_state_dict, save_state_dict, snapshot
from rnnlab.training.device import resolve_device, runtime, seed_everything
from rnnlab.training.early_stopping import EarlyStopping
from rnnlab.training.evaluation import EvalResult, evaluate, predict_logits
from rnnlab.training.outcome import FitResult
from rnnlab.training.trainer import EpochStats, fit, make_optimizer, train_one_epoch

__all__ = [
    "Callback",
    "ConsoleLogger",
    "EarlyStopping",
    "EpochStats",
    "EvalResult",
    "FitResult",
    "MetricsWriter",
    "StepStats",
    "TrainState",
    "evaluate",
    "fit",
    "load_state_dict",
    "make_optimizer",
    "metrics",
    "predict_logits",
    "resolve_device",
    "runtime",
    "save_state_dict",
    "seed_everything",
    "snapshot",
    "train_one_epoch",
]
