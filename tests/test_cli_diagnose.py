"""`rnnlab diagnose | sweep | bench` end to end on small settings, and the bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab.cli import main
from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rnnlab.diagnostics import read_result, suite

DATA = ["--dataset", "imdb", "--limit", "60"]
TINY = ["--embed-dim", "8", "--hidden-dim", "8"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rnnlab import api

    config = RunConfig(
        DataConfig(dataset="imdb", limit=60, max_len=40),
        ModelConfig(name="gru", embed_dim=8, hidden_dim=8),
        TrainConfig(epochs=1, batch_size=16, device="cpu", progress=False),
    )
    out = tmp_path_factory.mktemp("runs")
    return api.train(config, out=out, name="tiny-gru", verbose=False).run_dir


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _kind(folder: Path) -> str:
    return json.loads((folder / "result.json").read_text())["kind"]


def test_gradient_flow_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gf"
    code, stdout, _ = _run(
        ["diagnose", "gradient-flow", *DATA, *TINY, "--models", "rnn,lstm,gru",
         "--seq-len", "30", "--batch-size", "3", "--split", "train", "--out", str(out)],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert _kind(out) == "gradient_flow"
    assert {"gradient_flow_linear.png", "gradient_flow_log.png"} <= {p.name for p in out.iterdir()}
    assert "t=2 / t=28" in stdout and "severe vanishing" in stdout and f"saved {out}" in stdout
    result = read_result(out)
    assert [m.label for m in result.models] == ["rnn", "lstm", "gru"] and result.seq_len == 30


def test_gradient_flow_on_a_run_folder(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gf-run"
    args = ["diagnose", "gradient-flow", "--run", str(tiny_run), "--seq-len", "20",
            "--batch-size", "2", "--split", "train", "--out", str(out), "--quiet"]  # fmt: skip
    code, stdout, err = _run(args, capsys)
    assert code == 0 and err == ""
    assert "tiny-gru" in stdout and read_result(out).models[0].source == str(tiny_run)


def test_embedding_grad_and_hidden_states_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [*DATA, *TINY, "--models", "rnn,lstm", "--split", "train", "--seed", "3"]
    code, stdout, _ = _run(
        ["diagnose", "embedding-grad", *common, "--lengths", "20,5,10", "--batch-size", "2",
         "--out", str(tmp_path / "eg")],
        capsys,
    )  # fmt: skip
    assert code == 0 and _kind(tmp_path / "eg") == "embedding_grad" and "L=20 / L=5" in stdout
    assert (tmp_path / "eg" / "embedding_grad.png").is_file()
    code, stdout, _ = _run(
        ["diagnose", "hidden-states", *common, "--per-class", "2", "--min-len", "30",
         "--max-steps", "30", "--out", str(tmp_path / "hs")],
        capsys,
    )  # fmt: skip
    assert code == 0 and _kind(tmp_path / "hs") == "hidden_states" and "||c_t||" in stdout
    assert (tmp_path / "hs" / "cell_norms.png").is_file()


def test_padding_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pad"
    code, stdout, _ = _run(
        ["diagnose", "padding", *DATA, "--max-len", "100", "--batch-size", "8", "--out", str(out)],
        capsys,
    )
    assert code == 0 and _kind(out) == "padding"
    assert "bucketed" in stdout and "packed" in stdout and "max_len 100" in stdout


def test_padding_takes_the_data_settings_of_a_run(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pad-run"
    code, _, _ = _run(["diagnose", "padding", "--run", str(tiny_run), "--out", str(out)], capsys)
    assert code == 0 and read_result(out).max_len == 40


def test_bench_timing_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "timing"
    code, stdout, _ = _run(
        ["bench", "timing", "--models", "rnn,gru", *TINY, "--vocab-size", "50", "--lengths",
         "4,8,12", "--modes", "padded,scratch", "--batch-size", "2", "--repeats", "1",
         "--warmup", "0", "--out", str(out)],
        capsys,
    )  # fmt: skip
    assert code == 0 and _kind(out) == "timing" and "scratch" in stdout
    result = read_result(out)
    assert result.modes == ["padded", "scratch"] and result.models[0].spec["vocab_size"] == 50


def test_sweep_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = ["--epochs", "1", "--batch-size", "16", "--device", "cpu", "--patience", "none"]
    code, stdout, _ = _run(
        ["sweep", "seq-len", *DATA, *TINY, *train, "--models", "rnn", "--lengths", "10,20",
         "--seeds", "2", "--out", str(tmp_path / "seq")],
        capsys,
    )  # fmt: skip
    assert code == 0 and _kind(tmp_path / "seq") == "seq_len" and "±" in stdout
    sweep = read_result(tmp_path / "seq")
    assert len(sweep.cells) == 4 and sweep.seeds == [0, 1] and sweep.settings["epochs"] == 1
    code, stdout, _ = _run(
        ["sweep", "hidden", *DATA, "--embed-dim", "8", *train, "--max-len", "30", "--sizes",
         "4,8", "--models", "rnn", "--seeds", "1", "--out", str(tmp_path / "hid")],
        capsys,
    )  # fmt: skip
    assert code == 0 and _kind(tmp_path / "hid") == "hidden_size"
    assert [c.hidden_dim for c in read_result(tmp_path / "hid").cells] == [4, 8]


def test_diagnose_all_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "all"
    code, stdout, _ = _run(
        ["diagnose", "all", *DATA, *TINY, "--models", "rnn,lstm", "--split", "train",
         "--seq-len", "20", "--embed-lengths", "5,10", "--min-len", "20", "--per-class", "1",
         "--timing-lengths", "4,8", "--skip", "seq-len,hidden-size,synthetic,memory-capacity",
         "--out", str(out),
         "--quiet"],
        capsys,
    )  # fmt: skip
    assert code == 0 and "expected duration about" in stdout
    parts = {p.name for p in out.iterdir() if p.is_dir()}
    assert parts == {"parameters", "padding", "gradient-flow", "embedding-grad",
                     "hidden-states", "attribution", "timing"}  # fmt: skip
    assert all((out / p / "result.json").is_file() for p in parts)
    top = suite.AllResult.load(out)
    skipped = ["seq-len", "hidden-size", "synthetic", "memory-capacity"]
    assert top.kind == "diagnose_all" and top.skipped == skipped
    assert top.settings["gradient-flow"]["seq_len"] == 20
    assert top.settings["timing"]["lengths"] == [4, 8]


def test_default_out_folder_is_under_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, _ = _run(["diagnose", "padding", *DATA, "--batch-size", "8"], capsys)
    assert code == 0
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.endswith("-padding-imdb") and _kind(folder) == "padding"


# ----- bad input -------------------------------------------------------------------------------
BAD = [
    (
        ["diagnose", "gradient-flow", "--run", "no/such/run"],
        "run folder no/such/run does not exist",
    ),
    (["diagnose", "hidden-states", "--run", "{incomplete}"], "has no config.yaml"),
    (["diagnose", "gradient-flow", *DATA, "--models", "rnn,lstmm"], "unknown model 'lstmm'"),
    (["diagnose", "gradient-flow", *DATA, "--seq-len", "0"], "--seq-len must be positive"),
    (
        ["diagnose", "gradient-flow", *DATA, *TINY, "--seq-len", "5000"],
        "has no text with at least 5000 tokens (longest:",
    ),
    (["diagnose", "embedding-grad", *DATA, "--lengths", "50,0"], "--lengths must be positive"),
    (
        ["diagnose", "embedding-grad", *DATA, "--lengths", "50,x"],
        "argument --lengths: expected integers, got 'x'",
    ),
    (["diagnose", "hidden-states", *DATA, *TINY, "--min-len", "100000"], "only 0 negative texts"),
    (["diagnose", "padding", *DATA, "--batch-size", "-1"], "--batch-size must be positive"),
    (["diagnose", "all", *DATA, "--skip", "everything"], "unknown part(s) everything"),
    (["diagnose", "all", *DATA, *TINY, "--seq-len", "5000"], "no text with at least 5000 tokens"),
    (["sweep", "seq-len", *DATA, "--lengths", "-5"], "--lengths must be positive"),
    (["sweep", "seq-len", *DATA, "--models", "gpt"], "unknown model 'gpt'"),
    (["sweep", "hidden", *DATA, "--sizes", "0"], "--sizes must be positive"),
    (["bench", "timing", "--lengths", "0,10"], "--lengths must be positive"),
    (["bench", "timing", "--modes", "fused"], "unknown --modes value(s) fused"),
    (["bench", "timing", "--flush-denormal", "maybe"], "unknown --flush-denormal value(s) maybe"),
    (["synthetic", "parity", "--lengths", "1"], "at least 2"),
    (["diagnose", "all", *DATA, "--gradient-flow-seq-len", "0"], "--seq-len must be positive"),
    (["bench", "timing", "--models", "rnn", "--run", "x"], "either --models"),
]


@pytest.mark.parametrize(
    ("args", "message"), BAD, ids=[" ".join(a[:2]) + f"-{i}" for i, (a, _) in enumerate(BAD)]
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    args: list[str],
    message: str,
    tiny_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "summary.json").write_text((tiny_run / "summary.json").read_text())
    args = [a.replace("{incomplete}", str(incomplete)) for a in args]
    out = tmp_path / "out"
    code, _, err = _run([*args, "--out", str(out)], capsys)
    assert code == 2
    assert err.startswith("rnnlab: error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_a_non_empty_out_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "used"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, _, err = _run(["diagnose", "padding", *DATA, "--out", str(out)], capsys)
    assert code == 2 and "already exists and is not empty" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_failing_diagnose_all_removes_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rnnlab.errors import RnnlabError

    def fail(*args: object, **kwargs: object) -> None:
        raise RnnlabError("the timing part failed")

    monkeypatch.setattr("rnnlab.diagnostics.timing.bench_timing", fail)
    out = tmp_path / "all"
    code, _, err = _run(
        ["diagnose", "all", *DATA, *TINY, "--models", "rnn", "--split", "train", "--seq-len",
         "10", "--embed-lengths", "5", "--min-len", "10", "--per-class", "1", "--out", str(out),
         "--skip", "seq-len,hidden-size,synthetic,memory-capacity", "--quiet"],
        capsys,
    )  # fmt: skip
    assert code == 2 and err == "rnnlab: error: the timing part failed\n"
    assert not out.exists()


def test_bad_input_through_the_real_entry_point(tmp_path: Path) -> None:
    env = {**os.environ, "RNNLAB_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "rnnlab", "diagnose", "gradient-flow", "--run", str(tmp_path / "x")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert (
        result.stderr.startswith("rnnlab: error: run folder") and "Traceback" not in result.stderr
    )
