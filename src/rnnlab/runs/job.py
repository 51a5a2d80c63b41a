"""One training job: pre-flight, open the run folder, fit, test and save (`train`), or the
same from a run's last finished epoch (`resume`), and what `rnnlab train --nproc N` checks
once before starting the ranks (`check_job`). rnnlab.api re-exports them.

The one train-and-test path: `seeded_model` draws a model's weights from the job's seed and
`fit_and_test` trains and tests it. A job composes them with its folder; the sweeps and the
synthetic tasks compose them in memory (`train_and_test`), so a cell of a sweep trains and
tests exactly as `rnnlab train` does.

Pre-flight, in order, before anything is written: the device, TensorBoard, the data, the
memory the model needs, the model itself and its compiled kernels. Under torchrun every rank
runs the same job; rank 0 alone reads and writes the folder (rnnlab.training.distributed).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch

from rnnlab.config import RunConfig
from rnnlab.data import load_splits, resolve_tokenizer
from rnnlab.data.encoded import EncodedSplits
from rnnlab.errors import RnnlabError, disk_error
from rnnlab.layout import CHECKPOINT, CONFIG, TENSORBOARD
from rnnlab.models import TextClassifier, build_model, kernels
from rnnlab.models.memory import check_memory, estimate_memory
from rnnlab.runs.folder import (
    DEFAULT_OUT,
    build_summary,
    check_checkpoint_fits,
    check_name_free,
    check_resumable,
    check_same_data,
    clear_run,
    default_run_name,
    finish_run,
    lock_run,
    mark_failed,
    new_run_dir,
    reopen_run,
    start_run,
    timestamp,
)
from rnnlab.runs.tables import run_tables
from rnnlab.tables import html_block
from rnnlab.training import distributed, metrics, tensorboard
from rnnlab.training.callbacks import Callback, ConsoleLogger
from rnnlab.training.checkpoint import Checkpoint
from rnnlab.training.device import resolve_device, runtime
from rnnlab.training.signals import interrupt_once
from rnnlab.training.trainer import EvalResult, FitResult, evaluate, fit


@dataclass
class RunResult:
    """One finished (or interrupted) training run, saved in `run_dir`."""

    run_dir: Path
    config: RunConfig
    model: torch.nn.Module
    fit: FitResult
    test: EvalResult | None
    summary: dict[str, Any]

    @property
    def status(self) -> str:
        return self.fit.status

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.fit.history

    def _repr_html_(self) -> str:
        """A notebook shows the run as tables: scores and timings, per class, per epoch."""
        return html_block(f"run {self.run_dir}", run_tables(self.summary, self.history))


def train(
    config: RunConfig,
    *,
    out: Path | str | None = None,
    name: str | None = None,
    splits: EncodedSplits | None = None,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    stream: TextIO | None = None,
    overwrite: bool = False,
) -> RunResult:
    """Load the data, build the model, train, test and save everything in `out/name`.

    `splits` reuses data already loaded (it must match `config.data`); `verbose` prints one
    line per epoch (and a progress bar when `config.train.progress` and the stream is a TTY)
    to `stream` (default stdout). `overwrite` replaces an earlier run folder of that name.
    `config.train.tensorboard` also writes TensorBoard event files to `<run>/tensorboard/`.
    Ctrl-C or SIGTERM stops training early: the best weights so far are saved, the summary
    says `"status": "interrupted"`, and `resume(run_dir)` continues from the last epoch.

    Under torchrun (`torchrun --nproc-per-node N ...`, or `rnnlab train --nproc N`) every rank
    calls this with the same arguments: `config.train.batch_size` is the batch of one process,
    the run trains with DistributedDataParallel on the global batch of N x that (what
    config.yaml records: the same file trains the same model in one process), and only rank 0
    writes the folder and prints (rnnlab.training.distributed).
    """
    # config.yaml records the tokenizer used (tokenizer: auto stands for another per dataset)
    config = dataclasses.replace(config, data=resolve_tokenizer(config.data))
    with distributed.session() as world:
        if world is not None:  # the global batch: what the run's config.yaml says
            job = dataclasses.replace(config.train, batch_size=config.train.batch_size * world.size)
            config = dataclasses.replace(config, train=job)
        device = check_device(config, world)

        def claim_name() -> None:
            if overwrite and name is not None:
                clear_run(out, name)
            check_name_free(out, name)

        distributed.on_main(world, claim_name)  # rank 0 checks; an error stops every rank
        splits = splits if splits is not None else load_splits(config.data)

        def open_run(held: contextlib.ExitStack, model: torch.nn.Module) -> Path:
            run_dir = new_run_dir(out, name, default=default_run_name(config))
            held.enter_context(lock_run(run_dir))
            start_run(run_dir, config, splits, model)
            return run_dir

        return _fit_in_folder(
            config, splits, device, world, open_run, None, callbacks, verbose, stream
        )


def resume(
    run_dir: Path | str,
    *,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    stream: TextIO | None = None,
) -> RunResult:
    """Continue an unfinished, interrupted or failed run in its own folder, from its last
    finished epoch (checkpoint.pt; from the start without one). With the same data and thread
    count on the CPU, the result is bit-identical to a run that never stopped.

    Under torchrun, with any number of ranks: rank 0 reads the folder (config, checkpoint) and
    hands it to the others; the run keeps its global batch (config.yaml), shared out by the
    ranks there are now. With the world size it was trained with, the result is bit-identical
    on the CPU too; with another, equal to float rounding (the gradients are summed in another
    order)."""
    with distributed.session() as world:

        def read_folder() -> tuple[Path, RunConfig, Checkpoint | None]:
            folder = check_resumable(run_dir)
            config = RunConfig.load_yaml(folder / CONFIG)
            checkpoint_file = folder / CHECKPOINT
            checkpoint = Checkpoint.load(checkpoint_file) if checkpoint_file.is_file() else None
            return folder, config, checkpoint

        folder, config, checkpoint = distributed.on_main(world, read_folder)
        device = check_device(config, world)
        splits = load_splits(config.data)
        distributed.on_main(world, lambda: check_same_data(folder, splits))

        def reopen(held: contextlib.ExitStack, model: torch.nn.Module) -> Path:
            if checkpoint is not None:
                check_checkpoint_fits(folder, checkpoint, model)
            held.enter_context(lock_run(folder))
            reopen_run(folder)
            start_run(folder, config, splits, model)
            return folder

        return _fit_in_folder(
            config, splits, device, world, reopen, checkpoint, callbacks, verbose, stream
        )


def check_device(config: RunConfig, world: distributed.World | None = None) -> torch.device:
    """Pre-flight, first: the device (and, in a job, one per rank) and TensorBoard when asked,
    before any data is loaded or folder made."""
    device = resolve_device(config.train.device)
    distributed.check_device(config.train.device, world)
    if config.train.tensorboard:
        tensorboard.check_available()
    return device


def _fit_in_folder(
    config: RunConfig,
    splits: EncodedSplits,
    device: torch.device,
    world: distributed.World | None,
    open_folder: Callable[[contextlib.ExitStack, torch.nn.Module], Path],
    checkpoint: Checkpoint | None,
    callbacks: Sequence[Callback],
    verbose: bool,
    stream: TextIO | None,
) -> RunResult:
    """The rest of every job once its data is loaded: the memory check, the model, its
    compiled kernels (all before any folder is touched), then `open_folder` on rank 0 (held
    open, e.g. locked, until the job ends), fit, test and save."""
    check_model_memory(config, splits, device, world)
    cfg = config.train
    with (
        runtime(seed=cfg.seed, deterministic=cfg.deterministic, threads=cfg.threads),
        contextlib.ExitStack() as held,
    ):
        model = seeded_model(config, splits)
        kernels.prepare(model.spec.kind, device)  # build or fail, no folder yet
        run_dir = distributed.on_main(world, lambda: open_folder(held, model))  # rank 0's alone
        return fit_and_save(
            run_dir, config, splits, model, checkpoint, callbacks, verbose, stream, world
        )


def free_run_name(config: RunConfig, out: Path | str | None = None) -> str:
    """A fresh `<timestamp>-<model>-<dataset>` name under `out`, as `train` picks one."""
    root = Path(out) if out is not None else DEFAULT_OUT
    base = f"{timestamp()}-{default_run_name(config)}"
    for i in range(1, 1000):
        name = base if i == 1 else f"{base}-{i}"
        if not (root / name).exists():
            return name
    raise RnnlabError(f"could not find a fresh run name under {root}; pass --name")


def check_job(
    config: RunConfig,
    *,
    out: Path | str | None = None,
    name: str | None = None,
    overwrite: bool = False,
    nproc: int = 1,
) -> None:
    """What `rnnlab train --nproc N` checks, and prepares, once before it starts the ranks: the
    device (N GPUs for N ranks on CUDA), the run name, the data (encoded into the cache, so the
    ranks only read it), one rank's memory, the compiled CPU kernels."""
    device = resolve_device(config.train.device)
    if device.type == "cuda" and nproc > 1:
        if device.index is not None:
            raise RnnlabError(
                f"--device {config.train.device} pins every rank to one GPU; each rank takes "
                "cuda:LOCAL_RANK: give --device cuda (or auto)"
            )
        if torch.cuda.device_count() < nproc:
            raise RnnlabError(
                f"--nproc {nproc} on CUDA needs {nproc} GPUs, one per process; this machine has "
                f"{torch.cuda.device_count()} (use --nproc {torch.cuda.device_count()})"
            )
    check_device(config)
    if not overwrite:
        check_name_free(out, name)
    splits = load_splits(config.data)
    check_model_memory(config, splits, device)  # --batch-size is one rank's batch here
    with torch.device("meta"):
        kind = build_model(dataclasses.replace(config.model, embeddings=None), splits).spec.kind
    kernels.prepare(kind, device)


