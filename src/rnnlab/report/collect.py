"""Read saved folders into plain dataclasses; the report never re-runs anything.

A folder given to the report may be a training run (summary.json), a compare folder
(compare.json), a diagnostic / sweep / synthetic result (result.json with a "kind"), a dataset
summary (dataset.json) or a study folder holding any of those; folders are searched
recursively. Training runs inside a result folder (e.g. the models a sweep trained) belong to
that result and are not listed as runs of their own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.config import read_yaml
from rnnlab.diagnostics import Diagnostic, Result, registry
from rnnlab.errors import RnnlabError
from rnnlab.io import MAX_JSON_BYTES, read_bounded, read_json
from rnnlab.layout import (
    COMPARE,
    COMPARE_CURVES,
    CONFIG,
    CURVES,
    DATASET,
    ENCODER,
    METRICS,
    RESULT,
    SPEC,
    STUDY,
    SUMMARY,
)
from rnnlab.runs.compare import MIN_LEFT_OUT, over_seeds_tests, run_name
from rnnlab.runs.folder import check_report_reads, check_summary

MARKERS = (SUMMARY, COMPARE, RESULT, DATASET, STUDY)
SKIP_DIRS = {ENCODER, "__pycache__", ".git", ".cache"}
MAX_DEPTH = 8


@dataclass
class TrainingRun:
    """One training run folder (summary.json written last, so it is finished or failed)."""

    path: Path
    name: str
    summary: dict[str, Any]
    history: list[dict[str, Any]]
    config: dict[str, Any]
    config_text: str
    spec: dict[str, Any]
    curves: Path | None
    owner: Path | None = None
    """The result folder (sweep, synthetic task) this run was trained for, if any."""

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "unknown"))

    @property
    def model_name(self) -> str:
        model = self.summary.get("model") or {}
        return str(model.get("name") or self.spec.get("name") or self.name)

    @property
    def kind(self) -> str:
        model = self.summary.get("model") or {}
        return str(model.get("kind") or self.spec.get("kind") or "")

    @property
    def dataset(self) -> str:
        data = self.summary.get("dataset") or {}
        return str(
            data.get("dataset") or (self.config.get("data") or {}).get("dataset") or "unknown"
        )

    @property
    def test(self) -> dict[str, Any]:
        return dict(self.summary.get("test") or {})

    @property
    def parameters(self) -> dict[str, Any]:
        return dict((self.summary.get("model") or {}).get("parameters") or {})

    @property
    def label(self) -> str:
        """The name shown in tables: the model name, or the folder name if they differ."""
        return self.model_name if self.model_name == self.name else f"{self.name}"


@dataclass
class CompareFolder:
    path: Path
    data: dict[str, Any]
    curves: Path | None

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r for r in self.data.get("rows") or [] if isinstance(r, dict)]

    @property
    def dataset(self) -> str:
        return str(self.data.get("dataset") or "unknown")


@dataclass
class ResultFolder:
    """A diagnostic, sweep or synthetic result: result.json and the PNG figures beside it."""

    path: Path
    kind: str
    data: dict[str, Any]
    figures: list[Path]
    entry: Diagnostic | None = None
    """The registered diagnostic that wrote it (None: a kind this version does not know)."""
    result: Result | None = None
    """The typed result (None for unknown kinds, whose figures are still shown)."""


@dataclass
class Collection:
    """Everything found under the folders given to the report."""

    roots: list[Path]
    runs: list[TrainingRun] = field(default_factory=list)
    compares: list[CompareFolder] = field(default_factory=list)
    results: list[ResultFolder] = field(default_factory=list)
    datasets: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    studies: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Folders seen but left out (unfinished runs), one line each, for the page."""

    @property
    def main_runs(self) -> list[TrainingRun]:
        """Finished training runs that are not part of a sweep or synthetic result."""
        return [r for r in self.runs if r.owner is None and r.status != "failed"]

    @property
    def model_runs(self) -> list[TrainingRun]:
        """One main run per model of each folder: with several seeds (`<model>-seed<S>`), the
        first seed's run stands for its model in per-model tables and figures."""
        seen: set[tuple[Path, str, str]] = set()
        out = []
        for run in self.main_runs:
            key = (run.path.parent.resolve(), run.model_name, run.dataset)
            if key not in seen:
                seen.add(key)
                out.append(run)
        return out

    @property
    def failed_runs(self) -> list[TrainingRun]:
        return [r for r in self.runs if r.status == "failed"]

    def runs_under(self, folder: Path) -> list[TrainingRun]:
        return [r for r in self.runs if r.owner == folder]

    def text_datasets(self) -> list[str]:
        """Distinct datasets of the main runs and compares (synthetic tasks excluded)."""
        names = [r.dataset for r in self.main_runs] + [c.dataset for c in self.compares]
        names += [str(d.get("dataset")) for _, d in self.datasets if d.get("dataset")]
        out: list[str] = []
        for name in names:
            if name != "unknown" and not name.startswith("synthetic") and name not in out:
                out.append(name)
        return out

    def rel(self, path: Path) -> str:
        """`path` relative to the folder given to the report that holds it (for captions)."""
        for root in self.roots:
            try:
                relative = path.resolve().relative_to(root.resolve())
            except ValueError:
                continue
            return str(Path(root.name) / relative)
        return str(path)

    @property
    def empty(self) -> bool:
        return not (self.runs or self.compares or self.results or self.datasets)


