"""Plain functions for notebooks and scripts; the CLI calls exactly these.

result = rnnlab.api.train(RunConfig(...), out="runs", name="lstm-imdb")
table = rnnlab.api.compare(config, ["rnn", "lstm", "gru"])
metrics = rnnlab.api.evaluate_run("runs/lstm-imdb", split="test")
rnnlab.api.predict("runs/lstm-imdb", ["a wonderful film", "dull and far too long"])
why = rnnlab.api.explain("runs/lstm-imdb", "a wonderful film")   # token attributions
flow = rnnlab.api.diagnose("gradient-flow", models=["rnn", "lstm"], seq_len=100)
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from rnnlab import runs
from rnnlab.config import RunConfig
from rnnlab.data import load_splits, resolve_tokenizer
from rnnlab.data.encoded import EncodedSplit, EncodedSplits
from rnnlab.diagnostics import Inputs, Result, registry, suite
from rnnlab.diagnostics.explain import Explanation, explain_texts
from rnnlab.errors import RnnlabError, disk_error
from rnnlab.models import build_model, get_preset, kernels
from rnnlab.models.memory import check_memory, estimate_memory
from rnnlab.runs import LoadedRun, check_out_dir, load_run
from rnnlab.tables import Table, html_block
from rnnlab.training import distributed, metrics, tensorboard
from rnnlab.training.callbacks import Callback, ConsoleLogger
from rnnlab.training.checkpoint import Checkpoint
from rnnlab.training.device import flush_denormal, flush_wanted, resolve_device, runtime
from rnnlab.training.signals import interrupt_once
from rnnlab.training.trainer import EvalResult, FitResult, evaluate, fit, predict_logits

__all__ = [
    "CompareResult",
    "Explanation",
    "LoadedRun",
    "Prediction",
    "RunResult",
    "compare",
    "diagnose",
    "evaluate_run",
    "explain",
    "load_run",
    "predict",
    "resume",
    "train",
]


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
        return html_block(f"run {self.run_dir}", runs.run_tables(self.summary, self.history))


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
        cfg = config.train
        device = resolve_device(cfg.device)  # fail before loading data or making a folder
        distributed.check_device(cfg.device, world)
        if cfg.tensorboard:
            tensorboard.check_available()

        def claim_name() -> None:
            if overwrite and name is not None:
                runs.clear_run(out, name)
            runs.check_name_free(out, name)

        distributed.on_main(world, claim_name)  # rank 0 checks; an error stops every rank
        splits = splits if splits is not None else load_splits(config.data)
        check_model_memory(config, splits, device, world)
        with (
            runtime(seed=cfg.seed, deterministic=cfg.deterministic, threads=cfg.threads),
            contextlib.ExitStack() as held,
        ):
            model = build_model(config.model, splits)
            kernels.prepare(model.spec.kind, device)  # build or fail, no folder yet

            def open_run() -> Path:
                run_dir = runs.new_run_dir(out, name, default=runs.default_run_name(config))
                held.enter_context(runs.lock_run(run_dir))
                runs.start_run(run_dir, config, splits, model)
                return run_dir

            run_dir = distributed.on_main(world, open_run)  # the folder is rank 0's alone
            return _fit_and_save(
                run_dir, config, splits, model, None, callbacks, verbose, stream, world
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
            folder = runs.check_resumable(run_dir)
            config = RunConfig.load_yaml(folder / runs.CONFIG)
            checkpoint_file = folder / runs.CHECKPOINT
            checkpoint = Checkpoint.load(checkpoint_file) if checkpoint_file.is_file() else None
            return folder, config, checkpoint

        folder, config, checkpoint = distributed.on_main(world, read_folder)
        cfg = config.train
        device = resolve_device(cfg.device)
        distributed.check_device(cfg.device, world)
        if cfg.tensorboard:
            tensorboard.check_available()
        splits = load_splits(config.data)
        distributed.on_main(world, lambda: runs.check_same_data(folder, splits))
        check_model_memory(config, splits, device, world)
        with (
            runtime(seed=cfg.seed, deterministic=cfg.deterministic, threads=cfg.threads),
            contextlib.ExitStack() as held,
        ):
            model = build_model(config.model, splits)
            kernels.prepare(model.spec.kind, device)

            def reopen() -> None:
                held.enter_context(runs.lock_run(folder))
                runs.reopen_run(folder)
                runs.start_run(folder, config, splits, model)

            distributed.on_main(world, reopen)
            return _fit_and_save(
                folder, config, splits, model, checkpoint, callbacks, verbose, stream, world
            )


def free_run_name(config: RunConfig, out: Path | str | None = None) -> str:
    """A fresh `<timestamp>-<model>-<dataset>` name under `out`, as `train` picks one."""
    root = Path(out) if out is not None else runs.DEFAULT_OUT
    base = f"{runs.timestamp()}-{runs.default_run_name(config)}"
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
    if config.train.tensorboard:
        tensorboard.check_available()
    if not overwrite:
        runs.check_name_free(out, name)
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


def _fit_and_save(
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
                run_dir / tensorboard.FOLDER, every=config.train.tensorboard_every
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
                fitted = fit(
                    model, splits, config.train, callbacks=[*loggers, *callbacks],
                    run_dir=run_dir if main else None, resume=checkpoint, world=world,
                )  # fmt: skip
                test = _test_metrics(model, splits, config, fitted, world)
        except Exception as exc:  # the folder says so; a resume or --overwrite clears it
            disk = disk_error(exc, resume_hint[2:])  # a full disk: one line, with the resume
            message = str(exc) if isinstance(exc, RnnlabError) else f"{type(exc).__name__}: {exc}"
            if main:
                runs.mark_failed(run_dir, run_dir.name, str(disk) if disk else message)
            if disk is not None:
                raise disk from exc
            raise
        summary = runs.build_summary(
            config=config, splits=splits, model=model, fit=fitted, test=test, name=run_dir.name
        )
        summary["world_size"] = world.size if world is not None else 1
        if world is not None:  # config.yaml's batch_size is the global batch
            summary["batch_size_per_rank"] = -(-config.train.batch_size // world.size)
        if main:
            try:
                runs.finish_run(run_dir, model, summary, test)
            except OSError as exc:  # unfinished (no summary.json): a resume tests and saves it
                raise disk_error(exc, resume_hint[2:]) or exc from exc
    return RunResult(run_dir, config, model, fitted, test, summary)


def _test_metrics(
    model: torch.nn.Module,
    splits: EncodedSplits,
    config: RunConfig,
    fitted: FitResult,
    world: distributed.World | None = None,
) -> EvalResult | None:
    """Test-split metrics (in a job: split over the ranks); skipped for an empty split or a
    Ctrl-C (then the run reads interrupted, and a resume tests it)."""
    if len(splits.test) == 0:
        return None
    try:
        return evaluate(
            model,
            splits.test,
            amp=fitted.amp,
            length_edges=metrics.length_edges(config.data.max_len),
            world=world,
        )
    except KeyboardInterrupt:
        fitted.status = "interrupted"
        return None


# ----- compare ---------------------------------------------------------------------------------
@dataclass
class CompareResult:
    """Several models trained on the same data with the same seed and settings."""

    compare_dir: Path
    runs: dict[str, RunResult] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    """One table row per model (compare.json's `rows`)."""
    paired: list[dict[str, Any]] = field(default_factory=list)
    """McNemar's test for each pair of models on the same test texts (compare.json's `paired`),
    per seed."""
    by_model: list[dict[str, Any]] = field(default_factory=list)
    """With several seeds: one row per model, mean ± std over the seeds and each seed's value."""
    over_seeds: list[dict[str, Any]] = field(default_factory=list)
    """With several seeds: McNemar's test for each pair of models over all its seeds
    (compare.json's `over_seeds`), which decides the pair under the seed rule."""

    def table(self) -> Table:
        """The comparison table (over the seeds when there are several), with the paired tests'
        readings under it."""
        return runs.compare_table(self.rows, self.paired, self.by_model, self.over_seeds)

    def _repr_html_(self) -> str:
        """A notebook shows the comparison table, with the paired tests' readings under it."""
        table = self.table()
        return html_block(f"comparison {self.compare_dir}", [table])


def compare(
    config: RunConfig,
    models: Sequence[str],
    *,
    out: Path | str | None = None,
    name: str | None = None,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    stream: TextIO | None = None,
    overwrite: bool = False,
    seeds: int = 1,
) -> CompareResult:
    """Train each model on the same data (loaded once), seed and settings.

    Writes `out/name/<model>/` per run plus compare.json and compare_curves.png. `seeds` > 1
    trains every model with seeds `config.train.seed`, +1, ... into `<model>-seed<S>/`, and the
    table gives mean ± std over them (`CompareResult.by_model`). Ctrl-C stops after saving the
    interrupted run; the table holds the runs done so far. Under torchrun every rank calls it,
    each model trains data-parallel (`train`), and rank 0 writes.
    """
    if seeds < 1:
        raise RnnlabError(f"--seeds must be at least 1 (got {seeds}); e.g. --seeds 3")
    seed_list = [config.train.seed + k for k in range(seeds)]
    models = [m.strip() for m in models if m.strip()]
    if not models:
        raise RnnlabError("no models to compare; pass e.g. --models rnn,lstm,gru")
    if len(set(models)) != len(models):
        raise RnnlabError(f"--models lists a model twice ({','.join(models)}); name each once")
    for model_name in models:
        get_preset(model_name)  # fail before any training on an unknown name
    resolve_device(config.train.device)
    if config.train.tensorboard:
        tensorboard.check_available()
    with distributed.session() as world:
        main = world is None or world.main

        def claim_name() -> None:
            if overwrite and name is not None:
                runs.clear_compare(out, name)
            runs.check_name_free(out, name)

        distributed.on_main(world, claim_name)
        splits = load_splits(config.data)
        compare_dir = distributed.on_main(
            world,
            lambda: runs.new_run_dir(out, name, default=f"compare-{runs.dataset_slug(config)}"),
        )
        result = CompareResult(compare_dir)
        jobs = [(m, s) for m in models for s in seed_list]
        for model_name, seed in jobs:
            run_name = runs.run_name(model_name, seed, seeds)
            model_cfg = dataclasses.replace(config.model, name=model_name, kind=None)
            train_cfg = dataclasses.replace(config.train, seed=seed)
            run_cfg = dataclasses.replace(config, model=model_cfg, train=train_cfg)
            if verbose and main:
                print(f"== {run_name}", file=stream or sys.stdout, flush=True)
            run = train(
                run_cfg, out=compare_dir, name=run_name, splits=splits, callbacks=callbacks,
                verbose=verbose, stream=stream,
            )  # fmt: skip
            result.runs[run_name] = run
            if run.status == "interrupted":
                break
        dataset = str(splits.info.get("dataset", config.data.dataset))
        written = distributed.on_main(
            world,
            lambda: runs.write_compare(
                compare_dir, models, list(result.runs), dataset, config, seed_list
            ),
        )
    result.rows, result.paired = written["rows"], written["paired"]
    result.by_model, result.over_seeds = written["by_model"], written["over_seeds"]
    return result


# ----- saved runs ------------------------------------------------------------------------------
def _loaded(run: Path | str | LoadedRun) -> LoadedRun:
    return run if isinstance(run, LoadedRun) else load_run(run)


def evaluate_run(
    run: Path | str | LoadedRun,
    *,
    split: str = "test",
    dataset: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    encoding: str = "utf-8",
    batch_size: int | None = None,
    device: str = "auto",
) -> EvalResult:
    """Metrics of a saved model on a split of its own data, or on another dataset or file.

    Without `dataset` (or with the run's own), the run's DataConfig rebuilds the split (from
    the cache). Any other dataset name or local file is read whole and encoded with the run's
    saved encoder; its label names must match the run's.
    """
    loaded = _loaded(run)
    data = loaded.config.data
    if dataset is None or runs.same_dataset(dataset, data.dataset):
        encoded = runs.own_splits(loaded).split(split)
    else:
        encoded = runs.foreign_split(loaded, dataset, text_column, label_column, encoding=encoding)
    target = resolve_device(device)
    loaded.model.to(target)
    edges = metrics.length_edges(data.max_len)
    return evaluate(loaded.model, encoded, batch_size=batch_size, device=target, length_edges=edges)


@dataclass
class Prediction:
    """The model's answer for one text."""

    text: str
    label: str | None
    """The most likely class name (None for regression)."""
    label_id: int | None
    probabilities: dict[str, float]
    """Class name -> probability ({} for regression)."""
    value: float | None = None
    """The predicted value for regression runs."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def predict(
    run: Path | str | LoadedRun, texts: str | Sequence[str], *, batch_size: int = 256
) -> list[Prediction]:
    """Label and class probabilities for each text (an empty text is an error)."""
    loaded = _loaded(run)
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise RnnlabError("no texts to predict; give a text or --file with one text per line")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            where = "the text" if len(texts) == 1 else f"text {i + 1}"
            raise RnnlabError(f"{where} is empty; give some words to classify")
    if loaded.encoder is None:
        raise RnnlabError(
            f"{loaded.run_dir} has no text encoder (synthetic inputs); it cannot read text"
        )
    split = EncodedSplit.from_sequences(
        loaded.encoder.encode_many(texts), np.zeros(len(texts), np.int64)
    )
    model = loaded.model
    logits = predict_logits(model, split, batch_size=batch_size)  # (N, C)
    with torch.no_grad():
        if loaded.task == "regression":
            values = model.predict(logits).numpy()  # type: ignore[operator]
            return [
                Prediction(t, None, None, {}, float(v)) for t, v in zip(texts, values, strict=True)
            ]
        probs = model.probabilities(logits).numpy()  # type: ignore[operator]  # (N, K)
    names = loaded.label_names
    out = []
    for text, row in zip(texts, probs, strict=True):
        best = int(row.argmax())
        out.append(
            Prediction(
                text, names[best], best, {n: float(p) for n, p in zip(names, row, strict=True)}
            )
        )
    return out


def explain(
    run: Path | str | LoadedRun,
    texts: str | Sequence[str],
    *,
    n_steps: int = 50,
    target: str | None = None,
    device: str = "cpu",
) -> list[Explanation]:
    """Prediction plus the attribution of every token toward the predicted class (or `target`):
    integrated gradients from an all-<pad> baseline (rnnlab.diagnostics.attribution)."""
    loaded = _loaded(run)
    if loaded.task == "regression":
        raise RnnlabError(
            f"{loaded.run_dir} is a regression run; explanations need a classification run"
        )
    predict(loaded, texts)  # the same checks of the texts and the encoder as predict
    with flush_denormal(flush_wanted(loaded.config.train.flush_denormal)):
        return explain_texts(
            loaded.model, loaded.encoder, loaded.label_names,
            [texts] if isinstance(texts, str) else list(texts),
            target=target, n_steps=n_steps, device=resolve_device(device),
        )  # fmt: skip


# ----- diagnostics -----------------------------------------------------------------------------
def diagnose(
    name: str,
    *,
    models: Sequence[str] | None = None,
    runs: Sequence[Path | str] | None = None,
    config: RunConfig | None = None,
    seed: int = 0,
    device: str = "auto",
    out: Path | str | None = None,
    **settings: Any,
) -> Result:
    """Run one registered diagnostic (rnnlab.diagnostics.registry) on fresh presets (`models`)
    or trained `runs`, with its full preset and `settings` changed; saved to `out` if given.

    `config` gives the data (default: bundled IMDB) and the sweeps' training settings.
    """
    entry = registry.get(name)
    try:
        chosen = entry.settings(**settings)
    except TypeError as exc:
        raise RnnlabError(f"unknown {entry.name} setting ({exc})") from None
    inputs = Inputs(
        config or RunConfig(), models=models, runs=runs, seed=seed, device=device,
        dataset_given=config is not None,
    )  # fmt: skip
    result = suite.run_one(entry, chosen, inputs)
    if out is not None:
        result.save(check_out_dir(out, entry.name))
    return result
