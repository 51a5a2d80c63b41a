"""The training loop, plain and top to bottom: `train_one_epoch`, `evaluate`, a short `fit`.

Batches come pre-encoded from `rnnlab.data.batching` (length-bucketed by default), so the hot
loop does no per-example Python work. Diagnostics attach through callbacks, never by editing
this file.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from rnnlab.config import TrainConfig
from rnnlab.data.batching import AnySplit, host_split, iterate_batches, on_device
from rnnlab.data.encoded import EncodedSplits
from rnnlab.errors import RnnlabError
from rnnlab.layout import CHECKPOINT, METRICS
from rnnlab.stats import bootstrap_interval, wilson_interval
from rnnlab.training import distributed, metrics
from rnnlab.training.callbacks import Callback, MetricsWriter, StepStats, TrainState
from rnnlab.training.checkpoint import Checkpoint, StateDict, rng_state, set_rng_state, snapshot
from rnnlab.training.device import (
    describe_device,
    eval_batch_size,
    flush_denormal,
    flush_wanted,
    keep_freed_memory,
    resolve_device,
    runtime,
    use_amp,
)
from rnnlab.training.outcome import FitResult

MAXIMIZE = {"val_accuracy": True, "val_macro_f1": True, "val_loss": False}
"""Written into the run folder after every epoch; `fit(resume=...)` continues from it."""


# ----- evaluation ------------------------------------------------------------------------------
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


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[Any]:
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def model_task(model: torch.nn.Module) -> str:
    """`classification` or `regression`, from `model.spec.task` (or `model.task`)."""
    spec = getattr(model, "spec", None)
    return str(getattr(spec, "task", None) or getattr(model, "task", "classification"))


def _model_device(model: torch.nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


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
    device = torch.device(device) if device is not None else _model_device(model)
    data = on_device(split, device)
    shard = world.eval_shard() if world is not None else None
    chunks: list[torch.Tensor] = []
    order: list[torch.Tensor] = []
    with _eval_mode(model), torch.inference_mode(), flush_denormal(flush_wanted()):
        for batch in iterate_batches(
            data, batch_size or eval_batch_size(device), shuffle=False, bucket=True, shard=shard
        ):
            batch = batch.to(device)
            with _autocast(device, amp):
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


# ----- training --------------------------------------------------------------------------------
@dataclass
class EpochStats:
    loss: float
    accuracy: float | None
    examples: int
    tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam / AdamW over the trainable parameters, as PyTorch's fused kernel where the device
    has one (CPU, CUDA): the same update rule in one pass, ~4x faster than the per-parameter
    loop on the CPU and within float rounding of it; else the multi-tensor (`foreach`) form."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise RnnlabError("the model has no trainable parameters; unfreeze the embeddings")
    optimizer = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    try:
        return optimizer(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except RuntimeError:  # a device (or torch version) without the fused kernel
        return optimizer(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)


SYNC_EVERY_GPU = 50
"""On an accelerator, step losses are read back (one host-device sync) every this many steps."""
SYNC_EVERY_RANKS = 10
"""Data parallel on the CPU: the ranks sum their step figures (one all-reduce) every this many."""


def train_one_epoch(
    model: torch.nn.Module,
    split: AnySplit,
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    *,
    epoch: int = 1,
    device: torch.device | None = None,
    amp: bool = False,
    scheduler: Any = None,
    callbacks: Sequence[Callback] = (),
    state: TrainState | None = None,
    sync_every: int | None = None,
) -> EpochStats:
    """One pass over `split`; `scheduler` (if any) steps after every optimizer step.

    Step losses and correct counts stay on the device and are read back every `sync_every`
    steps (every step on the CPU, where reading is free; SYNC_EVERY_GPU on an accelerator), so
    the training step itself never waits for the device. A non-finite loss raises RnnlabError
    naming its exact epoch and step when it is read. On CUDA, batches are gathered on the
    device (`on_device`: the split is moved there once, here unless `split` is a DeviceSplit
    already, as `fit` passes it); on the CPU they are collated on the host.

    Data parallel (`model` wrapped by `distributed.wrap`): this rank takes its slice of every
    global batch of `cfg.batch_size`, weights its loss by its share, and the step figures (loss,
    accuracy, examples, tokens) are summed over the ranks, so every rank reports the global ones.
    """
    world = distributed.world_of(model)  # None for a plain model: one process
    core = distributed.unwrap(model)  # the model itself: loss, predict, spec
    device = device or _model_device(core)
    cpu_sync = 1 if world is None else SYNC_EVERY_RANKS
    sync_every = sync_every or (cpu_sync if device.type == "cpu" else SYNC_EVERY_GPU)
    classification = model_task(core) != "regression"
    model.train()
    loss_sum, correct, examples, tokens = 0.0, 0, 0, 0
    pending: list[tuple[int, torch.Tensor, torch.Tensor | None, int, int]] = []

    def flush() -> None:
        """Read pending step results back (one sync), check them, report them to callbacks."""
        nonlocal loss_sum, correct, examples, tokens
        if not pending:
            return
        losses = torch.stack([loss for _, loss, _, _, _ in pending]).tolist()
        counts = (
            torch.stack([c for _, _, c, _, _ in pending]).tolist()  # type: ignore[misc]
            if classification
            else [None] * len(pending)
        )
        steps = [step for step, _, _, _, _ in pending]
        sizes = [size for _, _, _, size, _ in pending]
        step_tokens = [batch_tokens for _, _, _, _, batch_tokens in pending]
        stop = False
        if world is not None:  # the global batches' figures, the same on every rank
            losses, counts, sizes, step_tokens, stop = world.reduce_steps(
                losses, counts, sizes, step_tokens
            )
        for step, loss_value, batch_correct, size, batch_tokens in zip(
            steps, losses, counts, sizes, step_tokens, strict=True
        ):
            if not math.isfinite(loss_value):  # in a job: on every rank at once, rank 0 says it
                raise (RnnlabError if world is None else distributed.SharedError)(
                    f"the training loss became {loss_value} at epoch {epoch}, step {step}; "
                    f"lower the learning rate (--lr, now {cfg.lr:g}) or clip gradients "
                    "(--clip-norm)"
                )
            correct += batch_correct or 0
            loss_sum += loss_value * size
            examples += size
            tokens += batch_tokens
            if state is not None:
                stats = StepStats(loss_value, batch_correct, size, batch_tokens)
                for callback in callbacks:
                    callback.on_batch_end(state, stats)
        pending.clear()
        if stop:  # Ctrl-C or SIGTERM reached a rank: every rank stops after this same step
            raise KeyboardInterrupt

    start = time.perf_counter()
    data = on_device(split, device)
    batches = iterate_batches(
        data, cfg.batch_size, shuffle=True, bucket=cfg.bucket, seed=cfg.seed, epoch=epoch,
        shard=world.train_shard() if world is not None else None,
    )  # fmt: skip
    for step, batch in enumerate(batches, start=1):
        batch = batch.to(device)  # lengths stay on the CPU
        with _autocast(device, amp):
            logits = model(batch.tokens, batch.lengths)  # (B, C)
        loss = core.loss(logits.float(), batch.labels)  # type: ignore[operator]
        optimizer.zero_grad(set_to_none=True)
        if world is None:
            loss.backward()
        else:  # DDP averages over the ranks: so weighted, that is the global batch's mean
            (loss * batch.weight).backward()
        if state is not None:
            state.epoch_step, state.step = step, state.step + 1
            for callback in callbacks:
                callback.on_after_backward(state, batch)
        if cfg.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()

        batch_correct = None
        if classification:
            with torch.no_grad():
                predictions = core.predict(logits.detach().float())  # type: ignore[operator]
                batch_correct = (predictions == batch.labels).sum()
        size, batch_tokens = len(batch.lengths), batch.num_tokens
        if batch.stand_in:  # data parallel: no share of this step's batch, nothing to count
            size = batch_tokens = 0
            batch_correct = None if batch_correct is None else batch_correct * 0
        pending.append((step, loss.detach(), batch_correct, size, batch_tokens))
        if len(pending) >= sync_every:
            flush()
    flush()
    seconds = time.perf_counter() - start
    return EpochStats(
        loss=loss_sum / max(examples, 1),
        accuracy=correct / max(examples, 1) if classification else None,
        examples=examples,
        tokens=tokens,
        seconds=seconds,
    )


def resolve_monitor(monitor: str, task: str, has_val: bool) -> str | None:
    """The metric early stopping watches: regression falls back to val_loss; no val, none."""
    if not has_val:
        return None
    return "val_loss" if task == "regression" else monitor


def _make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps: int, maximize: bool
) -> Any:
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    if cfg.schedule == "plateau":
        mode: Literal["min", "max"] = "max" if maximize else "min"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=0.5, patience=0
        )
    return None


def _epoch_record(
    epoch: int, train: EpochStats, val: EvalResult | None, lr: float, seconds: float
) -> dict[str, Any]:
    record: dict[str, Any] = {"epoch": epoch, "train_loss": train.loss}
    if train.accuracy is not None:
        record["train_accuracy"] = train.accuracy
    if val is not None:
        record["val_loss"] = val.loss
        if val.task == "regression":
            record["val_mse"] = val.mse
        else:
            record["val_accuracy"] = val.accuracy
            record["val_macro_f1"] = val.macro_f1
    record.update(
        lr=lr,
        seconds=seconds,
        train_seconds=train.seconds,
        train_tokens=train.tokens,
        train_tokens_per_s=train.tokens_per_s,
    )
    return record


def _checkpoint(
    epoch: int,
    state: TrainState,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    stopper: EarlyStopping,
    best_weights: StateDict | None,
) -> Checkpoint:
    return Checkpoint(
        epoch=epoch,
        step=state.step,
        model=snapshot(state.model),
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict() if scheduler is not None else None,
        best_weights=best_weights,
        best_epoch=stopper.best_epoch,
        best_value=stopper.best_value,
        bad_epochs=stopper.bad_epochs,
        history=list(state.history),
        rng=rng_state(),
    )


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


def fit(
    model: torch.nn.Module,
    splits: EncodedSplits,
    cfg: TrainConfig,
    *,
    callbacks: Sequence[Callback] = (),
    run_dir: Path | str | None = None,
    resume: Checkpoint | None = None,
    world: distributed.World | None = None,
) -> FitResult:
    """Train `model` on `splits.train`, early-stop on `cfg.monitor`, restore the best weights.

    With `run_dir`, metrics.jsonl there gets one line per epoch as training goes, and
    checkpoint.pt the whole training state after every epoch (written atomically). `resume`
    continues from such a checkpoint: with the same data, config and thread count the result
    is bit-identical to a run that never stopped (on the CPU). Ctrl-C ends training cleanly
    (status `interrupted`, best weights so far restored). A NaN/inf loss raises RnnlabError
    naming the epoch and step.

    `world` (data parallel, rnnlab.training.distributed): every rank calls fit with the same
    model, data and config; `cfg.batch_size` is the global batch, shared out by the ranks; the
    model trains inside DistributedDataParallel; validation is split over the ranks, so every
    rank takes the same early-stopping decisions; Ctrl-C or SIGTERM on any rank stops all of
    them after the same step. Give `run_dir` on rank 0 only.
    """
    if len(splits.train) == 0:
        raise RnnlabError("the training split is empty; use more data (raise --limit)")
    device = resolve_device(cfg.device)  # in a job, `cuda` is this rank's own GPU
    amp = use_amp(cfg.amp, device)
    if device.type == "cpu":
        keep_freed_memory()
    callbacks = list(callbacks)
    if run_dir is not None:
        callbacks.insert(0, MetricsWriter(Path(run_dir) / METRICS))
    monitor = resolve_monitor(cfg.monitor, model_task(model), has_val=len(splits.val) > 0)
    stopper = EarlyStopping(monitor, cfg.patience)
    steps_per_epoch = -(-len(splits.train) // cfg.batch_size)
    eval_batch = max(cfg.batch_size, eval_batch_size(device))

    start = time.perf_counter()
    with (
        runtime(seed=cfg.seed, deterministic=cfg.deterministic, threads=cfg.threads),
        flush_denormal(flush_wanted(cfg.flush_denormal)) as flushed,
        distributed.agreed_stop(world),
    ):
        model.to(device)
        train_data, val_data = on_device(splits.train, device), on_device(splits.val, device)
        optimizer = make_optimizer(model, cfg)
        scheduler = _make_scheduler(optimizer, cfg, cfg.epochs * steps_per_epoch, stopper.maximize)
        state = TrainState(
            model, optimizer, device, model_task(model), cfg.epochs, steps_per_epoch, monitor or ""
        )
        best_weights: StateDict | None = None
        first_epoch = 1
        if resume is not None:
            model.load_state_dict(resume.model)
            optimizer.load_state_dict(resume.optimizer)
            if scheduler is not None and resume.scheduler is not None:
                scheduler.load_state_dict(resume.scheduler)
            stopper.best_epoch, stopper.best_value = resume.best_epoch, resume.best_value
            stopper.bad_epochs = resume.bad_epochs
            state.best_epoch, state.best_value = resume.best_epoch, resume.best_value
            state.history, state.step = list(resume.history), resume.step
            best_weights = resume.best_weights
            set_rng_state(resume.rng)
            first_epoch = resume.epoch + 1
        net = distributed.wrap(model, world)  # DDP in a job (rank 0's weights everywhere)
        status = "completed"
        try:
            try:
                for callback in callbacks:
                    callback.on_fit_start(state)
                # a resumed run that had already stopped early trains no further epoch
                last = first_epoch - 1 if stopper.should_stop else cfg.epochs
                for epoch in range(first_epoch, last + 1):
                    state.epoch, state.epoch_step = epoch, 0
                    for callback in callbacks:
                        callback.on_epoch_start(state)
                    epoch_start = time.perf_counter()
                    lr = float(optimizer.param_groups[0]["lr"])
                    distributed.seed_epoch(world, cfg.seed, epoch)
                    train = train_one_epoch(
                        net, train_data, optimizer, cfg, epoch=epoch, device=device, amp=amp,
                        scheduler=scheduler if cfg.schedule == "cosine" else None,
                        callbacks=callbacks, state=state,
                    )  # fmt: skip
                    val = None
                    if monitor is not None:
                        val = evaluate(
                            model, val_data, batch_size=eval_batch, device=device, amp=amp,
                            world=world,
                        )  # fmt: skip
                    record = _epoch_record(epoch, train, val, lr, time.perf_counter() - epoch_start)

                    record["best"] = stopper.update(epoch, record)
                    state.best_epoch, state.best_value = stopper.best_epoch, stopper.best_value
                    if record["best"] and monitor is not None:
                        best_weights = snapshot(model)
                    if cfg.schedule == "plateau" and monitor is not None:
                        scheduler.step(record[monitor])
                    state.history.append(record)
                    if run_dir is not None:  # before the callbacks: a finished epoch is kept
                        _checkpoint(epoch, state, optimizer, scheduler, stopper, best_weights).save(
                            Path(run_dir) / CHECKPOINT
                        )
                    for callback in callbacks:
                        callback.on_epoch_end(state, record)
                    if world is not None:  # a callback's stop, on any rank, stops them all
                        state.stop = world.any(state.stop)
                    if stopper.should_stop or state.stop:
                        break
            except KeyboardInterrupt:
                status = "interrupted"
            if best_weights is not None:
                model.load_state_dict(best_weights)
            result = FitResult(
                status=status,
                history=state.history,
                monitor=monitor,
                best_epoch=stopper.best_epoch,
                best_value=stopper.best_value,
                stopped_early=stopper.should_stop,
                device=describe_device(device) + (f" x {world.describe(device)}" if world else ""),
                amp=amp,
                seconds=time.perf_counter() - start,
                flush_denormal=flushed,
            )
            for callback in callbacks:
                callback.on_fit_end(state, result)
        finally:
            for callback in callbacks:
                callback.on_close(state)
    return result
