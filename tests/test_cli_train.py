"""`rnnlab train / compare / evaluate / predict` end to end, flags -> RunConfig, bad inputs."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rnnlab.cli import main
from rnnlab.cli.options import add_run_options, run_config_from_args
from rnnlab.config import RunConfig

POSITIVE = ["good", "great", "fun", "wonderful", "brilliant"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible"]
NEUTRAL = ["the", "movie", "plot", "actor", "film", "scene"]
TINY = [
    "--max-len",
    "20",
    "--embed-dim",
    "8",
    "--hidden-dim",
    "16",
    "--batch-size",
    "16",
    "--lr",
    "0.01",
]


@pytest.fixture
def corpus(write_csv: Any) -> Path:
    rng = np.random.default_rng(0)
    rows: list[list[Any]] = [["review", "sentiment"]]
    for i in range(200):
        words = [*rng.choice(POSITIVE if i % 2 else NEGATIVE, 3), *rng.choice(NEUTRAL, 3)]
        rows.append([" ".join(words) + f" {i}", "positive" if i % 2 else "negative"])
    return write_csv(rows, "reviews.csv")


def parse(*argv: str) -> RunConfig:
    parser = argparse.ArgumentParser()
    add_run_options(parser)
    return run_config_from_args(parser.parse_args(list(argv)))


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("rnnlab: error: ")
    return lines[0]


@pytest.mark.known_answer
def test_train_evaluate_predict_end_to_end(
    tmp_path: Path,
    corpus: Path,
    capsys: pytest.CaptureFixture[str],
    seed: int,
    record_property: Any,
) -> None:
    """Worst over kernels off / base / avx2, 1 and 2 threads, seeds 0-4 (AMD EPYC, 2026-12-07):
    test accuracy 0.9 on 20 texts (needs > 0.8); the probability of the right label of the two
    predicted texts 0.77 (needs > 0.5)."""
    argv = ["train", "--dataset", str(corpus), "--model", "lstm", "--epochs", "5", *TINY,
            "--seed", str(seed)]  # fmt: skip
    assert main([*argv, "--no-progress", "--out", str(tmp_path), "--name", "r", "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)  # stdout holds only the summary
    record_property("accuracy", summary["test"]["accuracy"])
    assert summary["status"] == "completed" and summary["test"]["accuracy"] > 0.8
    assert err.count("epoch ") == summary["epochs_run"]  # the epoch lines went to stderr
    run_dir = tmp_path / "r"

    assert main(["evaluate", str(run_dir), "--split", "val"]) == 0
    text = capsys.readouterr().out
    assert "(val split)" in text and "macro-F1" in text and "confusion" in text
    assert "negative" in text and "accuracy by length" in text
    assert main(["evaluate", str(run_dir), "--dataset", str(corpus), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 20  # its own data: the test split
    copy = tmp_path / "copy.csv"
    copy.write_bytes(corpus.read_bytes())
    assert main(["evaluate", str(run_dir), "--dataset", str(copy), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["examples"] == 200 and len(metrics["confusion"]["matrix"]) == 2

    # shaped like the corpus: three polar words, then three neutral ones
    good, bad = "great wonderful fun the movie plot", "awful boring dull the movie plot"
    assert main(["predict", str(run_dir), good, bad, "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)
    record_property(
        "p_right_label",
        min(
            predictions[0]["probabilities"]["positive"], predictions[1]["probabilities"]["negative"]
        ),
    )
    assert [p["label"] for p in predictions] == ["positive", "negative"]
    assert set(predictions[0]["probabilities"]) == {"negative", "positive"}
    texts = tmp_path / "texts.txt"
    texts.write_text(f"{good}\n\nterrible boring dull the film scene\n")
    assert main(["predict", str(run_dir), "--file", str(texts)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("positive") and "terrible" in lines[1]


def test_train_prints_a_summary_line(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "train",
        "--dataset",
        str(corpus),
        "--model",
        "rnn",
        "--epochs",
        "1",
        *TINY,
        "--no-progress",
    ]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("epoch 1/1")
    assert out[1].startswith("test accuracy") and "tok/s" in out[1]
    saved = Path(out[2].removeprefix("saved "))
    assert saved.parent == tmp_path and saved.name.endswith("rnn-reviews")


def test_compare_prints_one_table(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compare", "--dataset", str(corpus), "--models", "rnn,gru", "--epochs", "1", *TINY]
    assert main([*argv, "--no-progress", "--out", str(tmp_path), "--name", "c"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "│" in line or "┃" in line]
    cells = [[c.strip() for c in line.strip("│┃ ").replace("┃", "│").split("│")] for line in lines]
    assert cells[0] == [
        "model", "parameters", "test acc", "95% interval", "macro-F1", "s/epoch", "tokens/s",
        "best", "status",
    ]  # fmt: skip
    assert "(McNemar, p" in out
    assert [row[0] for row in cells[1:]] == ["rnn", "gru"]
    assert all(row[-1] == "completed" for row in cells[1:])
    assert (tmp_path / "c" / "compare.json").is_file() and (
        tmp_path / "c" / "compare_curves.png"
    ).is_file()
    assert (tmp_path / "c" / "rnn" / "summary.json").is_file()


def test_compare_with_seeds_prints_mean_and_std_over_them(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compare", "--dataset", str(corpus), "--models", "rnn,gru", "--epochs", "1", *TINY]
    argv += ["--seeds", "2", "--no-progress", "--out", str(tmp_path), "--name", "c"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "compare over 2 seeds" in out and "mean ± std" in out
    assert "with each of 2 seeds (McNemar" in out or "not settled with 2 seeds" in out
    assert (tmp_path / "c" / "gru-seed1" / "summary.json").is_file()
    assert main([*argv[:-4], "--seeds", "0", "--out", str(tmp_path), "--name", "d"]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_flags_override_the_yaml_config(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "data": {"dataset": "bbc_news", "max_len": 100},
                "model": {"name": "gru"},
                "train": {"epochs": 7, "lr": 0.1},
            }
        )
    )
    config = parse("--config", str(path), "--epochs", "2", "--hidden-dim", "32")
    assert config.data.dataset == "bbc_news" and config.data.max_len == 100
    assert config.model.name == "gru" and config.model.hidden_dim == 32
    assert config.train.epochs == 2 and config.train.lr == 0.1
    assert parse().to_dict() == RunConfig().to_dict()  # no flags: the defaults


def test_flags_that_switch_things_off() -> None:
    config = parse("--max-len", "none", "--clip-norm", "none", "--patience", "0", "--limit", "300")
    assert config.data.max_len is None and config.data.limit == 300
    assert config.train.clip_norm is None and config.train.patience is None
    config = parse("--no-bucket", "--no-progress", "--bidirectional", "--deterministic", "--amp")
    assert not config.train.bucket and not config.train.progress and config.train.deterministic
    assert config.model.bidirectional is True and config.train.amp is True
    assert parse("--no-bidirectional").model.bidirectional is False
    assert (
        parse(
            "--monitor", "val_loss", "--schedule", "cosine", "--optimizer", "adamw"
        ).train.schedule
        == "cosine"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--epochs", "-1"], "epochs must be at least 1"),
        (["train", "--batch-size", "0"], "batch_size must be positive"),
        (["evaluate", "no/such/run"], "does not exist"),
        (["predict", "no/such/run", "hello"], "does not exist"),
        (["train", "--config", "missing.yaml"], "does not exist"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in one_error_line(capsys.readouterr().err)


def test_incomplete_run_folder_and_empty_text(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "train",
        "--dataset",
        str(corpus),
        "--model",
        "rnn",
        "--epochs",
        "1",
        *TINY,
        "--no-progress",
    ]
    assert main([*argv, "--out", str(tmp_path), "--name", "r"]) == 0
    capsys.readouterr()
    run_dir = tmp_path / "r"
    assert main(["predict", str(run_dir), ""]) == 2
    assert "empty" in one_error_line(capsys.readouterr().err)
    assert main(["predict", str(run_dir)]) == 2
    assert "no text" in one_error_line(capsys.readouterr().err)
    assert main([*argv, "--out", str(tmp_path), "--name", "r"]) == 2
    assert "already exists" in one_error_line(capsys.readouterr().err)
    (run_dir / "model.pt").unlink()
    assert main(["evaluate", str(run_dir)]) == 2
    assert "model.pt" in one_error_line(capsys.readouterr().err)


def test_real_entry_point_reports_errors_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rnnlab", "evaluate", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert result.returncode == 2
    assert "does not exist" in one_error_line(result.stderr)


def test_bundled_imdb_train_evaluate_predict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.perf_counter()
    argv = [
        "train",
        "--dataset",
        "imdb",
        "--model",
        "lstm",
        "--limit",
        "300",
        "--epochs",
        "1",
        "--max-len",
        "64",
    ]
    assert main([*argv, "--no-progress", "--out", str(tmp_path), "--name", "imdb", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (
        summary["dataset"]["sizes"]["train"]
        + summary["dataset"]["sizes"]["val"]
        + summary["dataset"]["sizes"]["test"]
        == 300
    )
    assert summary["test"]["confusion"]["labels"] == ["negative", "positive"]
    assert main(["evaluate", str(tmp_path / "imdb"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(
        summary["test"]["accuracy"]
    )
    assert (
        main(["predict", str(tmp_path / "imdb"), "An absolute masterpiece, I loved it.", "--json"])
        == 0
    )
    [prediction] = json.loads(capsys.readouterr().out)
    assert prediction["label"] in ("negative", "positive")
    print(
        f"imdb e2e: {time.perf_counter() - start:.1f} s, {summary['train_tokens_per_s']:,.0f} tok/s"
    )


def test_kernels_that_cannot_build_fail_before_a_run_folder_exists(
    tmp_path: Path,
    corpus: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """RNNLAB_CPU_KERNELS=on and no working compiler: one error line, exit 2, no run folder."""
    from rnnlab.models import kernels

    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("RNNLAB_KERNELS_DIR", str(tmp_path / "kernels"))
    monkeypatch.setenv("RNNLAB_CPU_KERNELS", "on")
    kernels._extension.cache_clear()
    try:
        argv = ["train", "--dataset", str(corpus), "--model", "gru", "--epochs", "1", *TINY]
        assert main([*argv, "--out", str(tmp_path / "runs")]) == 2
    finally:
        kernels._extension.cache_clear()
    progress, error = capsys.readouterr().err.strip().splitlines()  # the build's one note, then
    assert progress.startswith("rnnlab: compiling the fused CPU kernels")
    line = one_error_line(error)
    assert "cannot build the fused CPU kernels" in line and "no-such-compiler" in line
    assert not (tmp_path / "runs").exists()
