"""`rnnlab study`: the whole RNN vs LSTM vs GRU study in one call, resumable, ending in a report.

Each step (rnnlab.study.steps) calls the library, never a subprocess, and is finished when its
marker file exists. An interrupted study resumes: finished steps are skipped, a half-written
step is redone. A step that fails is recorded and the others still run.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rnnlab.data import load_splits
from rnnlab.diagnostics import REGISTRY
from rnnlab.errors import RnnlabError, disk_error
from rnnlab.io import check_writable, read_json, write_json_atomic
from rnnlab.layout import COMPARE_DIR, DATASET, REPORT, STUDY
from rnnlab.report import render
from rnnlab.report.findings import findings_of
from rnnlab.study.settings import StudySettings
from rnnlab.study.steps import Context, Step, build_steps, uncertainty
from rnnlab.training.callbacks import Callback, StepStats, TrainState
from rnnlab.training.device import num_threads
from rnnlab.training.signals import sigterm_as_interrupt


def managed() -> tuple[str, ...]:
    """What --fresh may remove besides the steps' own folders: the dataset record, the
    comparison and every registered diagnostic's folder."""
    return (DATASET, COMPARE_DIR, *(entry.name for entry in REGISTRY))


"""What a study writes besides study.json and the report (removed by --fresh)."""


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
    path = out / STUDY
    if out.exists() and not out.is_dir():
        raise RnnlabError(f"{out} is a file; give a folder for the study (--out DIR)")
    new = {"settings": settings.to_dict(), "steps": {}}
    if fresh and path.is_file():
        names = {
            *managed(),
            REPORT,
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
        if not isinstance(state, dict) or state.get("settings") != settings.to_dict():
            raise RnnlabError(
                f"{out} holds a study with other settings; resume it with the same flags, "
                "start over with --fresh, or pick another --out"
            )
        return state
    if out.is_dir() and any(out.iterdir()):
        raise RnnlabError(
            f"{out} exists and is not a study folder; pick another --out (or empty it)"
        )
    return new


def _save_state(out: Path, state: dict[str, Any]) -> None:
    state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json_atomic(out / STUDY, state)


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
    exists and which steps failed); Ctrl-C stops after recording the step as interrupted. A
    full disk, a read-only file system or a missing permission stops the study at once with
    one DiskError (the later steps would fail alike); the finished steps are kept.
    """
    out = Path(out)
    if not out.is_file():  # (a file is refused below, in words of its own)
        check_writable(out, flag="--out")  # before the data is loaded or anything trained
    console = console or Console(stderr=True)
    if steps is None:  # the data must load before anything is written (an unknown dataset)
        load_splits(settings.run_config().data)
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
        f"{len(steps) - len(todo)} already done; expected duration {settings.expected}"
    )
    _save_state(out, state)
    start = time.perf_counter()
    with _progress(console) as progress, num_threads(settings.threads), sigterm_as_interrupt():
        task = progress.add_task("study", total=len(steps) + 1, completed=len(steps) - len(todo))
        for step in todo:
            _run_step(step, out, settings, state, progress, task)
            progress.advance(task)
        progress.update(task, description="writing the report")
        render([out], out / REPORT)
        progress.advance(task)
    seconds = time.perf_counter() - start
    state["seconds_last_session"] = round(seconds, 1)
    state["findings"] = [f.to_dict() for f in findings_of([out])]  # what the report shows
    _save_state(out, state)
    return StudyResult(out, out / REPORT, states, seconds)


def _run_step(
    step: Step, out: Path, settings: StudySettings, state: dict[str, Any], progress: Any, task: Any
) -> None:
    entry = state["steps"].setdefault(step.name, {})
    if step.folder and not step.resumes and (out / step.folder).exists():
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
        disk = disk_error(exc, "then run the same command: the study continues where it stopped")
        message = str(exc) if isinstance(exc, RnnlabError) else f"{type(exc).__name__}: {exc}"
        entry.update(
            state="failed",
            error=str(disk) if disk else message,
            seconds=round(time.perf_counter() - t0, 1),
        )
        if disk is not None:  # every later step would fail alike: stop here, in one line
            with contextlib.suppress(OSError):  # the disk may not take study.json either
                _save_state(out, state)
            raise disk from exc
        _save_state(out, state)
        if not isinstance(exc, RnnlabError):
            progress.console.print_exception(max_frames=8)
        progress.console.print(f"[red]step {step.name} failed:[/red] {message}")
        return
    entry.update(state="done", seconds=round(time.perf_counter() - t0, 1))
    entry.update(uncertainty(out / step.marker))  # its seeds and 95% intervals
    _save_state(out, state)
    progress.console.print(f"done: {step.title} ({entry['seconds']:.0f} s)")


def _progress(console: Any) -> Progress:
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
