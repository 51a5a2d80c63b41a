"""The findings list: the seed rule on hand-made results, study-to-study comparison, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rnnlab.cli import main
from rnnlab.diagnostics.synthetic import SyntheticCell, SyntheticResult
from rnnlab.report.collect import Collection, CompareFolder, ResultFolder, TrainingRun
from rnnlab.report.findings import (
    HOLDS,
    NOT_SETTLED,
    by_id,
    compare_findings_lines,
    findings,
)
from rnnlab.report.sections import certainty_section


def pair(seed: int, p: float, only_gru: int, only_rnn: int) -> dict[str, Any]:
    """One seed's McNemar test of gru against rnn, as compare.json's "paired" holds it."""
    return {
        "a": f"gru-seed{seed}", "b": f"rnn-seed{seed}", "model_a": "gru", "model_b": "rnn",
        "only_a": only_gru, "only_b": only_rnn, "p_value": p, "examples": 500, "seed": seed,
        "method": "exact",
    }  # fmt: skip


def compared(
    *pairs: dict[str, Any], over_seeds: float | None = None, left_out: float = 1e-3
) -> Collection:
    """A compare folder of gru and rnn over 3 seeds: the per-seed tests `pairs` and, with
    `over_seeds`, the p-value of the test over the seeds together (and `left_out`, that of the
    same test with each seed left out in turn)."""
    rows = [
        {"model": m, "seed": s, "test_accuracy": acc}
        for s in range(3)
        for m, acc in (("gru", 0.87 + s / 100), ("rnn", 0.70 + s / 100))
    ]
    pooled = {**pair(0, over_seeds or 1.0, 0, 0), "seeds": [0, 1, 2], "left_out": [left_out] * 3}
    data = {"models": ["gru", "rnn"], "seeds": [0, 1, 2], "rows": rows, "paired": list(pairs),
            "over_seeds": [pooled] if over_seeds is not None else []}  # fmt: skip
    return Collection(roots=[], compares=[CompareFolder(Path("c"), data, None)])


def test_a_pair_holds_only_when_every_seed_puts_it_ahead_and_the_seeds_together_agree() -> None:
    ahead = (pair(0, 1e-4, 60, 10), pair(1, 0.2, 40, 30), pair(2, 0.03, 35, 20))
    (every,) = findings(compared(*ahead, over_seeds=1e-5))
    assert every.id == "compare:gru-vs-rnn" and every.verdict == HOLDS and every.winner == "gru"
    assert every.seeds == [0, 1, 2] and every.p_values == [1e-4, 0.2, 0.03]
    assert every.p_value == 1e-5
    assert every.values == {"gru": [0.87, 0.88, 0.89], "rnn": [0.70, 0.71, 0.72]}
    assert every.reading.startswith("gru beats rnn, ahead with each of 3 seeds")
    (weak,) = findings(compared(*ahead, over_seeds=0.08))
    assert weak.verdict == NOT_SETTLED and weak.winner is None  # the seeds together: p >= 0.05
    assert "not settled with 3 seeds (gru ahead with 3 of 3" in weak.reading
    assert "87.0" in weak.reading and "72.0" in weak.reading  # the per-seed spread
    (one_seed_carries,) = findings(compared(*ahead, over_seeds=1e-5, left_out=0.07))
    assert one_seed_carries.verdict == NOT_SETTLED  # without one of the seeds: p >= 0.05
    (split,) = findings(
        compared(pair(0, 1e-4, 60, 10), pair(1, 1e-4, 10, 60), pair(2, 1e-4, 60, 10),
                 over_seeds=1e-4)
    )  # fmt: skip
    assert split.verdict == NOT_SETTLED  # significant every time, but not the same winner
    assert "gru ahead with 2 of 3" in split.reading
    (tie,) = findings(
        compared(pair(0, 1e-4, 60, 10), pair(1, 1.0, 20, 20), pair(2, 1e-4, 60, 10),
                 over_seeds=1e-6)
    )  # fmt: skip
    assert tie.verdict == NOT_SETTLED  # one seed put neither model ahead
    (old,) = findings(compared(pair(0, 0.01, 20, 20)))
    assert old.verdict == NOT_SETTLED  # one seed: p says significant, yet no one won a text more
    assert findings(compared(*ahead)) == []  # several seeds but no test over them: no finding


def cell(model: str, seed: int, max_len: int, accuracy: float) -> SimpleNamespace:
    return SimpleNamespace(
        model=model, seed=seed, max_len=max_len, test_accuracy=accuracy, test_examples=2000
    )


def sweep(*cells: SimpleNamespace) -> Collection:
    result = SimpleNamespace(models=["rnn"], cells=list(cells))
    folder = ResultFolder(Path("s"), "seq_len", {}, [], None, result)  # type: ignore[arg-type]
    return Collection(roots=[], results=[folder])


def test_a_sweep_change_holds_only_when_every_seed_moves_the_same_way() -> None:
    falls = [cell("rnn", s, 50, 0.75) for s in range(3)] + [
        cell("rnn", s, 200, 0.68) for s in range(3)
    ]
    (found,) = findings(sweep(*falls))
    assert found.id == "seq_len:rnn" and found.verdict == HOLDS and found.winner == "falls"
    assert len(found.p_values) == 3 and all(p is not None and p < 0.05 for p in found.p_values)
    assert found.values == {"L=50": [0.75] * 3, "L=200": [0.68] * 3}
    one_flat = [*falls[:5], cell("rnn", 2, 200, 0.75)]  # seed 2 does not move
    (found,) = findings(sweep(*one_flat))
    assert found.verdict == NOT_SETTLED and found.winner is None
    assert "not settled with 3 seeds" in found.reading
    one_carries = [
        *(cell("rnn", s, 50, 0.75) for s in range(3)),
        cell("rnn", 0, 200, 0.60), cell("rnn", 1, 200, 0.745), cell("rnn", 2, 200, 0.745),
    ]  # fmt: skip
    (found,) = findings(sweep(*one_carries))  # seed 0 alone carries the fall
    assert found.p_value is not None and found.p_value < 0.05 and found.verdict == NOT_SETTLED


def synthetic(values: list[float]) -> Collection:
    cells = [
        SyntheticCell("gru", 10, seed, v, None, None, 1.0, 1.0, 5, 5, None, 100, "completed")
        for seed, v in enumerate(values)
    ]
    result = SyntheticResult(
        task="remember-first", metric="accuracy", chance=0.5, lengths=[10], models=["gru"],
        seeds=list(range(len(values))), settings={"test_examples": 300}, cells=cells,
    )  # fmt: skip
    result.summarize()
    folder = ResultFolder(Path("y"), "synthetic", {}, [], None, result)
    return Collection(roots=[], results=[folder])


def test_a_synthetic_cell_is_above_chance_only_when_every_seed_is() -> None:
    (found,) = findings(synthetic([0.97, 0.96, 0.95]))
    assert found.id == "synthetic:remember-first:gru:T=10"
    assert found.verdict == HOLDS and found.winner == "above chance"
    (found,) = findings(synthetic([0.97, 0.52, 0.95]))
    assert found.verdict == NOT_SETTLED and found.winner is None
    result = synthetic([0.97, 0.52, 0.95]).results[0].result
    assert any("gru: not settled with 3 seeds at T=10" in line for line in result.reading)  # type: ignore[union-attr]


def finding(key: str, verdict: str, winner: str | None = None) -> dict[str, Any]:
    return {"id": key, "verdict": verdict, "winner": winner, "claim": key}


def test_two_studies_compared_line_by_line() -> None:
    a = [finding("compare:gru-vs-rnn", HOLDS, "gru"), finding("compare:bow-vs-gru", HOLDS, "bow"),
         finding("seq_len:rnn", NOT_SETTLED), finding("seq_len:lstm", HOLDS, "rises"),
         finding("only:a", NOT_SETTLED)]  # fmt: skip
    b = [finding("compare:gru-vs-rnn", HOLDS, "gru"), finding("compare:bow-vs-gru", NOT_SETTLED),
         finding("seq_len:rnn", NOT_SETTLED), finding("seq_len:lstm", HOLDS, "falls")]  # fmt: skip
    lines = compare_findings_lines(a, b, ("A", "B"))
    assert lines[0].split() == ["agree", "compare:gru-vs-rnn:", "holds:", "gru"]
    assert lines[1].startswith("differ") and "holds: bow | not settled" in lines[1]
    assert lines[2].startswith("agree") and "seq_len:rnn: not settled" in lines[2]
    assert lines[3].startswith("reversed") and "holds: rises | holds: falls" in lines[3]
    assert lines[4].startswith("only in A") and "only:a" in lines[4]
    assert lines[5] == "agree 2, differ 1, reversed 1, only in one 1 (A | B)"


def write_study(folder: Path, found: list[dict[str, Any]]) -> Path:
    folder.mkdir()
    (folder / "study.json").write_text(json.dumps({"settings": {}, "findings": found}))
    return folder


def test_cli_compare_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_study(tmp_path / "intel", [finding("compare:bow-vs-gru", NOT_SETTLED)])
    b = write_study(tmp_path / "amd", [finding("compare:bow-vs-gru", HOLDS, "bow")])
    assert main(["report", str(a), "--compare-findings", str(b)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("differ") and "compare:bow-vs-gru" in out[0]
    assert main(["report", str(a), "--compare-findings", str(a)]) == 0
    assert capsys.readouterr().out.startswith("agree")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "study.json").write_text("{not json")
    old = write_study(tmp_path / "old", [])
    (old / "study.json").write_text(json.dumps({"settings": {}}))  # written before findings
    (tmp_path / "empty").mkdir()
    for other in (tmp_path / "missing", tmp_path / "empty", damaged, old):
        assert main(["report", str(a), "--compare-findings", str(other)]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1, captured.err
        assert captured.err.startswith("rnnlab: error: ") and "Traceback" not in captured.err


def test_cli_compare_findings_writes_no_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    a = write_study(tmp_path / "a", [finding("seq_len:rnn", NOT_SETTLED)])
    assert main(["report", str(a), "--compare-findings", str(a)]) == 0
    assert not (tmp_path / "report.html").exists()
    assert main(["report", "--compare-findings", str(a)]) == 2  # needs the first study
    assert capsys.readouterr().err.count("\n") == 1


def run(seed: int, accuracy: float) -> TrainingRun:
    summary = {"seed": seed, "status": "completed", "model": {"name": "gru"},
               "test": {"examples": 500, "accuracy": accuracy}}  # fmt: skip
    return TrainingRun(Path(f"c/gru-seed{seed}"), f"gru-seed{seed}", summary, [], {}, "", {}, None)


def test_the_header_counts_the_seeds_and_lists_the_findings() -> None:
    c = compared(
        pair(0, 1e-4, 60, 10), pair(1, 0.2, 25, 30), pair(2, 1e-3, 50, 20), over_seeds=1e-4
    )
    c.runs = [run(s, 0.87) for s in range(3)]
    section = certainty_section(c)
    assert section is not None
    assert ("seeds of the compared models", "3 (0, 1, 2)") in section.facts
    (table,) = section.tables
    assert table.rows[0][:3] == ["compare:gru-vs-rnn", NOT_SETTLED, "—"]
    assert by_id(findings(c))["compare:gru-vs-rnn"].reading == table.rows[0][3]
