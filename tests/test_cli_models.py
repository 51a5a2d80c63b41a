"""`rnnlab models`."""

from __future__ import annotations

import json

import pytest

from rnnlab.cli import main
from rnnlab.models import list_models

SMALL = ["--vocab-size", "30", "--embed-dim", "6", "--hidden-dim", "8"]


def test_table_lists_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", *SMALL]) == 0
    out = capsys.readouterr().out
    for name in list_models():
        assert name in out
    for header in ("embedding", "recurrent", "head", "total"):
        assert header in out


def test_json_counts_add_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", *SMALL, "--num-classes", "4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == list_models()
    for row in rows:
        counts = row["parameters"]
        buckets = row["spec"]["hash_buckets"] if row["spec"]["kind"] == "bow" else 0
        assert counts["embedding"] == (30 + buckets) * 6  # bow: word and hashed pair rows
        assert counts["total"] == counts["embedding"] + counts["recurrent"] + counts["head"]
        assert row["description"] and row["spec"]["hidden_dim"] == 8
    lstm = next(row for row in rows if row["name"] == "lstm")
    assert lstm["parameters"]["recurrent"] == 4 * 8 * (6 + 8) + 2 * 4 * 8
    assert lstm["parameters"]["head"] == 8 * 4 + 4


def test_default_sizes_are_the_notebooks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["lstm"]["parameters"]["embedding"] == 20_000 * 100
    assert rows["lstm"]["parameters"]["recurrent"] == 4 * 128 * (100 + 128) + 2 * 4 * 128


def test_bad_size_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--hidden-dim", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnlab: error: hidden_dim") and err.count("\n") == 1
