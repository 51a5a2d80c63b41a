"""`rnnlab study`: the whole RNN vs LSTM vs GRU study in one call, resumable, ending in a report.

Steps (each calls the library, never a subprocess; each is finished when its result file exists):

```
<out>/dataset.json                     dataset summary + example texts     (data.summary)
<out>/compare/<model>/summary.json     one training run per model          (api.train)
<out>/compare/compare.json             the comparison table + curves       (api.compare_row)
<out>/diagnostics/<kind>/result.json   gradient flow, embedding gradient, hidden states,
                                       parameters, timing, padding         (rnnlab.diagnostics)
<out>/length_sweep/result.json         accuracy vs max_len                 (diagnostics.length_sweep)
<out>/capacity/result.json             accuracy vs hidden size             (diagnostics.capacity)
<out>/synthetic/result.json            remember-first at several lengths   (diagnostics.synthetic_sweep)
<out>/report.html                      the report                          (report.render)
<out>/study.json                       settings and the state of every step
```
An interrupted study resumes: finished steps are skipped, a half-written step is redone.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.errors import RnnlabError
from rnnlab.io import read_json, write_json_atomic
from rnnlab.training.callbacks import Callback, StepStats, TrainState

STUDY_FILE = "study.json"
REPORT_FILE = "report.html"
MANAGED = ("dataset.json", "compare", "diagnostics", "length_sweep", "capacity", "synthetic")


# ----- settings ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudySettings:
    """Every knob of the study; `study_settings()` gives the quick and the full presets."""

    dataset: str = "imdb"
    quick: bool = False
    seed: int = 0
    device: str = "auto"
    models: tuple[str, ...] = ("rnn", "lstm", "gru")
    # training (compare)
    limit: int | None = None
    max_len: int = 400
    truncate: str = "tail"
    """Keep the end of long reviews: the verdict usually sits there, and the last-step models
    read it last (the notebooks kept the head)."""
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    embed_dim: int | None = None
    hidden_dim: int | None = None
    # diagnostics on the trained models
    grad_seq_len: int = 200
    grad_batch: int = 32
    embed_lengths: tuple[int, ...] = (50, 100, 200, 400)
    embed_batch: int = 32
    states_per_class: int = 5
    states_min_len: int = 150
    states_max_steps: int = 400
    timing_lengths: tuple[int, ...] = (100, 200, 400, 800)
    timing_modes: tuple[str, ...] = ("padded", "packed", "scratch")
    timing_batch: int = 64
    timing_repeats: int = 5
    # sweeps
    sweep_models: tuple[str, ...] = ("rnn", "lstm", "gru")
    sweep_lengths: tuple[int, ...] = (50, 100, 200, 400)
    sweep_limit: int | None = None
    sweep_epochs: int = 3
    capacity_models: tuple[str, ...] = ("lstm",)
    capacity_sizes: tuple[int, ...] = (16, 32, 64, 128, 256)
    capacity_limit: int | None = None
    capacity_epochs: int = 3
    # synthetic remember-first task
    synthetic_task: str = "remember-first"
    synthetic_lengths: tuple[int, ...] = (10, 50, 100, 200)
    synthetic_examples: int = 10_000
    synthetic_epochs: int = 10
    synthetic_hidden: int = 32
    threads: int | None = None
    """CPU threads for PyTorch while the study runs (None: PyTorch's default). On a small,
    shared CPU one thread is steadier: measured here, a 2-thread RNN epoch ranged from 1.9 s
    to 177 s depending on other load, a 1-thread one from 1.8 s to 2.6 s."""
    expected: str = ""
    """The expected duration, said up front."""

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


QUICK = dict(
    quick=True,
    limit=None,  # all 19,922 training reviews: LSTM/GRU need them to pass 85%
    max_len=150,
    epochs=3,
    batch_size=64,
    lr=3e-3,
    grad_seq_len=100,
    grad_batch=16,
    embed_lengths=(25, 50, 100, 200),
    embed_batch=8,
    states_per_class=2,
    states_min_len=100,
    states_max_steps=200,
    timing_lengths=(25, 50, 100, 200),
    timing_modes=("padded", "packed"),
    timing_batch=32,
    timing_repeats=3,
    sweep_models=("rnn", "lstm"),
    sweep_lengths=(50, 100, 200),
    sweep_limit=1000,
    sweep_epochs=2,
    capacity_sizes=(16, 64, 128),
    capacity_limit=1000,
    capacity_epochs=2,
    synthetic_lengths=(10, 50, 100),
    synthetic_examples=3000,
    synthetic_epochs=5,
    synthetic_hidden=64,
    expected="about 7 minutes on 2 idle CPU cores (more when other jobs share them)",
)
FULL_EXPECTED = (
    "several hours on 2 CPU cores (3 models x 5 epochs on 20,000 IMDB reviews plus the "
    "sweeps); well under an hour with a GPU"
)


def study_settings(
    dataset: str = "imdb",
    *,
    quick: bool = False,
    device: str = "auto",
    seed: int = 0,
    **changes: Any,
) -> StudySettings:
    """The quick or the full preset for `dataset`; `changes` override single fields (tests)."""
    base: dict[str, Any] = dict(QUICK) if quick else {"expected": FULL_EXPECTED}
    base.update(dataset=dataset, device=device, seed=seed)
    base.update(changes)
    if base.get("threads") is not None and base["threads"] < 1:
        raise RnnlabError(f"threads must be at least 1 (got {base['threads']})")
    try:
        return StudySettings(**base)
    except TypeError as exc:
        raise RnnlabError(
            f"unknown study setting ({exc}); see rnnlab.report.study.StudySettings"
        ) from None


def default_out(dataset: str, *, quick: bool) -> Path:
    from rnnlab.runs import DEFAULT_OUT

    slug = Path(dataset).stem if "/" in dataset or "." in dataset else dataset
    return DEFAULT_OUT / f"study-{slug.replace(':', '-')}{'-quick' if quick else ''}"


def run_config(s: StudySettings, *, limit: int | None = None, epochs: int | None = None) -> Any:
    from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    return RunConfig(
        data=DataConfig(
            dataset=s.dataset,
            max_len=s.max_len,
            truncate=s.truncate,  # type: ignore[arg-type]
            limit=limit or s.limit,
            seed=s.seed,
        ),
        model=ModelConfig(embed_dim=s.embed_dim, hidden_dim=s.hidden_dim),
        train=TrainConfig(
            epochs=epochs or s.epochs,
            batch_size=s.batch_size,
            lr=s.lr,
            seed=s.seed,
            device=s.device,
            threads=s.threads,
            progress=False,
        ),
    )


# ----- steps -------------------------------------------------------------------------------------
@dataclass
class Context:
    out: Path
    settings: StudySettings
    log: Callable[[str], None]
    callbacks: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    marker: str
    """Path (under the study folder) of the file whose presence means the step is done."""
    run: Callable[[Context], None]
    folder: str | None = None
    """A folder that only this step writes: removed before the step is (re)run."""

    def done(self, out: Path) -> bool:
        path = out / self.marker
        if not path.is_file():
            return False
        if path.name == "summary.json":  # a training run: only a completed one counts
            try:
                return read_json(path).get("status") == "completed"
            except (OSError, ValueError, AttributeError):
                return False
        return True


def _write_dataset(ctx: Context) -> None:
    from rnnlab.data import load_splits
    from rnnlab.data.summary import summarize

    cfg = run_config(ctx.settings).data
    summary = summarize(cfg).to_dict()
    splits = load_splits(cfg)
    examples = []
    if splits.encoder is not None:
        for label in range(len(splits.label_names)):
            rows = [i for i in range(len(splits.test)) if int(splits.test.labels[i]) == label]
            if rows:
                text = splits.encoder.decode(splits.test.token_ids(rows[0]))
                examples.append(
                    {
                        "text": text,
                        "label": splits.label_names[label],
                        "split": "test",
                        "row": rows[0],
                    }
                )
    summary["examples"] = examples[:2]
    summary["examples_note"] = "decoded from token ids, as the model reads them"
    write_json_atomic(ctx.out / "dataset.json", summary)


def _train(model: str) -> Callable[[Context], None]:
    def run(ctx: Context) -> None:
        from rnnlab import api

        config = run_config(ctx.settings)
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, name=model))
        result = api.train(
            config, out=ctx.out / "compare", name=model, callbacks=ctx.callbacks, verbose=False
        )
        if result.status == "interrupted":
            raise KeyboardInterrupt

    return run


def _write_compare(ctx: Context) -> None:
    """compare.json and compare_curves.png, as api.compare writes them, from the saved runs."""
    from rnnlab.report.curves import plot_compare_curves
    from rnnlab.runs import read_metrics, read_summary

    folder = ctx.out / "compare"
    rows, histories = [], {}
    for model in ctx.settings.models:
        summary = read_summary(folder / model)
        test = summary.get("test") or {}
        rows.append(
            {
                "model": model,
                "status": summary.get("status"),
                "parameters": ((summary.get("model") or {}).get("parameters") or {}).get("total"),
                "test_accuracy": test.get("accuracy"),
                "test_macro_f1": test.get("macro_f1"),
                "test_mse": test.get("mse"),
                "best_epoch": summary.get("best_epoch"),
                "epochs_run": summary.get("epochs_run"),
                "seconds_per_epoch": summary.get("seconds_per_epoch"),
                "train_tokens_per_s": summary.get("train_tokens_per_s"),
                "run_dir": model,
            }
        )
        histories[model] = read_metrics(folder / model)
    config = run_config(ctx.settings)
    if any(histories.values()):
        plot_compare_curves(histories, folder / "compare_curves.png", title="compare")
    write_json_atomic(
        folder / "compare.json",
        {
            "dataset": ctx.settings.dataset,
            "models": list(ctx.settings.models),
            "rows": rows,
            "config": config.to_dict(),
            "histories": histories,
        },
    )


def _entries(ctx: Context) -> list[Any]:
    from rnnlab.diagnostics.common import run_models

    return run_models([ctx.out / "compare" / m for m in ctx.settings.models])


def _diagnostic(kind: str) -> Callable[[Context], None]:
    def run(ctx: Context) -> None:
        s = ctx.settings
        folder = ctx.out / "diagnostics" / kind
        device = _device(s.device)
        if kind == "gradient_flow":
            from rnnlab.diagnostics.gradient_flow import gradient_flow

            result: Any = gradient_flow(
                _entries(ctx), seq_len=s.grad_seq_len, batch_size=s.grad_batch, seed=s.seed,
                device=device, log=ctx.log,
            )  # fmt: skip
        elif kind == "embedding_grad":
            from rnnlab.diagnostics.embedding_grad import embedding_grad

            result = embedding_grad(
                _entries(ctx), lengths=s.embed_lengths, batch_size=s.embed_batch, seed=s.seed,
                device=device, log=ctx.log,
            )  # fmt: skip
        elif kind == "hidden_states":
            from rnnlab.diagnostics.hidden_states import hidden_states

            result = hidden_states(
                _entries(ctx), per_class=s.states_per_class, min_len=s.states_min_len,
                max_steps=s.states_max_steps, seed=s.seed, device=device, log=ctx.log,
            )  # fmt: skip
        elif kind == "parameters":
            from rnnlab.diagnostics.parameters import parameter_counts

            result = parameter_counts(_entries(ctx))
        elif kind == "timing":
            from rnnlab.diagnostics.timing import bench_timing

            models = [(e.label, e.model, e.source) for e in _entries(ctx)]
            result = bench_timing(
                models, lengths=s.timing_lengths, modes=s.timing_modes, batch_size=s.timing_batch,
                repeats=s.timing_repeats, seed=s.seed, device=device, log=ctx.log,
            )  # fmt: skip
        elif kind == "padding":
            from rnnlab.data import load_splits
            from rnnlab.diagnostics.padding import padding_waste

            cfg = run_config(s)
            splits = load_splits(cfg.data)
            result = padding_waste(
                splits.train, batch_size=cfg.train.batch_size, max_len=cfg.data.max_len,
                seed=s.seed, dataset=str(splits.info.get("dataset", s.dataset)),
            )  # fmt: skip
        else:  # pragma: no cover - the step list only names the kinds above
            raise RnnlabError(f"unknown diagnostic {kind!r}")
        result.save(folder)

    return run


def _device(name: str) -> str:
    from rnnlab.training.device import resolve_device

    return str(resolve_device(name))


def _length_sweep(ctx: Context) -> None:
    from rnnlab.diagnostics.length_sweep import length_sweep

    s = ctx.settings
    config = run_config(s, limit=s.sweep_limit, epochs=s.sweep_epochs)
    result = length_sweep(
        config, models=s.sweep_models, lengths=s.sweep_lengths, seeds=(s.seed,), log=ctx.log
    )
    result.save(ctx.out / "length_sweep")


def _capacity(ctx: Context) -> None:
    from rnnlab.diagnostics.capacity import hidden_sweep

    s = ctx.settings
    config = run_config(s, limit=s.capacity_limit, epochs=s.capacity_epochs)
    result = hidden_sweep(
        config, models=s.capacity_models, sizes=s.capacity_sizes, seeds=(s.seed,), log=ctx.log
    )
    result.save(ctx.out / "capacity")


def _synthetic(ctx: Context) -> None:
    from rnnlab.diagnostics.synthetic_sweep import run_synthetic_sweep

    s = ctx.settings

    def progress(p: Any) -> None:
        if p.cell is None:
            ctx.log(f"{p.model} at T={p.length} ({p.done + 1}/{p.total})")

    result = run_synthetic_sweep(
        s.synthetic_task,
        s.synthetic_lengths,
        s.models,
        seeds=1,
        epochs=s.synthetic_epochs,
        num_examples=s.synthetic_examples,
        hidden_dim=s.synthetic_hidden,
        device=s.device,
        seed=s.seed,
        progress=progress,
        **({"threads": s.threads} if s.threads is not None else {}),
    )
    if result.status == "interrupted":
        raise KeyboardInterrupt
    result.save(ctx.out / "synthetic")


def _report(ctx: Context) -> None:
    from rnnlab.report.html import render

    render([ctx.out], ctx.out / REPORT_FILE)


DIAGNOSTICS = (
    "parameters",
    "gradient_flow",
    "embedding_grad",
    "hidden_states",
    "timing",
    "padding",
)


def build_steps(settings: StudySettings) -> list[Step]:
    steps = [Step("dataset", "dataset summary", "dataset.json", _write_dataset)]
    for model in settings.models:
        steps.append(
            Step(
                f"train-{model}",
                f"train {model}",
                f"compare/{model}/summary.json",
                _train(model),
                folder=f"compare/{model}",
            )
        )
    steps.append(Step("compare", "comparison table", "compare/compare.json", _write_compare))
    for kind in DIAGNOSTICS:
        steps.append(
            Step(
                kind,
                kind.replace("_", " "),
                f"diagnostics/{kind}/result.json",
                _diagnostic(kind),
                folder=f"diagnostics/{kind}",
            )
        )
    steps += [
        Step("length_sweep", "sequence-length sweep", "length_sweep/result.json", _length_sweep,
             folder="length_sweep"),
        Step("capacity", "hidden-size sweep", "capacity/result.json", _capacity,
             folder="capacity"),
        Step("synthetic", f"synthetic {settings.synthetic_task}", "synthetic/result.json",
             _synthetic, folder="synthetic"),
    ]  # fmt: skip
    return steps


# ----- the state file ----------------------------------------------------------------------------
@dataclass
class StudyResult:
    out: Path
    report: Path
    states: dict[str, dict[str, Any]]
    seconds: float

    @property
    def failed(self) -> list[str]:
        return [name for name, s in self.states.items() if s.get("state") == "failed"]


def _load_state(
    out: Path, settings: StudySettings, fresh: bool, steps: Sequence[Step]
) -> dict[str, Any]:
    path = out / STUDY_FILE
    if out.exists() and not out.is_dir():
        raise RnnlabError(f"{out} is a file; give a folder for the study (--out DIR)")
    new = {"settings": settings.to_dict(), "steps": {}}
    if fresh and path.is_file():
        names = {
            *MANAGED,
            REPORT_FILE,
            *(s.folder for s in steps if s.folder),
            *(s.marker for s in steps),
        }
        for name in sorted(names):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        path.unlink()
        return new
    if path.is_file():
        try:
            state = read_json(path)
        except (OSError, ValueError):
            raise RnnlabError(f"{path} is damaged; start over with --fresh") from None
        if _comparable(state.get("settings")) != _comparable(settings.to_dict()):
            raise RnnlabError(
                f"{out} holds a study with other settings; resume it with the same flags, "
                "start over with --fresh, or pick another --out"
            )
        return dict(state)
    if out.is_dir() and any(out.iterdir()):
        raise RnnlabError(
            f"{out} exists and is not a study folder; pick another --out (or empty it)"
        )
    return new


def _comparable(settings: Any) -> Any:
    """Settings that change results (the stated duration does not)."""
    return (
        {k: v for k, v in settings.items() if k != "expected"}
        if isinstance(settings, dict)
        else settings
    )


def _save_state(out: Path, state: dict[str, Any]) -> None:
    state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json_atomic(out / STUDY_FILE, state)


# ----- running -----------------------------------------------------------------------------------
def run_study(
    settings: StudySettings,
    out: Path | str,
    *,
    fresh: bool = False,
    steps: Sequence[Step] | None = None,
    console: Any = None,
) -> StudyResult:
    """Run every unfinished step, then write <out>/report.html; returns the step states.

    A step that raises is recorded as failed and the study goes on (the report shows what
    exists and which steps failed); Ctrl-C stops after recording the step as interrupted.
    """
    from rich.console import Console

    out = Path(out)
    console = console or Console(stderr=True)
    steps = list(steps) if steps is not None else build_steps(settings)
    state = _load_state(out, settings, fresh, steps)
    out.mkdir(parents=True, exist_ok=True)
    states: dict[str, dict[str, Any]] = state.setdefault("steps", {})
    for step in steps:
        if step.done(out):
            states.setdefault(step.name, {})["state"] = "done"
    todo = [s for s in steps if not s.done(out)]
    mode = "quick" if settings.quick else "full"
    console.print(
        f"study of {settings.dataset} ({mode} settings) in {out}: {len(steps)} steps, "
        f"{len(steps) - len(todo)} already done; expected duration {settings.expected or 'unknown'}"
    )
    _save_state(out, state)
    start = time.perf_counter()
    with _progress(console) as progress, _threads(settings.threads):
        task = progress.add_task("study", total=len(steps) + 1, completed=len(steps) - len(todo))
        for step in todo:
            _run_step(step, out, settings, state, progress, task)
            progress.advance(task)
        progress.update(task, description="writing the report")
        _report(Context(out, settings, lambda _: None))
        progress.advance(task)
    seconds = time.perf_counter() - start
    state["seconds_last_session"] = round(seconds, 1)
    _save_state(out, state)
    return StudyResult(out, out / REPORT_FILE, states, seconds)


def _run_step(
    step: Step,
    out: Path,
    settings: StudySettings,
    state: dict[str, Any],
    progress: Any,
    task: Any,
) -> None:
    entry = state["steps"].setdefault(step.name, {})
    if step.folder and (out / step.folder).exists():
        shutil.rmtree(out / step.folder)  # a half-written step is redone from scratch

    def log(message: str) -> None:
        progress.update(task, description=f"{step.title}: {message.strip()}")

    progress.update(task, description=step.title)
    entry.update(state="running", started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    entry.pop("error", None)
    _save_state(out, state)
    t0 = time.perf_counter()
    try:
        step.run(Context(out, settings, log, [_EpochProgress(log)]))
    except KeyboardInterrupt:
        entry.update(state="interrupted", seconds=round(time.perf_counter() - t0, 1))
        _save_state(out, state)
        raise
    except Exception as exc:  # recorded; the other steps and the report still run
        message = str(exc) if isinstance(exc, RnnlabError) else f"{type(exc).__name__}: {exc}"
        entry.update(state="failed", error=message, seconds=round(time.perf_counter() - t0, 1))
        _save_state(out, state)
        if not isinstance(exc, RnnlabError):
            progress.console.print_exception(max_frames=8)
        progress.console.print(f"[red]step {step.name} failed:[/red] {message}")
        return
    entry.update(state="done", seconds=round(time.perf_counter() - t0, 1))
    _save_state(out, state)
    progress.console.print(f"done: {step.title} ({entry['seconds']:.0f} s)")


@contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    """torch.set_num_threads(threads) for the duration (diagnostics included), then back."""
    import torch

    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _progress(console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]study[/bold]"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=False,
    )


class _EpochProgress(Callback):
    """Training callback: epoch and step counts into the progress line."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log

    def on_batch_end(self, state: TrainState, stats: StepStats) -> None:
        if state.epoch_step % 10 == 0 or state.epoch_step == state.steps_per_epoch:
            self.log(
                f"epoch {state.epoch}/{state.epochs}, "
                f"step {state.epoch_step}/{state.steps_per_epoch}"
            )
