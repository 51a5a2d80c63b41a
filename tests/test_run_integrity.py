"""A damaged or edited run folder never loads silently. With its manifest, any changed,
missing or foreign file is one line naming it, and a kill between a file's write and the
manifest's never makes a reader refuse the folder. Without one (a folder written before
manifests), the checks behind it still hold: flipped bits, a vocabulary that does not fit the
model, repeated tokens, a config.yaml edited before --resume, unbounded or mistyped reads."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab import api
from rnnlab.cli import main
from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rnnlab.errors import RnnlabError
from rnnlab.layout import (
    CHECKPOINT,
    CONFIG,
    CURVES,
    ENCODER,
    LABELS,
    MANIFEST,
    METRICS,
    MODEL,
    PREDICTIONS,
    RECORDED,
    SUMMARY,
    manifest,
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small finished run (2 epochs, so a checkpoint to resume from is kept)."""
    from conftest import sentiment_rows  # the suite's toy corpus, written once for the module

    root = tmp_path_factory.mktemp("integrity")
    corpus = root / "reviews.csv"
    corpus.write_text("\n".join(",".join(map(str, row)) for row in sentiment_rows(120, 0)))
    config = RunConfig(
        DataConfig(dataset=str(corpus), max_len=20),
        ModelConfig(name="gru", embed_dim=8, hidden_dim=8),
        TrainConfig(epochs=2, batch_size=16, progress=False, patience=None, threads=1),
    )
    return api.train(config, out=root, name="run", verbose=False).run_dir


