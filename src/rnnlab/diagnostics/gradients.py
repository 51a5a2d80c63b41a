"""Taking gradients for a diagnostic without touching the caller's model or its training."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn


def private_copy(
    model: nn.Module, device: torch.device, dtype: torch.dtype | None = None
) -> nn.Module:
    """A copy of `model` on `device` (and `dtype`), so the caller's model is untouched."""
    twin = copy.deepcopy(model)
    return twin.to(device=device, dtype=dtype) if dtype is not None else twin.to(device)


@contextmanager
def gradient_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Train mode (cuDNN refuses RNN backward in eval mode) with every dropout switched off:
    nn.Dropout modules, the recurrent layer's between-layer dropout and `spec.dropout` (read by
    the layer-by-layer paths). Everything is restored on exit."""
    was_training = model.training
    saved: list[tuple[Any, str, Any]] = []

    def set_attr(obj: Any, name: str, value: Any) -> None:
        saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    try:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                set_attr(module, "p", 0.0)
            elif _is_number(getattr(module, "dropout", None)):
                set_attr(module, "dropout", 0.0)
        spec = getattr(model, "spec", None)
        if spec is not None and getattr(spec, "dropout", None):
            set_attr(model, "spec", dataclasses.replace(spec, dropout=0.0))
        model.train()
        yield model
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)
        model.train(was_training)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sum_loss(model: nn.Module, logits: Tensor, labels: Tensor) -> Tensor:
    """Sum of the per-example losses (model.loss is a batch mean): every row's gradient is then
    that example's own loss gradient, whatever the batch size."""
    return model.loss(logits, labels) * logits.shape[0]  # type: ignore[operator]
