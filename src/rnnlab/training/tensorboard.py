"""TensorBoard logging: a training callback that writes event files through
`torch.utils.tensorboard.SummaryWriter` (`--tensorboard`, `TrainConfig.tensorboard`).

```
runs/<name>/tensorboard/events.out.tfevents.*
```
Scalars, per epoch (step = the epoch number):
  epoch/train_loss, epoch/train_accuracy, epoch/val_loss, epoch/val_accuracy, epoch/val_macro_f1
  (epoch/val_mse for regression), epoch/lr (the learning rate the epoch started with),
  epoch/grad_norm (mean over the epoch's steps), epoch/tokens_per_s (training tokens per second
  of training time), epoch/seconds;
every `every` optimizer steps (step = the optimizer step, counted over all epochs):
  step/loss, step/accuracy (means over those steps' examples), step/lr (after the step),
  step/grad_norm (mean over those steps), step/tokens_per_s (their tokens over their wall time,
  measured from one backward pass to the next; validation time is not counted).
The gradient norm is the L2 norm over all parameters' gradients after backward, before clipping.
On an accelerator it stays on the device and is read back only when it is written, so logging
adds no host-device synchronisation per step.

A resumed run appends a new event file to the same folder; TensorBoard shows the steps in order.
`write_series` writes a curve over some other axis (the gradient-flow diagnostic's gradient norm
at every time step, step = the time step t).

The `tensorboard` package is optional (`pip install 'rnnlab[tensorboard]'`); `check_available`
says so in one line before any folder is made. Without `--tensorboard` this module's heavy
import never happens.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rnnlab.errors import RnnlabError
from rnnlab.training.callbacks import Callback, StepStats, TrainState

if TYPE_CHECKING:
    from rnnlab.data.batching import Batch

INSTALL = "pip install 'rnnlab[tensorboard]'"


def available() -> bool:
    """Whether the `tensorboard` package (which torch.utils.tensorboard needs) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def check_available() -> None:
    """One-line RnnlabError when TensorBoard logging was asked for and cannot be done."""
    if not available():
        raise RnnlabError(f"--tensorboard needs the tensorboard package: {INSTALL}")


def _summary_writer(log_dir: Path) -> Any:
    # torch.utils.tensorboard imports the optional tensorboard package (and protobuf): only
    # when logging was asked for, so runs without --tensorboard pay nothing
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))


def grad_norm(model: torch.nn.Module) -> torch.Tensor | None:
    """L2 norm over all parameters' gradients, as a 0-d tensor on their device (no sync)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return None
    return torch.nn.utils.get_total_norm(grads, norm_type=2.0)


class TensorBoardLogger(Callback):
    """Writes the scalars listed in the module docstring to `log_dir`, per epoch and every
    `every` optimizer steps."""

    def __init__(self, log_dir: Path | str, *, every: int = 50) -> None:
        if every < 1:
            raise RnnlabError(f"tensorboard_every must be at least 1 (got {every})")
        check_available()
        self.log_dir = Path(log_dir)
        self.every = every
        self.writer = _summary_writer(self.log_dir)
        self._step = 0  # the step whose on_batch_end comes next, minus one
        self._norms: dict[int, torch.Tensor] = {}  # step -> gradient norm, not yet written
        self._seconds: dict[int, float] = {}  # step -> wall time since the previous backward
        self._epoch_norms: list[torch.Tensor] = []
        self._mark = time.perf_counter()
        self._window_reset()

    def _window_reset(self) -> None:
        self._loss_sum, self._correct, self._examples, self._tokens = 0.0, 0, 0, 0
        self._classified = False

    def on_fit_start(self, state: TrainState) -> None:
        self._step = state.step  # a resumed run goes on counting from its checkpoint

    def on_epoch_start(self, state: TrainState) -> None:
        self._mark = time.perf_counter()  # the time between epochs (validation) is not counted
        self._epoch_norms = []

    def on_after_backward(self, state: TrainState, batch: Batch) -> None:
        now = time.perf_counter()
        self._seconds[state.step] = now - self._mark
        self._mark = now
        norm = grad_norm(state.model)
        if norm is not None:
            norm = norm.detach()
            self._norms[state.step] = norm
            self._epoch_norms.append(norm)

    def on_batch_end(self, state: TrainState, stats: StepStats) -> None:
        # on an accelerator the loop reports steps in groups, after state.step moved on: count
        self._step += 1
        self._loss_sum += stats.loss * stats.examples
        self._examples += stats.examples
        self._tokens += stats.tokens
        if stats.correct is not None:
            self._correct += stats.correct
            self._classified = True
        if self._step % self.every == 0:
            self._write_window(state)

    def _write_window(self, state: TrainState) -> None:
        step, add = self._step, self.writer.add_scalar
        done = [s for s in self._seconds if s <= step]
        seconds = sum(self._seconds.pop(s) for s in done)
        norms = [self._norms.pop(s) for s in sorted(self._norms) if s <= step]
        add("step/loss", self._loss_sum / max(self._examples, 1), step)
        if self._classified:
            add("step/accuracy", self._correct / max(self._examples, 1), step)
        add("step/lr", float(state.optimizer.param_groups[0]["lr"]), step)
        if norms:
            add("step/grad_norm", float(torch.stack(norms).mean()), step)
        if seconds > 0:
            add("step/tokens_per_s", self._tokens / seconds, step)
        self._window_reset()

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        epoch, add = int(record["epoch"]), self.writer.add_scalar
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1"):
            if record.get(key) is not None:
                add(f"epoch/{key}", float(record[key]), epoch)
        if record.get("val_mse") is not None:
            add("epoch/val_mse", float(record["val_mse"]), epoch)
        add("epoch/lr", float(record["lr"]), epoch)
        if self._epoch_norms:
            add("epoch/grad_norm", float(torch.stack(self._epoch_norms).mean()), epoch)
        add("epoch/tokens_per_s", float(record["train_tokens_per_s"]), epoch)
        add("epoch/seconds", float(record["seconds"]), epoch)
        self.writer.flush()

    def on_close(self, state: TrainState) -> None:
        self.writer.close()


def write_series(log_dir: Path | str, tag: str, values: Sequence[float | None]) -> None:
    """One curve into `log_dir`: value i at step i (missing values are left out)."""
    check_available()
    writer = _summary_writer(Path(log_dir))
    try:
        for step, value in enumerate(values):
            if value is not None:
                writer.add_scalar(tag, float(value), step)
    finally:
        writer.close()