@pytest.fixture
def copy(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


@pytest.fixture
def legacy(copy: Path) -> Path:
    """The run as rnnlab wrote it before manifests: every other check must still hold."""
    (copy / MANIFEST).unlink()
    return copy


def flip_a_bit(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x10
    path.write_bytes(bytes(data))


def one_line_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_a_flipped_bit_in_the_weights_is_refused(
    legacy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flip_a_bit(legacy / MODEL)
    err = one_line_error(["predict", str(legacy), "good fun film"], capsys)
    assert "model.pt is damaged" in err and "checksum" in err and "train the run again" in err
    with pytest.raises(RnnlabError, match=r"model\.pt is damaged"):
        api.evaluate_run(legacy, split="test")


def test_a_flipped_bit_in_the_checkpoint_stops_the_resume(
    legacy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (legacy / SUMMARY).unlink()  # as a kill during training leaves it: resumable
    flip_a_bit(legacy / CHECKPOINT)
    err = one_line_error(["train", "--resume", str(legacy)], capsys)
    assert "checkpoint.pt is damaged" in err and "start over with --overwrite" in err


def test_a_vocabulary_that_does_not_fit_the_model_is_refused(legacy: Path) -> None:
    vocab = next((legacy / ENCODER).glob("vocab*.json"))
    raw = json.loads(vocab.read_text())
    edits: list[Callable[[list[str]], list[str]]] = [
        lambda itos: itos[:5],  # cut: fewer tokens than embedding rows
        lambda itos: [*itos[:-1], itos[2]],  # a word listed twice, same length
    ]
    for edit in edits:
        vocab.write_text(json.dumps({**raw, "itos": edit(list(raw["itos"]))}))
        with pytest.raises(RnnlabError, match=r"rows|twice") as caught:
            api.predict(legacy, "good fun film")
        assert "train the run again" in str(caught.value)


def test_an_edited_config_is_refused_before_resuming(
    legacy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load((legacy / CONFIG).read_text())
    config["model"]["name"] = "lstm"
    (legacy / CONFIG).write_text(yaml.safe_dump(config))
    (legacy / SUMMARY).unlink()  # as a kill during training leaves it: resumable
    err = one_line_error(["train", "--resume", str(legacy)], capsys)
    assert "holds another model than" in err and "undo the edit" in err


def test_reads_are_bounded_and_typed(
    legacy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = legacy / LABELS
    labels.unlink()
    labels.symlink_to("/dev/urandom")  # an endless file: refused without reading it
    err = one_line_error(["predict", str(legacy), "good fun film"], capsys)
    assert "labels.json" in err
    labels.unlink()
    labels.write_text('["negative", "positive"]')

    summary = json.loads((legacy / SUMMARY).read_text())
    out = str(tmp_path / "report.html")
    (legacy / SUMMARY).write_text("[" * 100_000 + "]" * 100_000)  # nested past the parser
    assert "summary.json" in one_line_error(["report", str(legacy), "--out", out], capsys)
    for field, value in (("model", "x"), ("test", {"accuracy": "abc"})):
        (legacy / SUMMARY).write_text(json.dumps({**summary, field: value}))
        err = one_line_error(["report", str(legacy), "--out", out], capsys)
        assert "summary.json" in err and "must be" in err


# ----- the manifest --------------------------------------------------------------------------
def recorded_files(run: Path) -> list[str]:
    """The files of the folder a manifest records: every one but tensorboard/ and itself."""
    names = [p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()]
    return sorted(n for n in names if n != MANIFEST and not n.startswith("tensorboard/"))


def test_the_manifest_lists_every_file_with_its_sha256(finished: Path) -> None:
    manifest = json.loads((finished / MANIFEST).read_text())
    assert manifest["algorithm"] == "sha256" and manifest["pending"] == {}
    assert sorted(manifest["files"]) == recorded_files(finished)
    for name, entry in manifest["files"].items():
        data = (finished / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert not [p for p in finished.iterdir() if p.name.startswith(".")]  # no staging left


@pytest.mark.parametrize(
    ("name", "argv", "said"),
    [
        (MODEL, ["predict", "{run}", "good fun film"], "restore the folder from a copy"),
        (LABELS, ["evaluate", "{run}"], "restore the folder from a copy"),
        ("encoder/vocab.json", ["predict", "{run}", "good"], "restore the folder from a copy"),
        (METRICS, ["report", "{run}", "--out", "{tmp}/r.html"], "restore the folder from a copy"),
        (SUMMARY, ["report", "{run}", "--out", "{tmp}/r.html"], "restore the folder from a copy"),
        (CHECKPOINT, ["train", "--resume", "{run}"], "start over with --overwrite"),
    ],
)
def test_every_reader_refuses_a_changed_file_in_one_line(
    copy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    argv: list[str],
    said: str,
) -> None:
    """A change the older checks let through: same size, same types, one digit of a number
    or one letter of a word changed (for the torch archives, a byte of a tensor's data)."""
    if CHECKPOINT in name:
        (copy / SUMMARY).unlink()  # as a kill during training leaves it: resumable
    path = copy / name
    data = bytearray(path.read_bytes())
    at = next(i for i in range(len(data) // 2, len(data)) if chr(data[i]).isalnum())
    data[at] = ord("1" if chr(data[at]).isdigit() else "q") + (data[at] in b"1q")
    path.write_bytes(bytes(data))
    args = [a.format(run=copy, tmp=tmp_path) for a in argv]
    err = one_line_error(args, capsys)
    assert f"{path} does not match the run's {MANIFEST}" in err and said in err


def test_missing_foreign_and_linked_files_are_refused(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["predict", str(copy), "good fun film"]
    (copy / ENCODER / "tokenizer.json").write_text("{}")  # a file rnnlab did not write
    assert "is not in the run's" in one_line_error(argv, capsys)
    (copy / ENCODER / "tokenizer.json").unlink()
    vocab = copy / ENCODER / "vocab.json"
    kept = vocab.read_bytes()
    vocab.unlink()
    assert "vocab.json is missing, but the run's manifest.json lists it" in one_line_error(
        argv, capsys
    )
    vocab.symlink_to("/dev/zero")  # endless: refused without reading it
    assert "vocab.json is not a regular file" in one_line_error(argv, capsys)
    vocab.unlink()
    outside = copy.parent / "vocab-copy.json"
    outside.write_bytes(kept)
    vocab.symlink_to(outside)  # a link to the same bytes reads as the file
    assert main(argv) == 0
    (copy / MANIFEST).write_text('{"format": 1, "algorithm": "md5", "files": {}}')
    assert "manifest.json is damaged (algorithm is not sha256)" in one_line_error(argv, capsys)


def test_a_folder_without_a_manifest_loads_as_before(
    finished: Path, legacy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert api.predict(legacy, "good fun film") == api.predict(finished, "good fun film")
    assert capsys.readouterr().err == ""  # nothing said: see rnnlab.layout.manifest


def test_resuming_a_folder_without_a_manifest_adopts_its_files(legacy: Path) -> None:
    (legacy / SUMMARY).unlink()  # unfinished, as a kill left it
    assert main(["train", "--resume", str(legacy)]) == 0
    manifest = json.loads((legacy / MANIFEST).read_text())
    assert sorted(manifest["files"]) == recorded_files(legacy) and manifest["pending"] == {}


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (no except or finally of rnnlab's catches
    a BaseException it does not know)."""


def kill_at(monkeypatch: pytest.MonkeyPatch, point: int) -> None:
    """Die at the `point`-th step of a transaction: 0 the announcing manifest write, 1..n
    before each file's rename, n + 1 the committing manifest write."""
    steps = [0]

    def step(real: Callable[..., None]) -> Callable[..., None]:
        def run(*args: object) -> None:
            if steps[0] == point:
                raise Killed
            steps[0] += 1
            real(*args)

        return run

    monkeypatch.setattr(manifest, "_put", step(manifest._put))
    monkeypatch.setattr(manifest, "_save", step(manifest._save))


@settings(max_examples=12, deadline=None)
@given(point=st.integers(0, 6), flip=st.booleans())
def test_a_kill_anywhere_in_a_write_leaves_a_folder_that_reads_true(
    finished: Path, tmp_path_factory: pytest.TempPathFactory, point: int, flip: bool
) -> None:
    """The end of a run (5 files, summary.json last) killed at each step: the folder's files
    are all old or new, the readers accept it, and a file damaged afterwards is still refused
    (the pending states accept only the bytes rnnlab wrote)."""
    run = Path(shutil.copytree(finished, tmp_path_factory.mktemp("kill") / "run"))
    old = {n: (run / n).read_bytes() for n in recorded_files(run)}
    new = {MODEL: b"new weights", PREDICTIONS: b"[1]", CURVES: b"png", METRICS: b"{}\n"}
    new[SUMMARY] = b'{"status": "completed"}'
    with pytest.MonkeyPatch.context() as patch:
        kill_at(patch, point)
        with contextlib.suppress(Killed):
            manifest.write_files(run, new)
    now = {n: (run / n).read_bytes() for n in recorded_files(run)}
    assert all(now[n] in (old[n], new.get(n)) for n in now)
    assert manifest.check_files(run, RECORDED, fix="-") is True
    if flip:
        flip_a_bit(run / SUMMARY, where=0.1)
        with pytest.raises(RnnlabError, match="does not match the run's manifest"):
            manifest.check_files(run, [SUMMARY], fix="-")
    else:  # the next write settles the killed one's pending states
        manifest.write_files(run, {SUMMARY: b"{}"})
        assert manifest.read_manifest(run, fix="-") == manifest.Manifest(
            {n: manifest.digest_file(run / n) for n in recorded_files(run)}
        )


@pytest.mark.parametrize("fsync", ["1", "0"])
def test_the_announcement_reaches_the_disk_before_any_file_it_announces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: str
) -> None:
    """A power cut, too, must never leave a renamed file its manifest does not announce: the
    announcing manifest.json and its folder are fsynced before the first rename
    (RNNLAB_FSYNC=0, as in this suite, skips them)."""
    events: list[str] = []
    real_fsync, real_put = os.fsync, manifest._put
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(manifest, "_put", lambda *a: (events.append("rename"), real_put(*a))[1])
    monkeypatch.setenv("RNNLAB_FSYNC", fsync)
    manifest.write_files(tmp_path, {MODEL: b"weights", SUMMARY: b"{}"})
    durable = ["fsync", "fsync"] if fsync == "1" else []
    assert events == [*durable, "rename", "rename", *durable]


def test_what_the_folder_fuzz_found_is_one_line(
    finished: Path, legacy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by tests/test_folder_fuzz.py in folders without a manifest: PyYAML took minutes
    over a config.yaml nested 100,000 deep, then raised RecursionError; a link to a device was
    read without end; encoder.json with a setting of another type (tokenizer null) loaded and
    failed at the first text; --resume read a damaged encoder.json with a JSON traceback."""
    config = legacy / CONFIG
    config.write_text("[" * 100_000 + "]" * 100_000)
    argv = ["predict", str(legacy), "good fun film"]
    assert "config.yaml is nested too deeply" in one_line_error(argv, capsys)
    config.unlink()
    config.symlink_to("/dev/zero")
    assert "config.yaml is not a regular file" in one_line_error(argv, capsys)
    config.unlink()
    shutil.copy(finished / CONFIG, config)
    meta = legacy / ENCODER / "encoder.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "tokenizer": None}))
    assert "has a setting of the wrong type" in one_line_error(argv, capsys)
    meta.write_text("z" + meta.read_text()[1:])
    (legacy / SUMMARY).unlink()  # resumable
    assert "encoder is damaged" in one_line_error(["train", "--resume", str(legacy)], capsys)
