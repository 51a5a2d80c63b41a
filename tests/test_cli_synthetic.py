"""`rnnlab synthetic TASK` end to end on tiny settings, and its bad inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab.cli import main


def test_synthetic_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tmp"
    code = main([
        "synthetic", "remember-first", "--lengths", "5,10", "--models", "rnn,lstm",
        "--num-examples", "200", "--epochs", "1", "--hidden-dim", "8", "--seeds", "1",
        "--out", str(out),
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads((out / "result.json").read_text())
    assert result["kind"] == "synthetic" and result["task"] == "remember-first"
    assert result["metric"] == "accuracy" and result["chance"] == 0.5
    assert result["lengths"] == [5, 10] and result["models"] == ["rnn", "lstm"]
    assert result["status"] == "completed"
    cells = result["cells"]
    assert sorted((c["model"], c["length"]) for c in cells) == [
        ("lstm", 5), ("lstm", 10), ("rnn", 5), ("rnn", 10),
    ]  # fmt: skip
    for cell in cells:
        assert 0.0 <= cell["value"] <= 1.0 and cell["accuracy"] == cell["value"]
        assert cell["first_step_grad"] > 0 and cell["train_seconds"] >= 0 and cell["seed"] == 0
    assert len(result["summary"]) == 4 and {"mean", "std"} <= set(result["summary"][0])
    assert result["settings"]["num_examples"] == 200 and result["settings"]["epochs"] == 1
    for png in ("accuracy_vs_length.png", "first_step_grad.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the printed table and reading
    assert "T=5" in captured.out and "T=10" in captured.out and "||dL/dx_1||" in captured.out
    assert str(out) in captured.out
    assert "lstm T=10 seed 0: test" in captured.err


def test_synthetic_regression_task_writes_mse(tmp_path: Path) -> None:
    out = tmp_path / "adding"
    code = main([
        "synthetic", "synthetic:adding", "--lengths", "4", "--models", "gru", "--seeds", "2",
        "--num-examples", "60", "--epochs", "1", "--hidden-dim", "4", "--out", str(out),
        "--no-progress",
    ])  # fmt: skip
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["metric"] == "mse" and result["seeds"] == [0, 1] and len(result["cells"]) == 2
    assert all(c["mse"] == c["value"] > 0 for c in result["cells"])
    assert (out / "mse_vs_length.png").exists() and (out / "first_step_grad.png").exists()


BAD = [
    (["bogus"], "synthetic:remember-first"),
    (["remember-first", "--lengths", "1,10"], "at least 2"),
    (["remember-first", "--lengths", "10,x"], "'x'"),
    (["remember-first", "--num-examples", "0"], "num_examples"),
    (["parity", "--models", "rnn,cnn"], "cnn"),
    (["adding", "--seeds", "0"], "--seeds"),
    (["adding", "--epochs", "0"], "epochs"),
]


@pytest.mark.parametrize(("argv", "needle"), BAD)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never"
    code = main(["synthetic", *argv, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("rnnlab: error: ") and needle in lines[0]
    assert "Traceback" not in captured.err
    assert not out.exists()


def test_unknown_task_lists_all_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synthetic", "copy-memory"]) == 2
    err = capsys.readouterr().err
    for task in ("remember-first", "parity", "adding", "adding-classify"):
        assert f"synthetic:{task}" in err


def test_non_empty_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "old.txt").write_text("keep me")
    assert main(["synthetic", "parity", "--lengths", "5", "--out", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err
    assert (tmp_path / "old.txt").read_text() == "keep me"


def test_exit_code_in_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rnnlab", "synthetic", "remember-first", "--lengths", "1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()
