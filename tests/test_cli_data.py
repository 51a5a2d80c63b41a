from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console entry point, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "rnnlab", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )


def test_datasets_lists_every_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "--json"]) == 0
    names = [row["name"] for row in json.loads(capsys.readouterr().out)]
    assert names[:4] == ["imdb", "rotten_tomatoes", "bbc_news", "ag_news"]


def test_datasets_show_bundled_imdb_end_to_end() -> None:
    result = run_cli("datasets", "show", "imdb")
    assert result.returncode == 0, result.stderr
    assert "imdb (bundled)" in result.stdout and "19,9" in result.stdout  # train examples
    assert "<unk>" in result.stdout and "negative" in result.stdout


def test_datasets_show_json_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "show", "bbc_news", "--json", "--max-size", "5000"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["vocab_size"] == 5000 and len(summary["label_names"]) == 5
    train = summary["splits"]["train"]
    assert train["mean_tokens"] > 100 and 0 < train["unk_share"] < 0.2
    assert sum(train["label_counts"].values()) == train["examples"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["datasets", "show", "imdbb"], "unknown dataset 'imdbb'; valid names: imdb"),
        (["datasets", "show", "missing/file.csv"], "does not exist"),
        (["datasets", "show", "imdb", "--max-len", "0"], "max_len must be positive"),
        (["datasets", "show", "imdb", "--max-size", "-1"], "max_size must be greater than 2"),
        (
            ["datasets", "show", "imdb", "--tokenizer", "pretrained:nope.json"],
            "tokenizer file nope.json does not exist",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_input_through_the_real_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "one_class.csv"
    path.write_text("text,label\nfine,pos\ngood,pos\n")
    result = run_cli("datasets", "show", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith("rnnlab: error:") and "single label" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
