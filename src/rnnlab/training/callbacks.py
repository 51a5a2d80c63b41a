"""Callbacks: how progress bars, logs, metric files and diagnostics attach to the loop.

Subclass `Callback` and override what you need; every hook gets the shared `TrainState`.
Set `state.stop = True` in a hook to end training after the current epoch.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rnnlab.layout.manifest import write_file
from rnnlab.training.outcome import FitResult

if TYPE_CHECKING:
    from rnnlab.data.batching import Batch


@dataclass
class TrainState:
    """What the loop knows right now; callbacks read it (and may set `stop`)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    task: str
    epochs: int
    steps_per_epoch: int
    monitor: str
    epoch: int = 0
    """Current epoch, 1-based (0 before the first)."""
    step: int = 0
    """Optimizer steps taken so far, over all epochs."""
    epoch_step: int = 0
    """Steps taken in the current epoch."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """One record per finished epoch (the lines of metrics.jsonl)."""
    best_epoch: int | None = None
    best_value: float | None = None
    stop: bool = False


@dataclass
class StepStats:
    """One training step: mean loss of the batch, correct predictions, sizes."""

    loss: float
    correct: int | None  # None for regression
    examples: int
    tokens: int


class Callback:
    """No-op hooks; override the ones you need."""

    def on_fit_start(self, state: TrainState) -> None:
        pass

    def on_epoch_start(self, state: TrainState) -> None:
        pass

    def on_after_backward(self, state: TrainState, batch: Batch) -> None:
        """Gradients are in `.grad` (before clipping and the optimizer step)."""

    def on_batch_end(self, state: TrainState, stats: StepStats) -> None:
        pass

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        pass

    def on_fit_end(self, state: TrainState, result: FitResult) -> None:
        """Training finished, stopped early or was interrupted; best weights are restored."""

    def on_close(self, state: TrainState) -> None:
        """Always called last, also when training failed: release displays, files, hooks."""


class MetricsWriter(Callback):
    """Rewrites `metrics.jsonl` (one JSON object per epoch) atomically after every epoch (in a
    run folder, through its manifest)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_fit_start(self, state: TrainState) -> None:
        self._write(state)  # empty, or the epochs of a resumed run

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        self._write(state)

    def _write(self, state: TrainState) -> None:
        write_file(self.path, "".join(json.dumps(r) + "\n" for r in state.history).encode())


def format_epoch(record: dict[str, Any], epochs: int) -> str:
    """One line: train loss/acc, val loss/acc/macro-F1, seconds, tokens/s (`*` = new best)."""
    width = len(str(epochs))
    parts = [f"epoch {record['epoch']:>{width}}/{epochs}", f"train loss {record['train_loss']:.4f}"]
    if record.get("train_accuracy") is not None:
        parts[-1] += f" acc {record['train_accuracy']:.4f}"
    if record.get("val_loss") is not None:
        val = f"val loss {record['val_loss']:.4f}"
        if record.get("val_accuracy") is not None:
            val += f" acc {record['val_accuracy']:.4f} macro-F1 {record['val_macro_f1']:.4f}"
        elif record.get("val_mse") is not None:
            val += f" mse {record['val_mse']:.4f}"
        parts.append(val)
    parts.append(f"{record['seconds']:.1f} s, {record['train_tokens_per_s']:,.0f} tok/s")
    return " | ".join(parts) + (" *" if record.get("best") else "")


class ConsoleLogger(Callback):
    """A live rich progress bar (TTY only, when `progress`) and one printed line per epoch."""

    def __init__(
        self, stream: TextIO | None = None, *, progress: bool = True, lines: bool = True
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        isatty = getattr(self.stream, "isatty", None)
        self.show_bar = progress and bool(isatty and isatty())
        self.lines = lines
        self._progress: Any = None
        self._task: Any = None
        self._reset()

    def _reset(self) -> None:
        self._loss_sum = 0.0
        self._correct = 0
        self._examples = 0
        self._tokens = 0
        self._start = time.perf_counter()
        self._last_refresh = 0.0

    def on_fit_start(self, state: TrainState) -> None:
        if not self.show_bar:
            return
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[stats]}"),
            console=Console(file=self.stream),
            transient=True,
        )
        self._progress.start()

    def on_epoch_start(self, state: TrainState) -> None:
        self._reset()
        if self._progress is not None:
            if self._task is not None:
                self._progress.remove_task(self._task)
            description = f"epoch {state.epoch}/{state.epochs}"
            self._task = self._progress.add_task(description, total=state.steps_per_epoch, stats="")

    def on_batch_end(self, state: TrainState, stats: StepStats) -> None:
        if self._progress is None:
            return
        self._loss_sum += stats.loss * stats.examples
        self._examples += stats.examples
        self._tokens += stats.tokens
        if stats.correct is not None:
            self._correct += stats.correct
        now = time.perf_counter()
        if now - self._last_refresh < 0.1 and state.epoch_step < state.steps_per_epoch:
            self._progress.update(self._task, advance=1)
            return
        self._last_refresh = now
        text = f"loss {self._loss_sum / self._examples:.4f}"
        if stats.correct is not None:
            text += f" acc {self._correct / self._examples:.4f}"
        text += f" {self._tokens / max(now - self._start, 1e-9):,.0f} tok/s"
        self._progress.update(self._task, advance=1, stats=text)

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        line = format_epoch(record, state.epochs)
        if self._progress is not None:
            if self.lines:
                self._progress.console.print(line, highlight=False, markup=False)
        elif self.lines:
            print(line, file=self.stream, flush=True)

    def on_close(self, state: TrainState) -> None:
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
