"""Fuzz the run folder, not only its loaders (issue "Damaged, edited or hostile run folders",
item 8). One file (or the encoder folder) of a small real run is damaged at a time: a bit or a
byte changed, cut, emptied, removed, grown, swapped for a link (to /dev/zero, or to another
file of the run) or a folder, nested past the JSON parser, a JSON or YAML value of another
type. Then every reader runs on it: predict, evaluate and the report's reading on a finished
run, resume on an unfinished one. Each reader must give the result it gave on the intact
folder or raise RnnlabError with one line (what the CLI prints, exit 2): never another
exception (a traceback), a hang, or a different result.

The same folder without its manifest (as rnnlab wrote it before manifests) must never give a
traceback or hang either; there a damaged file may give another result, since nothing else
tells an edit that keeps types and sizes from the original (that is the manifest's job).

`make test` runs a few examples of each (hypothesis draws new ones every run); the `slow`
versions run many more, with the report rendered and every resume's result compared.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rnnlab import api
from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rnnlab.errors import RnnlabError
from rnnlab.layout import ENCODER, MANIFEST, MODEL, SUMMARY
from rnnlab.report import collect
from rnnlab.runs import folder, reopen_run

TEXTS = ["good fun film", "a dull and boring plot", "the cast"]
KINDS = (
    "flip-bit", "set-byte", "cut", "empty", "remove", "grow", "link-to-device",
    "link-to-sibling", "folder", "nest", "retype",
)  # fmt: skip
FAST = settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SLOW = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def stub_curves(history: Any, path: Path | str, *, title: str = "") -> Path:
    """curves.png without matplotlib: drawing it is most of a tiny run's cost (2-3 s)."""
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + json.dumps(history).encode())
    return Path(path)


