"""The new families through the diagnostics: every diagnostic takes every family, and one that
does not apply to a model says so in one line (CLI, result.json, report), never crashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnlab.cli import main
from rnnlab.config import DataConfig, ModelConfig, RunConfig
from rnnlab.data.encoded import EncodedSplits
from rnnlab.diagnostics import Inputs, ModelEntry, fresh_models, read_result, registry, suite
from rnnlab.diagnostics.embedding_grad import embedding_grad
from rnnlab.diagnostics.gradient_flow import gradient_flow
from rnnlab.diagnostics.hidden_size import hidden_size_sweep
from rnnlab.diagnostics.inputs import whole_texts
from rnnlab.diagnostics.result import NotApplicableResult
from rnnlab.diagnostics.timing import bench_timing
from rnnlab.report import render

TINY = ModelConfig(embed_dim=8, hidden_dim=8)
DATA = DataConfig(dataset="imdb", limit=60)
NEW = ["bow", "mingru", "minlstm", "transformer"]


@pytest.fixture(scope="module")
def splits() -> EncodedSplits:
    return whole_texts(DATA)


@pytest.fixture(scope="module")
def entries(splits: EncodedSplits) -> list[ModelEntry]:
    return fresh_models(["gru", *NEW], splits, seed=0, model=TINY)


def _inputs(models: list[str]) -> Inputs:
    return Inputs(RunConfig(data=DATA, model=TINY), models=models, dataset_given=True)


def test_gradient_flow_reaches_every_family(entries: list[ModelEntry]) -> None:
    result = gradient_flow(entries, seq_len=24, batch_size=3)
    by = {m.label: m for m in result.models}
    for label in ["gru", *NEW]:
        assert all(v is not None and v > 0 for v in by[label].grad_x), label
    for label in ("gru", "mingru", "minlstm"):  # per-step states: dL/dh_t through the trace
        assert by[label].grad_h is not None and by[label].trace_max_rel_diff is not None
        assert by[label].trace_max_rel_diff < 1e-10  # float64: the trace is the same model
    for label in ("bow", "transformer"):
        assert by[label].grad_h is None and by[label].h_at_steps is None
        assert "no " in by[label].reading_h  # says why, in words
    assert by["bow"].ratio_x == pytest.approx(1.0)  # a mean: every word gets the same gradient
    h_table = result.tables()[1]
    assert {row[0] for row in h_table.rows} == {"gru", "mingru", "minlstm"}
    assert any("not applicable to transformer" in note for note in h_table.notes)
    again = type(result).from_dict(result.to_dict())
    assert again.models[1].grad_h is None
    result.figures()[0].draw()  # the dL/dh panel leaves out the families without states


def test_hidden_states_leave_out_families_without_states(tmp_path: Path) -> None:
    entry = registry.get("hidden-states")
    settings = entry.settings(per_class=1, min_len=20, max_steps=30)
    inputs = _inputs(["gru", "bow", "mingru", "transformer"])
    result = suite.run_one(entry, settings, inputs)
    assert [m.label for m in result.models] == ["gru", "mingru"]  # type: ignore[attr-defined]
    assert [n.label for n in result.not_applicable] == ["bow", "transformer"]
    lines = result.notices()
    assert lines[0].startswith("hidden-states: not applicable to bow:")
    result.save(tmp_path / "some")
    loaded = read_result(tmp_path / "some")
    assert loaded.notices() == lines

    none = suite.run_one(entry, settings, _inputs(["bow", "transformer"]))
    assert isinstance(none, NotApplicableResult) and none.tables() == []
    assert none.notices()[1].startswith("hidden-states: not applicable to transformer:")
    none.save(tmp_path / "none")
    assert read_result(tmp_path / "none").notices() == none.notices()

    html = render([tmp_path], tmp_path / "report.html").read_text()
    assert 'id="hidden-states"' in html
    assert "not applicable to transformer" in html and "not applicable to bow" in html


def test_cli_prints_one_line_per_model_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["diagnose", "hidden-states", "--dataset", "imdb", "--limit", "60", "--models",
            "bow,mingru", "--embed-dim", "8", "--hidden-dim", "8", "--per-class", "1",
            "--min-len", "20", "--max-steps", "30", "--out", str(tmp_path / "hs")]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("not applicable to bow") == 1 and "mingru" in out
    args = [*args[:7], "bow,transformer", *args[8:-1], str(tmp_path / "none")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "not applicable to bow" in out and "not applicable to transformer" in out
    assert "Traceback" not in out


def test_timing_runs_only_the_modes_a_family_has(entries: list[ModelEntry]) -> None:
    models = [(e.label, e.model, "fresh") for e in entries]
    result = bench_timing(
        models, lengths=(4, 8), batch_size=2, repeats=1, warmup=0, flush_denormal=("on",)
    )
    modes = {m.label: [t.mode for t in m.modes] for m in result.models}
    assert modes["gru"] == ["padded", "packed", "scratch"]
    assert modes["mingru"] == ["padded", "scratch"]  # the parallel scan, the step loop
    assert modes["bow"] == modes["transformer"] == ["padded"]
    skipped = {(n.label, n.reason.split(" ")[0]) for n in result.not_applicable}
    assert ("mingru", "packed") in skipped and ("transformer", "scratch") in skipped
    assert len(result.notices()) == 6  # bow, transformer: 2 each; mingru, minlstm: packed
    assert type(result).from_dict(result.to_dict()).notices() == result.notices()


def test_embedding_grad_counts_the_encoder_of_every_family(entries: list[ModelEntry]) -> None:
    result = embedding_grad(entries, lengths=(8, 16), batch_size=3)
    by = {m.label: m for m in result.models}
    assert by["bow"].recurrent == [None, None]  # no sequence encoder
    for label in ("gru", "mingru", "transformer"):
        assert all(v is not None and v > 0 for v in by[label].recurrent)


def test_hidden_size_sweep_leaves_out_the_bag_of_ngrams() -> None:
    config = RunConfig(data=DataConfig(dataset="imdb", limit=80, max_len=24), model=TINY)
    result = hidden_size_sweep(
        config, sizes=(4, 8), models=("bow", "mingru"), epochs=1, limit=80, max_len=24
    )
    assert result.models == ["mingru"] and {c.model for c in result.cells} == {"mingru"}
    assert result.notices() == [
        "hidden-size: not applicable to bow: bag of n-grams: it has no hidden state to size"
    ]


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny study by hand: rnn, bow, mingru and transformer compared on 300 IMDB reviews, then
    timing, gradient flow and remember-first on them, as `rnnlab study` lays it out."""
    from rnnlab import api
    from rnnlab.config import TrainConfig

    out = tmp_path_factory.mktemp("study")
    names = ["rnn", "bow", "mingru", "transformer"]
    config = RunConfig(
        DataConfig(dataset="imdb", limit=300, max_len=32, truncate="tail"),
        TINY,
        TrainConfig(epochs=1, batch_size=32, lr=3e-3, progress=False),
    )
    api.compare(config, names, out=out, name="compare", verbose=False)
    inputs = Inputs(config, runs=[out / "compare" / n for n in names])
    for name, changes in (
        ("timing", dict(lengths=(8, 16), modes=("padded",), batch_size=4, repeats=1)),
        ("gradient-flow", dict(seq_len=16, batch_size=4)),
        ("synthetic", dict(lengths=(5, 10), num_examples=200, epochs=1, hidden_dim=8,
                           models=tuple(names))),
    ):  # fmt: skip
        entry = registry.get(name)
        suite.run_one(entry, entry.settings(**changes), inputs).save(out / name)
    return out


def test_the_beyond_recurrence_chapter_answers_both_claims(tiny_study: Path) -> None:
    html = render([tiny_study], tiny_study / "report.html").read_text()
    assert 'id="beyond"' in html and "Beyond recurrence" in html
    chapter = html[html.index('id="beyond"') :]
    chapter = chapter[: chapter.index("</section>")]
    for name in ("rnn", "bow", "mingru", "transformer"):
        assert f'data-row="beyond-{name}"' in chapter
    assert "Claim 1" in chapter and "Claim 2" in chapter
    assert "McNemar" in chapter  # the paired tests decide what counts as a finding
    assert any(word in chapter for word in ("holds here", "does not hold", "cannot tell them"))
    assert "remember-first, T=10" in chapter


def test_no_chapter_without_a_family_beyond_the_gated_rnns(tmp_path: Path) -> None:
    from rnnlab.report.beyond import beyond_section
    from rnnlab.report.collect import collect

    empty = tmp_path / "x"
    empty.mkdir()
    (empty / "result.json").write_text('{"kind": "unknown-thing"}')
    assert beyond_section(collect([empty])) is None
