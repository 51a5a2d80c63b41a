"""Evaluation: a model's loss and metrics on one split (`evaluate`), its logits in split order
(`predict_logits`), and `EvalResult`, the metrics with their 95% intervals.

Data parallel (`world`): the evaluation batches are dealt out whole to the ranks and the logits
gathered, so every rank gets the single-process metrics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rnnlab.data.batching import AnySplit, host_split, iterate_batches, on_device
from rnnlab.errors import RnnlabError
from rnnlab.stats import bootstrap_interval, wilson_interval
from rnnlab.training import distributed, metrics
from rnnlab.training.device import (
    autocast,
    eval_batch_size,
    flush_denormal,
    flush_wanted,
    model_device,
)


@dataclass
class EvalResult:
    """Metrics of a model on one split. Arrays are in the split's example order."""

    task: str
    examples: int
    loss: float
    accuracy: float | None = None
    macro_f1: float | None = None
    precision: list[float] | None = None
    recall: list[float] | None = None
    f1: list[float] | None = None
    support: list[int] | None = None
    confusion: list[list[int]] | None = None
    accuracy_by_length: list[dict[str, Any]] | None = None
    mse: float | None = None
    mae: float | None = None
    predictions: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    """(N,) predicted class ids (or values for regression)."""
    probabilities: np.ndarray | None = field(default=None, repr=False)
    """(N, C) class probabilities; None for regression."""
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    """(N,) the true labels, in the same order."""

    def intervals(self) -> dict[str, list[float]]:
        """95% intervals: Wilson for the accuracy, a bootstrap (1,000 resamples) for macro-F1."""
        if self.task == "regression" or self.accuracy is None:
            return {}
        correct = round(self.accuracy * self.examples)
        classes = len(self.f1 or [])

        def f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
            return metrics.macro_f1(y_true, y_pred, classes)

        return {
            "accuracy_interval": list(wilson_interval(correct, self.examples)),
            "macro_f1_interval": list(bootstrap_interval(self.labels, self.predictions, f1)),
        }

    def to_dict(self, label_names: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-ready metrics (no per-example arrays); per-class values keyed by label name,
        95% intervals of accuracy and macro-F1."""
        out: dict[str, Any] = {"task": self.task, "examples": self.examples, "loss": self.loss}
        if self.task == "regression":
            out.update(mse=self.mse, mae=self.mae)
            return out
        assert self.f1 is not None and self.precision is not None
        assert self.recall is not None and self.support is not None
        names = list(label_names) if label_names else [str(i) for i in range(len(self.f1))]
        out.update(
            accuracy=self.accuracy,
            macro_f1=self.macro_f1,
            per_class={
                name: {
                    "precision": self.precision[i],
                    "recall": self.recall[i],
                    "f1": self.f1[i],
                    "support": self.support[i],
                }
                for i, name in enumerate(names)
            },
            confusion={"labels": names, "matrix": self.confusion},
            accuracy_by_length=self.accuracy_by_length,
            **self.intervals(),
        )
        return out


def model_task(model: torch.nn.Module) -> str:
    """`classification` or `regression`, from `model.spec.task` (or `model.task`)."""
    spec = getattr(model, "spec", None)
    return str(getattr(spec, "task", None) or getattr(model, "task", "classification"))


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def predict_logits(
    model: torch.nn.Module,
    split: AnySplit,
    *,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    amp: bool = False,
    world: distributed.World | None = None,
) -> torch.Tensor:
    """Logits for every example, in split order: (N, C) float32 on the CPU.

    `batch_size` None: `eval_batch_size(device)` (larger on a GPU). On CUDA the batches are
    gathered there (`on_device`) and the logits stay there until one copy back at the end,
    so no batch waits for the host. `world` (data parallel): each rank computes every
    world-size-th batch, whole, and every rank gets all the logits, equal to one process's.
    """
    device = torch.device(device) if device is not None else model_device(model)
    data = on_device(split, device)
    shard = world.eval_shard() if world is not None else None
    chunks: list[torch.Tensor] = []
    order: list[torch.Tensor] = []
    with _eval_mode(model), torch.inference_mode(), flush_denormal(flush_wanted()):
        for batch in iterate_batches(
            data, batch_size or eval_batch_size(device), shuffle=False, bucket=True, shard=shard
        ):
            batch = batch.to(device)
            with autocast(device, amp):
                logits = model(batch.tokens, batch.lengths)  # (B, C)
            chunks.append(logits.float())
            order.append(batch.indices)  # (B,) on the CPU
        if world is not None:  # every rank's rows, on every rank
            ordered, indices = world.gather_rows(
                torch.cat(chunks) if chunks else torch.empty(0, 1),
                torch.cat(order) if order else torch.zeros(0, dtype=torch.int64),
            )
        elif not chunks:
            return torch.empty(0, 1)
        else:  # (N, C) in batch order: the one copy back
            ordered, indices = torch.cat(chunks).cpu(), torch.cat(order)
        out = torch.empty_like(ordered)
        out[indices] = ordered  # split order
    return out


def evaluate(
    model: torch.nn.Module,
    split: AnySplit,
    *,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    amp: bool = False,
    length_edges: Sequence[int] = metrics.LENGTH_EDGES,
    world: distributed.World | None = None,
) -> EvalResult:
    """Loss and metrics of `model` on `split` (MSE/MAE instead of accuracy for regression);
    `batch_size` None: `eval_batch_size(device)`. `world`: the batches split over the ranks,
    the logits gathered, the same metrics on every rank as in one process."""
    if len(split) == 0:
        raise RnnlabError("cannot evaluate on an empty split; use more data (raise --limit)")
    logits = predict_logits(
        model, split, batch_size=batch_size, device=device, amp=amp, world=world
    )  # (N, C)
    split = host_split(split)
    labels = torch.from_numpy(np.ascontiguousarray(split.labels))
    task = model_task(model)
    with torch.no_grad():
        loss = float(model.loss(logits, labels))  # type: ignore[operator]
        predictions = model.predict(logits).cpu().numpy()  # type: ignore[operator]
    if task == "regression":
        predictions = predictions.astype(np.float64).reshape(-1)
        return EvalResult(
            task,
            len(split),
            loss,
            mse=metrics.mean_squared_error(split.labels, predictions),
            mae=metrics.mean_absolute_error(split.labels, predictions),
            predictions=predictions,
            labels=np.asarray(split.labels),
        )
    with torch.no_grad():
        probabilities = model.probabilities(logits).cpu().numpy()  # type: ignore[operator]  # (N, K)
    num_classes = probabilities.shape[1]
    precision, recall, f1, support = metrics.precision_recall_f1(
        split.labels, predictions, num_classes
    )
    return EvalResult(
        task,
        len(split),
        loss,
        accuracy=metrics.accuracy(split.labels, predictions),
        macro_f1=metrics.macro_f1(split.labels, predictions, num_classes),
        precision=precision.tolist(),
        recall=recall.tolist(),
        f1=f1.tolist(),
        support=support.tolist(),
        confusion=metrics.confusion_matrix(split.labels, predictions, num_classes).tolist(),
        accuracy_by_length=metrics.accuracy_by_length(
            split.labels, predictions, split.lengths, length_edges
        ),
        predictions=predictions,
        probabilities=probabilities,
        labels=np.asarray(split.labels, dtype=np.int64),
    )
