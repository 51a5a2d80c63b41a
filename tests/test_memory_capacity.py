"""The memory-capacity diagnostic: its readings under the seed rule (from made-up cells, no
training), a tiny end-to-end CLI run, and its bad input. The registry contract test
(tests/test_registry.py) runs, saves, loads and renders it too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnlab.cli import main
from rnnlab.diagnostics.memory_capacity import (
    CapacityCell,
    MemoryCapacityResult,
    Settings,
    holds,
    key_blind_accuracy,
    key_blind_pairs,
    reference_gaps,
)
from rnnlab.errors import RnnlabError


def made_up(accuracy: dict[tuple[str, int], list[float]]) -> MemoryCapacityResult:
    """A result whose cells have these accuracies (per (model, pairs), one per seed)."""
    models = list(dict.fromkeys(m for m, _ in accuracy))
    pairs = sorted({n for _, n in accuracy})
    result = MemoryCapacityResult(pairs, models, [0, 1, 2], 0.125, {"state_size": 8,
                                  "vocab_size": 8, "epochs": 1, "num_examples": 10_000})  # fmt: skip
    for (model, n), values in accuracy.items():
        for seed, value in enumerate(values):
            result.cells.append(
                CapacityCell(model, n, seed, value, 1000, 1, 1, 0.1, 100, "completed")
            )
    result.summarize()
    return result


def test_readings_hold_pairs_fall_and_compare_with_the_reference() -> None:
    result = made_up({
        ("lstm", 1): [1.0, 0.99, 1.0], ("lstm", 2): [0.95, 0.92, 0.97], ("lstm", 4): [0.4, 0.5, 0.3],
        ("transformer", 1): [1.0, 1.0, 1.0], ("transformer", 2): [0.99, 1.0, 0.98],
        ("transformer", 4): [0.9, 0.95, 0.25],  # one seed below the lstm: not settled
        ("rnn", 1): [0.5, 0.95, 0.97], ("rnn", 2): [0.3, 0.3, 0.3], ("rnn", 4): [0.2, 0.2, 0.2],
    })  # fmt: skip
    assert (holds(result, "lstm"), holds(result, "transformer"), holds(result, "rnn")) == (
        2,
        2,
        None,
    )
    assert key_blind_pairs(result, "rnn") == [2, 4] and key_blind_pairs(result, "lstm") == []
    gaps = reference_gaps(result)
    assert len(gaps) == 2 and "transformer is above rnn with every seed" in gaps[1]
    assert "vs lstm" in gaps[0] and "not settled with 3 seed(s)" in gaps[0]
    text = " ".join(result.reading)
    assert "lstm falls from" in text and "lstm up to N=2" in text and "rnn not even N=1" in text
    (table,) = result.tables()
    assert [row[0] for row in table.rows] == ["lstm", "transformer", "rnn"]


def test_key_blind_guess_is_the_expected_share_of_the_most_frequent_value() -> None:
    assert key_blind_accuracy(1, 8) == 1.0
    # two values from two symbols: equal (both right) half the time, else one right in two
    assert abs(key_blind_accuracy(2, 2) - 0.75) < 0.01
    assert key_blind_accuracy(8, 8) == key_blind_accuracy(8, 8) < key_blind_accuracy(4, 8)


def test_tiny_cli_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "capacity"
    code = main([
        "diagnose", "memory-capacity", "--pairs", "1,2", "--models", "rnn,bow",
        "--state-size", "4", "--vocab-size", "2", "--seeds", "1", "--epochs", "1",
        "--num-examples", "40", "--out", str(out), "--quiet",
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads((out / "result.json").read_text())
    assert result["kind"] == "memory_capacity" and result["pairs"] == [1, 2]
    assert result["models"] == ["rnn"] and result["chance"] == 0.5
    assert [c["pairs"] for c in result["cells"]] == [1, 2]
    assert result["not_applicable"][0]["label"] == "bow"  # no state to size: one line
    assert (out / "accuracy_vs_pairs.png").read_bytes()[:4] == b"\x89PNG"
    assert "N=2" in captured.out and "not applicable to bow" in captured.out


def test_bad_settings_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RnnlabError, match="fewer keys than the 8 pairs"):
        Settings(pairs=(1, 8), vocab_size=4)
    with pytest.raises(RnnlabError, match="--pairs must be positive"):
        Settings(pairs=(0, 2))
    assert main(["diagnose", "memory-capacity", "--models", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nope'" in err and "Traceback" not in err