# ----- reading -----------------------------------------------------------------------------------
def read_json_file(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        raise RnnlabError(
            f"{path} is not valid JSON; run the step that wrote it again or remove the folder"
        ) from None


def read_json_object(path: Path) -> dict[str, Any]:
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise RnnlabError(f"{path} is not a JSON object; run the step that wrote it again")
    return data


def read_history(path: Path) -> list[dict[str, Any]]:
    file = path / METRICS
    if not file.is_file():
        return []
    try:
        text = read_bounded(file, MAX_JSON_BYTES).decode("utf-8")
    except ValueError:  # a device, too large, not UTF-8
        raise RnnlabError(f"{file} is damaged; train the run again") from None
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue  # a damaged line is left out; the summary still holds the test metrics
        if isinstance(record, dict):
            records.append(record)
    return records


def read_config(path: Path) -> tuple[dict[str, Any], str]:
    file = path / CONFIG
    if not file.is_file():
        return {}, ""
    data, text = read_yaml(file)  # bounded; a damaged file is one line
    return (data if isinstance(data, dict) else {}), text


def read_run(path: Path) -> TrainingRun:
    check_report_reads(path)
    summary = read_json_object(path / SUMMARY)
    check_summary(summary, path / SUMMARY)
    config, config_text = read_config(path)
    spec_file = path / SPEC
    spec = read_json_file(spec_file) if spec_file.is_file() else {}
    return TrainingRun(
        path=path,
        name=str(summary.get("name") or path.name),
        summary=summary,
        history=read_history(path),
        config=config,
        config_text=config_text,
        spec=spec if isinstance(spec, dict) else {},
        curves=_png(path / CURVES),
    )


def read_result(path: Path) -> ResultFolder:
    """result.json, typed through the registry when its kind is a registered diagnostic's."""
    data = read_json_object(path / RESULT)
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise RnnlabError(f"{path / RESULT} has no 'kind'; run the diagnostic again")
    figures = sorted(p for p in path.glob("*.png") if p.is_file())
    entry = registry.for_data(data)  # a "not applicable" result joins its diagnostic
    cls = registry.result_class(data)
    result = cls.from_dict(data, where=str(path / RESULT)) if cls else None
    return ResultFolder(path, kind, data, figures, entry, result)


def _png(path: Path) -> Path | None:
    return path if path.is_file() else None


# ----- discovery ---------------------------------------------------------------------------------
def collect(paths: Sequence[Path | str]) -> Collection:
    """Find every run, compare, result, dataset and study file under `paths`."""
    if not paths:
        raise RnnlabError(
            "no run folders given; pass one or more folders made by rnnlab train, compare, "
            "diagnose or study"
        )
    roots = [Path(p) for p in paths]
    for root in roots:
        if not root.exists():
            raise RnnlabError(f"{root} does not exist; give a folder made by rnnlab train or study")
        if not root.is_dir():
            raise RnnlabError(f"{root} is not a folder; give the run folder itself, not a file")
    collection = Collection(roots=roots)
    seen: set[Path] = set()
    for root in roots:
        found = False
        for folder in _walk(root):
            if not _is_marked(folder):
                continue
            found = True
            key = folder.resolve()
            if key not in seen:
                seen.add(key)
                _read_folder(folder, collection)
        if not found:
            raise RnnlabError(
                f"{root} is not a run folder (no {SUMMARY}, {COMPARE} or {RESULT} inside); "
                "give a folder made by rnnlab train, compare, diagnose or study"
            )
    _assign_owners(collection)
    _order_runs(collection)
    return collection


def _order_runs(c: Collection) -> None:
    """Runs of a compare folder in the order compare.json lists its models (and, per model, its
    seeds); others as found."""
    rank: dict[Path, tuple[int, int, int]] = {}
    for i, compare in enumerate(c.compares):
        models = [str(m) for m in compare.data.get("models") or []]
        seeds = [s for s in compare.data.get("seeds") or [None] if isinstance(s, int)] or [0]
        folder = compare.path.resolve()
        for j, model in enumerate(models):
            for k, seed in enumerate(seeds):
                rank[folder / run_name(model, seed, len(seeds))] = (i, j, k)
    position = {id(run): k for k, run in enumerate(c.runs)}

    def key(run: TrainingRun) -> tuple[int, int, int, int]:
        found = rank.get(run.path.resolve())
        k = position[id(run)]
        return (*found, k) if found else (len(c.compares), 0, 0, k)

    c.runs.sort(key=key)


def _is_marked(folder: Path) -> bool:
    if any((folder / m).is_file() for m in MARKERS):
        return True
    return (folder / CONFIG).is_file() and (folder / METRICS).is_file()


def _walk(root: Path) -> Iterable[Path]:
    """The folder and its sub-folders, sorted, not following links, at most MAX_DEPTH deep."""
    base_depth = len(root.parts)
    for dirpath, dirnames, _ in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        if len(here.parts) - base_depth >= MAX_DEPTH:
            dirnames[:] = []
        yield here


def _read_folder(folder: Path, c: Collection) -> None:
    if (folder / SUMMARY).is_file():
        c.runs.append(read_run(folder))
    elif (folder / CONFIG).is_file() and (folder / METRICS).is_file():
        c.skipped.append(f"{folder}: unfinished run (no {SUMMARY})")
    if (folder / COMPARE).is_file():
        c.compares.append(
            CompareFolder(folder, _compare_data(folder), _png(folder / COMPARE_CURVES))
        )
    if (folder / RESULT).is_file():
        c.results.append(read_result(folder))
    if (folder / DATASET).is_file():
        c.datasets.append((folder, read_json_object(folder / DATASET)))
    if (folder / STUDY).is_file():
        c.studies.append((folder, read_json_object(folder / STUDY)))


def _compare_data(folder: Path) -> dict[str, Any]:
    """compare.json; one written before the test over the seeds (or before its left-out-seed
    tests) gets them from its runs."""
    data = read_json_object(folder / COMPARE)
    models, seeds = data.get("models"), data.get("seeds")
    if not isinstance(models, list) or not isinstance(seeds, list):
        return data
    written = data.get("over_seeds")
    if isinstance(written, list) and (
        len(seeds) < MIN_LEFT_OUT or all(isinstance(t, dict) and "left_out" in t for t in written)
    ):
        return data
    done = {str(r.get("run_dir")) for r in data.get("rows") or [] if isinstance(r, dict)}
    plain = [m for m in models if isinstance(m, str) and "/" not in m and ".." not in m]
    seeds = [s for s in seeds if isinstance(s, int)]
    data["over_seeds"] = over_seeds_tests(folder, plain, seeds, sorted(done))
    return data


def _assign_owners(c: Collection) -> None:
    result_dirs = sorted((r.path.resolve() for r in c.results), key=lambda p: -len(p.parts))
    by_resolved = {r.path.resolve(): r.path for r in c.results}
    for run in c.runs:
        here = run.path.resolve()
        for folder in result_dirs:
            if folder != here and folder in here.parents:
                run.owner = by_resolved[folder]
                break
