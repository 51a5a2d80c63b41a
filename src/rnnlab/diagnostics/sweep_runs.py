"""One cell of a training sweep: build a preset, `fit` it, `evaluate` it on the test split.

Shared by the sequence-length sweep (length_sweep) and the hidden-size sweep (capacity); both
reuse rnnlab.training.fit / evaluate unchanged, so a cell trains exactly as `rnnlab train`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.config import RunConfig
from rnnlab.data.encoded import EncodedSplits
from rnnlab.diagnostics.common import finite
from rnnlab.errors import RnnlabError


@dataclass
class TrainedCell:
    """What one training run of a sweep measured."""

    model: str
    seed: int
    test_accuracy: float | None
    test_macro_f1: float | None
    test_loss: float | None
    best_val_accuracy: float | None
    epochs_run: int
    train_seconds: float
    """Time spent in training steps (no validation), summed over epochs."""
    fit_seconds: float
    """Wall time of `fit` (training and per-epoch validation)."""
    parameters: int
    accuracy_by_length: list[dict[str, Any]]
    """Test accuracy per length bucket: lo, hi (null: open), count, accuracy."""
    status: str


def train_and_test(
    config: RunConfig,
    model_name: str,
    splits: EncodedSplits,
    *,
    seed: int,
    length_edges: Sequence[int],
    **model_overrides: Any,
) -> TrainedCell:
    """Train preset `model_name` (config.model fields and `model_overrides` on top) with
    config.train and `seed`; test it. Nothing is written to disk."""
    from rnnlab.models import count_parameters, create_model_from_config
    from rnnlab.training import evaluate, fit, seed_everything

    if len(splits.test) == 0:
        raise RnnlabError("the test split is empty; use more data (raise --limit)")
    model_cfg = dataclasses.replace(config.model, name=model_name, kind=None, **model_overrides)
    train_cfg = dataclasses.replace(config.train, seed=seed, progress=False)
    seed_everything(seed)
    itos = list(splits.encoder.itos) if model_cfg.embeddings and splits.encoder else None
    model = create_model_from_config(
        model_cfg,
        vocab_size=splits.vocab_size,
        num_classes=splits.num_classes,
        input_dim=splits.input_dim,
        task=splits.task,
        itos=itos,
    )
    fitted = fit(model, splits, train_cfg)
    test = evaluate(
        model,
        splits.test,
        batch_size=max(train_cfg.batch_size, 256),
        amp=fitted.amp,
        length_edges=length_edges,
    )
    best = next((r for r in fitted.history if r["epoch"] == fitted.best_epoch), None)
    return TrainedCell(
        model=model_name,
        seed=seed,
        test_accuracy=finite(test.accuracy),
        test_macro_f1=finite(test.macro_f1),
        test_loss=finite(test.loss),
        best_val_accuracy=finite(best.get("val_accuracy")) if best else None,
        epochs_run=fitted.epochs_run,
        train_seconds=float(sum(r["train_seconds"] for r in fitted.history)),
        fit_seconds=float(fitted.seconds),
        parameters=int(count_parameters(model)["total"]),
        accuracy_by_length=list(test.accuracy_by_length or []),
        status=fitted.status,
    )


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and population std of the values that are not None."""
    present = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if not len(present):
        return None, None
    return finite(present.mean()), finite(present.std())


def sweep_settings(config: RunConfig) -> dict[str, Any]:
    """The settings every cell shares, for the result and its table."""
    return {
        "epochs": config.train.epochs,
        "batch_size": config.train.batch_size,
        "lr": config.train.lr,
        "limit": config.data.limit,
        "embed_dim": config.model.embed_dim,
        "hidden_dim": config.model.hidden_dim,
        "device": config.train.device,
    }


def pm(mean: float | None, std: float | None, spec: str = ".3f") -> str:
    if mean is None:
        return "-"
    return format(mean, spec) if not std else f"{mean:{spec}} ± {std:{spec}}"