@pytest.fixture(autouse=True)
def _no_plotting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folder, "plot_curves", stub_curves)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the suite's toy corpus: 2 epochs of a 4-unit GRU."""
    from conftest import sentiment_rows  # the suite's toy corpus

    root = tmp_path_factory.mktemp("fuzz")
    corpus = root / "reviews.csv"
    corpus.write_text("\n".join(",".join(map(str, row)) for row in sentiment_rows(60, 0)))
    config = RunConfig(
        DataConfig(dataset=str(corpus), max_len=12),
        ModelConfig(name="gru", embed_dim=4, hidden_dim=4),
        TrainConfig(epochs=2, batch_size=16, progress=False, patience=None, threads=1),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(folder, "plot_curves", stub_curves)
        return api.train(config, out=root, name="run", verbose=False).run_dir


@pytest.fixture(scope="module")
def unfinished(finished: Path) -> Path:
    """The same run as a resume finds it after a kill before its end (reopened through the
    manifest, so the folder is one rnnlab could have left)."""
    path = Path(shutil.copytree(finished, finished.parent / "unfinished"))
    reopen_run(path)
    return path


# ----- the readers ---------------------------------------------------------------------------
def predictions(run: Path) -> Any:
    return [p.probabilities for p in api.predict(run, TEXTS)]


def evaluation(run: Path) -> Any:
    result = api.evaluate_run(run, split="test")
    assert result.probabilities is not None
    return result.examples, result.loss, result.accuracy, result.probabilities.tolist()


def report_reading(run: Path) -> Any:
    found = collect.collect([run])
    if found.empty:  # as `render` refuses it
        raise RnnlabError(f"nothing finished to report: {'; '.join(found.skipped)}")
    return [
        (r.summary, r.history, r.config, r.spec, r.curves.read_bytes() if r.curves else None)
        for r in found.runs
    ]


def resumed(run: Path) -> Any:
    result = api.resume(run, verbose=False)
    return hashlib.sha256((run / MODEL).read_bytes()).hexdigest(), result.summary["test"]


FINISHED_READERS: dict[str, Callable[[Path], Any]] = {
    "predict": predictions, "evaluate": evaluation, "report": report_reading,
}  # fmt: skip


class Hung(BaseException):
    """A reader ran past its time (no `except Exception` of rnnlab's catches it)."""


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def stop(*_: object) -> None:
        raise Hung(f"a reader took over {seconds} s on the damaged folder")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def outcome(read: Callable[[Path], Any], run: Path) -> tuple[str, Any]:
    """("ok", the result) or ("refused", the message); anything else propagates and fails."""
    try:
        with time_limit(60):
            return "ok", read(run)
    except RnnlabError as exc:
        message = str(exc)
        assert message and "\n" not in message, f"not one line: {message!r}"
        return "refused", message


# ----- the damage ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Damage:
    target: str
    """A file of the run, or the encoder folder."""
    kind: str
    where: float
    """Where in the file (0 to 1)."""
    byte: int
    value: Any
    """A JSON value for "retype"."""

    def apply(self, run: Path) -> None:
        path = run / self.target
        if self.kind in ("remove", "link-to-device", "link-to-sibling", "folder"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            if self.kind == "link-to-device":
                path.symlink_to("/dev/zero")
            elif self.kind == "link-to-sibling":
                siblings = sorted(p for p in run.iterdir() if p.is_file() and p != path)
                path.symlink_to(siblings[int(self.where * len(siblings))])
            elif self.kind == "folder":
                path.mkdir()
                (path / "x").write_text("x")
            return
        if path.is_dir():  # the encoder folder: it becomes a file
            shutil.rmtree(path)
            path.write_bytes(bytes([self.byte]))
            return
        path.write_bytes(self.damaged(path.name, path.read_bytes()))

    def damaged(self, name: str, data: bytes) -> bytes:
        at = int(self.where * len(data))
        if self.kind == "nest":
            return b"[" * 100_000 + b"]" * 100_000
        if self.kind == "retype" and name.endswith((".json", ".yaml", ".jsonl")):
            return retyped(name, data, self.where, self.value)
        if self.kind == "cut":
            return data[:at]
        if self.kind == "empty":
            return b""
        if self.kind == "grow":
            return data + bytes(2**20)
        if not data:
            return bytes([self.byte])
        changed = bytearray(data)
        changed[at] = changed[at] ^ (1 << (self.byte % 8)) if self.kind == "flip-bit" else self.byte
        return bytes(changed)


def retyped(name: str, data: bytes, where: float, value: Any) -> bytes:
    """One value of a JSON/JSONL/YAML file replaced by `value` (the top level, or one level
    down when the top level is an object whose chosen value is one)."""
    if name.endswith(".jsonl"):
        lines = data.decode().splitlines()
        if not lines:
            return json.dumps(value).encode()
        i = int(where * len(lines))
        lines[i] = json.dumps(_replace(json.loads(lines[i]), where, value))
        return ("\n".join(lines) + "\n").encode()
    if name.endswith(".yaml"):
        return yaml.safe_dump(_replace(yaml.safe_load(data), where, value)).encode()
    return json.dumps(_replace(json.loads(data), where, value)).encode()


def _replace(doc: Any, where: float, value: Any) -> Any:
    if isinstance(doc, dict) and doc:
        keys = sorted(doc)
        key = keys[int(where * len(keys))]
        inner = doc[key]
        if isinstance(inner, dict) and inner:
            return {**doc, key: _replace(inner, (where * len(keys)) % 1, value)}
        return {**doc, key: value}
    if isinstance(doc, list) and doc:
        doc = list(doc)
        doc[int(where * len(doc))] = value
        return doc
    return value


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def targets(run: Path) -> list[str]:
    files = [p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()]
    return sorted([*files, ENCODER])


@st.composite
def damages(draw: st.DrawFn, run: Path) -> Damage:
    return Damage(
        target=draw(st.sampled_from(targets(run))),
        kind=draw(st.sampled_from(KINDS)),
        where=draw(st.floats(0, 1, exclude_max=True)),
        byte=draw(st.integers(0, 255)),
        value=draw(JSON_VALUES),
    )


def damaged_copy(run: Path, damage: Damage, keep_manifest: bool, into: Path) -> Path:
    shutil.rmtree(into, ignore_errors=True)
    copy = Path(shutil.copytree(run, into, symlinks=True))
    if not keep_manifest:
        (copy / MANIFEST).unlink()
    if damage.target != MANIFEST or keep_manifest:
        damage.apply(copy)
    return copy


# ----- the tests -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def before(finished: Path) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(folder, "plot_curves", stub_curves)
        return {name: read(finished) for name, read in FINISHED_READERS.items()}


def check_finished(
    finished: Path, before: dict[str, Any], damage: Damage, keep_manifest: bool, into: Path
) -> None:
    run = damaged_copy(finished, damage, keep_manifest, into)
    for name, read in FINISHED_READERS.items():
        said, result = outcome(read, run)
        event(f"{name} {'with' if keep_manifest else 'without'} the manifest: {said}")
        if said == "ok" and keep_manifest:
            assert result == before[name], f"{name} gave another result after {damage}"


@FAST
@given(data=st.data(), keep_manifest=st.booleans())
def test_a_damaged_finished_run_is_read_alike_or_refused_in_one_line(
    finished: Path, before: dict[str, Any], tmp_path: Path, data: st.DataObject, keep_manifest: bool
) -> None:
    damage = data.draw(damages(finished), label="damage")
    check_finished(finished, before, damage, keep_manifest, tmp_path / "run")


@pytest.fixture(scope="module")
def resumed_before(unfinished: Path) -> Any:
    copy = Path(shutil.copytree(unfinished, unfinished.parent / "resumed"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(folder, "plot_curves", stub_curves)
        return resumed(copy)


def check_unfinished(
    unfinished: Path, resumed_before: Any, damage: Damage, keep_manifest: bool, into: Path
) -> None:
    run = damaged_copy(unfinished, damage, keep_manifest, into)
    said, result = outcome(resumed, run)
    event(f"resume {'with' if keep_manifest else 'without'} the manifest: {said}")
    if said == "ok" and keep_manifest:
        assert result == resumed_before, f"the resume gave another result after {damage}"


@FAST
@given(data=st.data(), keep_manifest=st.booleans())
def test_a_damaged_unfinished_run_resumes_alike_or_is_refused_in_one_line(
    unfinished: Path, resumed_before: Any, tmp_path: Path, data: st.DataObject, keep_manifest: bool
) -> None:
    damage = data.draw(damages(unfinished), label="damage")
    check_unfinished(unfinished, resumed_before, damage, keep_manifest, tmp_path / "run")


@pytest.mark.long
@SLOW
@given(data=st.data(), keep_manifest=st.booleans())
def test_many_damaged_finished_runs(
    finished: Path, before: dict[str, Any], tmp_path: Path, data: st.DataObject, keep_manifest: bool
) -> None:
    damage = data.draw(damages(finished), label="damage")
    check_finished(finished, before, damage, keep_manifest, tmp_path / "run")
    from rnnlab.report.html import render  # the whole page, once per example

    run = tmp_path / "run"
    outcome(lambda path: render([path], path.parent / "report.html"), run)


@pytest.mark.long
@SLOW
@given(data=st.data(), keep_manifest=st.booleans())
def test_many_damaged_unfinished_runs(
    unfinished: Path, resumed_before: Any, tmp_path: Path, data: st.DataObject, keep_manifest: bool
) -> None:
    damage = data.draw(damages(unfinished), label="damage")
    check_unfinished(unfinished, resumed_before, damage, keep_manifest, tmp_path / "run")


def test_the_damage_reaches_every_file(finished: Path, tmp_path: Path) -> None:
    """Each kind of damage changes what it targets (a fuzz test of no-ops would prove nothing;
    "set-byte" may write the byte that is there, which must then read alike)."""
    for kind in set(KINDS) - {"set-byte"}:
        for target in (MODEL, SUMMARY, "encoder/vocab.json", ENCODER):
            run = damaged_copy(finished, Damage(target, kind, 0.5, 7, [1]), True, tmp_path / "r")
            before, after = finished / target, run / target
            same = (
                before.is_file()
                and after.is_file()
                and not after.is_symlink()
                and before.read_bytes() == after.read_bytes()
            )
            assert not same, (kind, target)
