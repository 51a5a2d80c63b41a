"""Careless and hostile inputs to train and predict: one line on stderr, exit 2, no traceback,
nothing half-written (issue "Never lose a run")."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rnnlab.cli import main

TINY = ["--embed-dim", "8", "--hidden-dim", "8", "--epochs", "1", "--no-progress"]


@pytest.fixture
def corpus(write_csv: Any) -> Path:
    words = {"negative": "bad dull awful", "positive": "good great fun"}
    rows: list[list[Any]] = [["text", "label"]]
    for i in range(200):
        label = "positive" if i % 2 else "negative"
        rows.append([f"the film {words[label]} review {i}", label])
    return write_csv(rows, "reviews.csv")


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rnnlab: error: "), err
    assert "Traceback" not in err
    return err


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


CONFIGS = {
    "max_len: abc": ("data:\n  max_len: abc\n", "data.max_len must be an integer or null"),
    "data: 5": ("data: 5\n", "section data must be a mapping"),
    "epochs: 1.5": ("train:\n  epochs: 1.5\n", "train.epochs must be an integer"),
    "not utf-8": (b"data:\n  dataset: caf\xe9\n", "not UTF-8"),
    "seed: -5": ("train:\n  seed: -5\n", "--seed (config train.seed) must be a whole number"),
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_bad_config_files(
    case: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, message = CONFIGS[case]
    config = write(tmp_path / "config.yaml", text)
    out = tmp_path / "runs"
    assert (
        main(["train", "--config", str(config), "--dataset", str(corpus), "--out", str(out)]) == 2
    )
    assert message in one_line(capsys)
    assert not out.exists() or not any(out.iterdir())


def test_a_folder_as_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--config", str(tmp_path)]) == 2
    assert "is a folder" in one_line(capsys)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--name", "x" * 300], "use at most 120"),
        (["--name", ".."], "not a plain folder name"),
        (["--hidden-dim", "100000000"], "more than the limit of"),
        (["--hidden-dim", "30000"], "raise the limit, e.g. --memory-limit-gb"),
        (["--weight-decay", "inf"], "weight_decay must be a finite number"),
        (["--gate-bias", "nan"], "gate_bias must be a finite number"),
        (["--lr", "nan"], "lr must be a finite number"),
        (["--epochs", "0"], "epochs must be at least 1"),
        (["--memory-limit-gb", "0"], "memory_limit_gb must be positive"),
        (["--seed", "-5"], "--seed (config train.seed) must be a whole number from 0"),
        (["--data-seed", "-1"], "--data-seed (config data.seed) must be a whole number from 0"),
        (["--seed", str(2**64)], "from 0 to 2**63 - 1 (got 18446744073709551616)"),
    ],
)
def test_bad_train_flags(
    flags: list[str], message: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    argv = ["train", "--dataset", str(corpus), *TINY, "--out", str(out), *flags]
    assert main(argv) == 2
    assert message in one_line(capsys)
    assert not out.exists() or not any(out.iterdir()), "a half-written run"


def test_out_that_cannot_hold_runs(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = write(tmp_path / "file", "x")
    assert main(["train", "--dataset", str(corpus), *TINY, "--out", str(blocker)]) == 2
    assert "is a file" in one_line(capsys)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        assert main(["train", "--dataset", str(corpus), *TINY, "--out", str(locked)]) == 2
        assert "permission denied" in one_line(capsys)


@pytest.fixture
def run_dir(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert (
        main(["train", "--dataset", str(corpus), *TINY, "--out", str(tmp_path), "--name", "r"]) == 0
    )
    capsys.readouterr()
    return tmp_path / "r"


def test_predict_on_damaged_run_folders(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run_dir / "manifest.json").unlink()  # the checks behind the manifest's (an older folder)
    spec = json.loads((run_dir / "model_spec.json").read_text())
    (run_dir / "model_spec.json").write_text(json.dumps({**spec, "hidden_dim": 10**8}))
    assert main(["predict", str(run_dir), "fine film"]) == 2
    assert "does not match model_spec.json" in one_line(capsys)
    (run_dir / "model_spec.json").write_text(json.dumps(spec))

    (run_dir / "labels.json").write_text('["a", "b", "c"]')
    assert main(["predict", str(run_dir), "fine film"]) == 2
    assert "names 3 labels but the model has 2 classes" in one_line(capsys)
    (run_dir / "labels.json").write_text('["negative", "positive"]')

    config = (run_dir / "config.yaml").read_text()
    (run_dir / "config.yaml").write_text(config.replace("max_len: 400", "max_len: abc"))
    assert main(["predict", str(run_dir), "fine film"]) == 2
    assert "max_len must be an integer" in one_line(capsys)
    (run_dir / "config.yaml").write_text(config)

    vocab = run_dir / "encoder" / "vocab.json"
    vocab.write_text(vocab.read_text()[:40])
    assert main(["predict", str(run_dir), "fine film"]) == 2
    assert "encoder" in one_line(capsys)


def test_predict_file_that_is_a_folder(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(run_dir), "--file", str(tmp_path)]) == 2
    assert "is a folder" in one_line(capsys)


def test_negative_seeds_of_diagnostics_and_studies_are_refused() -> None:
    from rnnlab.diagnostics import Inputs
    from rnnlab.errors import RnnlabError
    from rnnlab.study import study_settings

    with pytest.raises(RnnlabError, match="--seed must be a whole number from 0"):
        Inputs(seed=-1)
    with pytest.raises(RnnlabError, match="--seed must be a whole number from 0"):
        study_settings("imdb", quick=True, seed=-3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04\x00\x00 model weights\n\x00\x01", "is a binary file (it holds NUL bytes)"),
        (bytes(range(128, 256)) * 20 + b"\nok\n", "is not UTF-8 text (100% of it cannot be"),
    ],
)
def test_predict_refuses_a_binary_file(
    content: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = write(tmp_path / "model.pt", content)
    assert main(["predict", str(tmp_path), "--file", str(binary)]) == 2
    assert message in one_line(capsys)


def test_predict_reads_a_text_file_with_a_few_stray_bytes() -> None:
    from rnnlab.cli.predict_cmds import text_of

    latin1 = "un film très réussi, déjà vu\nà revoir\n".encode("latin-1")
    assert text_of(latin1, "f").splitlines()[1] == "\ufffd revoir"
    with pytest.raises(Exception, match="binary"):
        text_of("a\0b", "stdin")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--model", "lstm"], "drop --model (or"),
        (["--data-seed", "3"], "drop --data-seed (or"),
        (["--keep-case", "--keep-html"], "drop --keep-case, --keep-html (or"),  # in field order
        (["--no-bidirectional"], "drop --no-bidirectional (or"),
        (["--max-len", "none", "--seed", "1"], "drop --max-len, --seed (or"),
        (["--name", "x", "--overwrite"], "drop --name, --overwrite (or"),
    ],
)
def test_resume_names_the_flags_given(
    flags: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--resume", str(tmp_path), *flags]) == 2
    assert named in one_line(capsys)
    assert main(["train", "--resume", str(tmp_path), "--no-progress"]) == 2  # allowed
    assert "has no config.yaml" in one_line(capsys)


def test_stale_temp_names_are_the_atomic_writers_own(tmp_path: Path) -> None:
    from rnnlab.io import atomic_path, stale_temps

    with atomic_path(tmp_path / "model.pt") as tmp:
        assert stale_temps(tmp_path, {"model.pt"}) == [tmp]
        assert stale_temps(tmp_path, {"summary.json"}) == []
    assert stale_temps(tmp_path, {"model.pt"}) == []


def test_resume_removes_stale_temp_files_and_only_those(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = [".checkpoint.pt.k2_9xq0a.tmp", ".model.pt.abcdefgh.tmp", ".summary.json.00000000.tmp"]
    kept = [".notes.txt.abcdefgh.tmp", ".model.pt.abc.tmp", "model.pt.abcdefgh.tmp", "x.tmp"]
    for name in stale + kept:
        write(run_dir / name, "half-written")
    (run_dir / ".curves.png.abcdefgh.tmp").mkdir()  # not a file: not rnnlab's
    os.symlink(run_dir / "x.tmp", run_dir / ".labels.json.abcdefgh.tmp")
    kept += [".curves.png.abcdefgh.tmp", ".labels.json.abcdefgh.tmp"]
    (run_dir / "summary.json").unlink()  # killed before the end: unfinished
    assert main(["train", "--resume", str(run_dir)]) == 0
    capsys.readouterr()
    for name in stale:
        assert not (run_dir / name).exists(), name
    for name in kept:
        assert (run_dir / name).exists() or (run_dir / name).is_symlink(), name
    assert (run_dir / "summary.json").is_file()
