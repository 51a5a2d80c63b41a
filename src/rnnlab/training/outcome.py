"""What `fit` returns (its own module: the callbacks see it at the end of a fit, and the loop
that makes it imports the callbacks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class FitResult:
    """What `fit` did. The model it was given now holds the best weights."""

    status: str
    """`completed` or `interrupted` (Ctrl-C)."""
    history: list[dict[str, Any]]
    """One record per finished epoch (as in metrics.jsonl)."""
    monitor: str | None
    """The validation metric that chose the best epoch (None without a validation split)."""
    best_epoch: int | None
    best_value: float | None
    stopped_early: bool
    device: str
    amp: bool
    seconds: float
    flush_denormal: bool = False
    """Whether subnormal floats were flushed to zero on the CPU (the resolved setting)."""

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    @property
    def epoch_seconds(self) -> list[float]:
        return [r["seconds"] for r in self.history]

    @property
    def seconds_per_epoch(self) -> float | None:
        return float(np.mean(self.epoch_seconds)) if self.history else None

    @property
    def train_tokens_per_s(self) -> float | None:
        seconds = sum(r["train_seconds"] for r in self.history)
        tokens = sum(r["train_tokens"] for r in self.history)
        return tokens / seconds if seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "monitor": self.monitor,
            "best_value": self.best_value,
            "stopped_early": self.stopped_early,
            "epoch_seconds": self.epoch_seconds,
            "seconds_per_epoch": self.seconds_per_epoch,
            "train_tokens_per_s": self.train_tokens_per_s,
            "fit_seconds": self.seconds,
            "device": self.device,
            "amp": self.amp,
            "flush_denormal": self.flush_denormal,
        }