def check_model_memory(
    config: RunConfig,
    splits: EncodedSplits,
    device: torch.device,
    world: distributed.World | None = None,
) -> None:
    """Refuse, before anything is allocated, a model that would not fit the memory limit (in a
    job: with this rank's share of the global batch)."""
    with torch.device("meta"):  # shapes only: pretrained vectors are not read here
        spec = build_model(dataclasses.replace(config.model, embeddings=None), splits).spec
    ranks = world.size if world is not None else 1
    estimate = estimate_memory(
        spec, batch_size=-(-config.train.batch_size // ranks), max_len=config.data.max_len
    )
    check_memory(estimate, device, config.train.memory_limit_gb)


def fit_and_save(
    run_dir: Path,
    config: RunConfig,
    splits: EncodedSplits,
    model: torch.nn.Module,
    checkpoint: Checkpoint | None,
    callbacks: Sequence[Callback],
    verbose: bool,
    stream: TextIO | None,
    world: distributed.World | None = None,
) -> RunResult:
    main = world is None or world.main  # in a job, rank 0 alone logs and writes
    loggers: list[Callback] = (
        [ConsoleLogger(stream, progress=config.train.progress)] if verbose and main else []
    )
    if config.train.tensorboard and main:  # event files in <run>/tensorboard/
        loggers.append(
            tensorboard.TensorBoardLogger(
                run_dir / TENSORBOARD, every=config.train.tensorboard_every
            )
        )
    resume_hint = (
        f"; {run_dir} keeps its last finished epoch: continue with `rnnlab train --resume "
        f"{run_dir}`"
    )
    # a second Ctrl-C / SIGTERM waits for the run's last files; in a job the ranks stop together
    stop_signals = interrupt_once() if world is None else distributed.agreed_stop(world)
    with stop_signals:
        try:
            with distributed.peer_errors(world, resume_hint):  # a rank died: one line
                fitted, test = fit_and_test(
                    model, splits, config, callbacks=[*loggers, *callbacks],
                    run_dir=run_dir if main else None, resume=checkpoint, world=world,
                )  # fmt: skip
        except Exception as exc:  # the folder says so; a resume or --overwrite clears it
            disk = disk_error(exc, resume_hint[2:])  # a full disk: one line, with the resume
            message = str(exc) if isinstance(exc, RnnlabError) else f"{type(exc).__name__}: {exc}"
            if main:
                mark_failed(run_dir, run_dir.name, str(disk) if disk else message)
            if disk is not None:
                raise disk from exc
            raise
        summary = build_summary(
            config=config, splits=splits, model=model, fit=fitted, test=test, name=run_dir.name
        )
        summary["world_size"] = world.size if world is not None else 1
        if world is not None:  # config.yaml's batch_size is the global batch
            summary["batch_size_per_rank"] = -(-config.train.batch_size // world.size)
        if main:
            try:
                finish_run(run_dir, model, summary, test)
            except OSError as exc:  # unfinished (no summary.json): a resume tests and saves it
                raise disk_error(exc, resume_hint[2:]) or exc from exc
    return RunResult(run_dir, config, model, fitted, test, summary)


def seeded_model(
    config: RunConfig, splits: EncodedSplits, *, name: str | None = None, **overrides: Any
) -> TextClassifier:
    """`config.model` (preset `name` and `overrides` on top, as `build_model` takes them), its
    weights drawn from `config.train.seed`, as every job draws them."""
    cfg = config.train
    with runtime(seed=cfg.seed, deterministic=cfg.deterministic, threads=cfg.threads):
        return build_model(config.model, splits, name=name, **overrides)


def fit_and_test(
    model: torch.nn.Module,
    splits: EncodedSplits,
    config: RunConfig,
    *,
    length_edges: Sequence[int] | None = None,
    callbacks: Sequence[Callback] = (),
    run_dir: Path | None = None,
    resume: Checkpoint | None = None,
    world: distributed.World | None = None,
) -> tuple[FitResult, EvalResult | None]:
    """`fit` with `config.train`, then the test-split metrics (`length_edges`: the buckets of
    accuracy by length; None: those of `config.data.max_len`). The test is None for an empty
    test split or a Ctrl-C during it (then the fit reads interrupted)."""
    fitted = fit(
        model, splits, config.train, callbacks=callbacks, run_dir=run_dir, resume=resume,
        world=world,
    )  # fmt: skip
    edges = metrics.length_edges(config.data.max_len) if length_edges is None else length_edges
    return fitted, _test_metrics(model, splits, edges, fitted, world)


@dataclass
class Trained:
    """A model trained and tested in memory (`train_and_test`)."""

    model: torch.nn.Module
    fit: FitResult
    test: EvalResult | None


def train_and_test(
    config: RunConfig,
    splits: EncodedSplits,
    *,
    name: str | None = None,
    length_edges: Sequence[int] | None = None,
    before_fit: Callable[[torch.nn.Module], None] | None = None,
    **overrides: Any,
) -> Trained:
    """A job without a folder, for the sweeps and the synthetic tasks: `seeded_model`, then
    `before_fit(model)` if given (a measurement at initialisation), then `fit_and_test`.
    Nothing is written to disk."""
    model = seeded_model(config, splits, name=name, **overrides)
    if before_fit is not None:
        before_fit(model)
    fitted, test = fit_and_test(model, splits, config, length_edges=length_edges)
    return Trained(model, fitted, test)


def _test_metrics(
    model: torch.nn.Module,
    splits: EncodedSplits,
    length_edges: Sequence[int],
    fitted: FitResult,
    world: distributed.World | None = None,
) -> EvalResult | None:
    """Test-split metrics (in a job: split over the ranks); skipped for an empty split or a
    Ctrl-C (then the run reads interrupted, and a resume tests it)."""
    if len(splits.test) == 0:
        return None
    try:
        return evaluate(model, splits.test, amp=fitted.amp, length_edges=length_edges, world=world)
    except KeyboardInterrupt:
        fitted.status = "interrupted"
        return None
