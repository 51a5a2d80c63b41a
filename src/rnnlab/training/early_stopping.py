"""Early stopping: the metric a run watches (`resolve_monitor`) and when it stops improving
(`EarlyStopping`)."""

from __future__ import annotations

from typing import Any

MAXIMIZE = {"val_accuracy": True, "val_macro_f1": True, "val_loss": False}
"""Whether a larger value of each metric early stopping can watch is better."""


def resolve_monitor(monitor: str, task: str, has_val: bool) -> str | None:
    """The metric early stopping watches: regression falls back to val_loss; no val, none."""
    if not has_val:
        return None
    return "val_loss" if task == "regression" else monitor


class EarlyStopping:
    """Tracks the best value of the monitored metric and counts epochs without improvement."""

    def __init__(self, monitor: str | None, patience: int | None) -> None:
        self.monitor = monitor
        self.maximize = MAXIMIZE.get(monitor or "val_loss", False)
        self.patience = patience
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.bad_epochs = 0

    def update(self, epoch: int, record: dict[str, Any]) -> bool:
        """True when this epoch is the new best (always, without a monitor)."""
        value = record[self.monitor] if self.monitor is not None else None
        best = self.best_value
        improved = (
            value is None or best is None or (value > best if self.maximize else value < best)
        )
        if improved:
            self.best_epoch, self.best_value, self.bad_epochs = epoch, value, 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience
