"""The training loop, plain and top to bottom: `train_one_epoch` and a short `fit` (evaluation
is `rnnlab.training.evaluation`'s, early stopping `rnnlab.training.early_stopping`'s).

Batches come pre-encoded from `rnnlab.data.batching` (length-bucketed by default), so the hot
loop does no per-example Python work. Diagnostics attach through callbacks, never by editing
this file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from rnnlab.config import TrainConfig
from rnnlab.data.batching import AnySplit, iterate_batches, on_device
from rnnlab.data.encoded import EncodedSplits
from rnnlab.errors import RnnlabError
from rnnlab.layout import CHECKPOINT, METRICS
from rnnlab.training import distributed
from rnnlab.training.callbacks import Callback, MetricsWriter, StepStats, TrainState
from rnnlab.training.checkpoint import Checkpoint, StateDict, rng_state, set_rng_state, snapshot
from rnnlab.training.device import (
    autocast,
    describe_device,
    eval_batch_size,
    flush_denormal,
    flush_wanted,
    keep_freed_memory,
    model_device,
    resolve_device,
    runtime,
    use_amp,
)
from rnnlab.training.early_stopping import EarlyStopping, resolve_monitor
from rnnlab.training.evaluation import EvalResult, evaluate, model_task
from rnnlab.training.outcome import FitResult


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
    device = device or model_device(core)
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
        with autocast(device, amp):
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
