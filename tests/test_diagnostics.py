"""Every diagnostic on tiny models and a few dozen bundled IMDB reviews: shapes, finite values,
the files written, and the JSON round trip the report relies on."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rnnlab.data import load_splits
from rnnlab.data.batching import BucketBatchSampler, padding_share
from rnnlab.data.encoded import EncodedSplits
from rnnlab.diagnostics import (
    REGISTRY,
    Inputs,
    ModelEntry,
    fresh_models,
    read_result,
    run_models,
    suite,
)
from rnnlab.diagnostics.embedding_grad import embedding_grad
from rnnlab.diagnostics.gradient_flow import default_steps, gradient_flow
from rnnlab.diagnostics.gradient_flow_result import GradientFlowResult
from rnnlab.diagnostics.hidden_size import hidden_size_sweep
from rnnlab.diagnostics.hidden_states import hidden_states
from rnnlab.diagnostics.inputs import parse_names, whole_texts
from rnnlab.diagnostics.padding import padding_waste
from rnnlab.diagnostics.parameters import parameter_counts
from rnnlab.diagnostics.seq_len import seq_len_sweep
from rnnlab.diagnostics.sweep_runs import limit_training
from rnnlab.diagnostics.texts import long_texts
from rnnlab.diagnostics.timing import bench_timing
from rnnlab.errors import RnnlabError
from rnnlab.models import count_parameters
from rnnlab.runs import check_out_dir

TINY = ModelConfig(embed_dim=8, hidden_dim=8)
DATA = DataConfig(dataset="imdb", limit=60)


@pytest.fixture(scope="module")
def splits() -> EncodedSplits:
    return whole_texts(DATA)  # 48 / 6 / 6 whole reviews


@pytest.fixture(scope="module")
def entries(splits: EncodedSplits) -> list[ModelEntry]:
    return fresh_models(["rnn", "lstm", "gru"], splits, seed=0, model=TINY)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rnnlab import api

    config = RunConfig(
        dataclasses.replace(DATA, max_len=40),
        dataclasses.replace(TINY, name="lstm", dropout=0.3),
        TrainConfig(epochs=1, batch_size=16, device="cpu", progress=False),
    )
    out = tmp_path_factory.mktemp("runs")
    return api.train(config, out=out, name="tiny-lstm", verbose=False).run_dir


def _all_finite(values: list[Any]) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def _round_trip(result: Any, folder: Path) -> Any:
    result.save(folder)
    raw = json.loads((folder / "result.json").read_text())
    assert raw["kind"] == result.kind
    again = read_result(folder)
    assert type(again) is type(result) and again == result
    return raw


# ----- gradient flow ---------------------------------------------------------------------------
def test_gradient_flow_on_fresh_models(entries: list[ModelEntry], tmp_path: Path) -> None:
    result = gradient_flow(entries, seq_len=20, batch_size=4, split="train", seed=1)
    assert result.steps == default_steps(20) == [1, 10, 19]
    assert result.batch_size == 4 and len(result.rows) == 4 and result.dtype == "float64"
    assert all(entries[0].splits.train.lengths[r] >= 20 for r in result.rows)
    assert [m.label for m in result.models] == ["rnn", "lstm", "gru"]
    for m in result.models:
        assert len(m.grad_x) == len(m.grad_h) == 20 and _all_finite(m.grad_x + m.grad_h)
        assert (m.grad_c is not None) == (m.kind == "lstm")
        assert all(v > 0 for v in m.grad_x)
        assert m.x_at_steps == [m.grad_x[t] for t in result.steps]
        assert m.ratio_x == pytest.approx(m.grad_x[1] / m.grad_x[19])
        assert m.trace_max_rel_diff is not None and m.trace_max_rel_diff < 1e-10
        assert m.reading_x in ("severe vanishing", "vanishing", "well preserved", "growing")
    raw = _round_trip(result, tmp_path / "gf")
    assert {"gradient_flow_linear.png", "gradient_flow_log.png"} <= {
        p.name for p in (tmp_path / "gf").iterdir()
    }
    assert len(raw["models"][0]["grad_x"]) == 20
    assert len(result.tables()) == 2 and len(result.tables()[0].rows) == 3


def test_gradient_flow_in_float32_and_scaled_steps(entries: list[ModelEntry]) -> None:
    result = gradient_flow(entries[:1], seq_len=40, batch_size=2, split="train", dtype="float32")
    assert result.steps == [2, 20, 38] and result.dtype == "float32"
    assert len(result.models[0].grad_x) == 40


def test_gradient_flow_leaves_the_callers_model_alone(entries: list[ModelEntry]) -> None:
    model = entries[1].model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    gradient_flow(entries[1:2], seq_len=10, batch_size=2, split="train")
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_gradient_flow_without_long_enough_texts_says_how_to_fix_it(
    entries: list[ModelEntry],
) -> None:
    with pytest.raises(RnnlabError, match=r"no text with at least 5000 tokens \(longest: \d+\)"):
        gradient_flow(entries, seq_len=5000, batch_size=4, split="train")
    longest = int(entries[0].splits.train.lengths.max())
    with pytest.raises(RnnlabError, match=r"--seq-len \d+ \(\d+ texts are that long\)"):
        long_texts(entries[0].splits.train, longest + 1, 8, what="train")


def test_gradient_flow_on_a_trained_run(tiny_run: Path, tmp_path: Path) -> None:
    entries = run_models([tiny_run])
    assert entries[0].label == "tiny-lstm" and entries[0].source == str(tiny_run)
    result = gradient_flow(entries, seq_len=30, batch_size=3, split="train")
    model = result.models[0]
    assert model.kind == "lstm" and _all_finite(model.grad_x) and model.grad_c is not None
    _round_trip(result, tmp_path / "gf-run")


def test_a_run_with_another_dataset_is_encoded_with_its_own_encoder(tiny_run: Path) -> None:
    entries = run_models([tiny_run], dataset="rotten_tomatoes")
    assert entries[0].splits.vocab_size == entries[0].model.spec.vocab_size
    assert entries[0].splits.info["dataset"] == "rotten_tomatoes"
    result = gradient_flow(entries, seq_len=5, batch_size=3)
    assert _all_finite(result.models[0].grad_x)


def test_missing_or_incomplete_run_folders_are_user_errors(tmp_path: Path, tiny_run: Path) -> None:
    with pytest.raises(RnnlabError, match="does not exist"):
        run_models([tmp_path / "nope"])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text((tiny_run / "summary.json").read_text())
    with pytest.raises(RnnlabError, match=r"has no config\.yaml"):
        run_models([broken])


# ----- embedding gradient, hidden states -------------------------------------------------------
def test_embedding_grad_per_length(entries: list[ModelEntry], tmp_path: Path) -> None:
    result = embedding_grad(entries, lengths=[20, 5, 10], batch_size=4, split="train")
    assert result.lengths == [5, 10, 20] and result.batch_size == 4
    for m in result.models:
        for part in (m.embedding, m.recurrent, m.head, m.total, m.loss):
            assert len(part) == 3 and _all_finite(part)
        assert all(v > 0 for v in m.embedding)
        assert all(t >= e for t, e in zip(m.total, m.embedding, strict=True))
    _round_trip(result, tmp_path / "eg")
    assert (tmp_path / "eg" / "embedding_grad.png").is_file()


def test_hidden_states_per_label(entries: list[ModelEntry], tmp_path: Path) -> None:
    result = hidden_states(entries, per_class=2, min_len=30, max_steps=40, split="train")
    assert [t.label_name for t in result.texts] == ["negative"] * 2 + ["positive"] * 2
    assert all(t.length == 40 for t in result.texts)
    for m in result.models:
        assert len(m.h_norms) == 4 and all(len(s) == 40 for s in m.h_norms)
        assert (m.c_norms is not None) == (m.kind == "lstm") == (m.c_stats is not None)
        assert m.h_stats.var_mean is not None and m.h_stats.var_mean >= 0
        assert set(m.by_label) == {"negative", "positive"}
        if m.kind == "rnn":  # tanh bounds every unit: ||h|| <= sqrt(H)
            assert max(max(s) for s in m.h_norms) <= math.sqrt(8) + 1e-6
    _round_trip(result, tmp_path / "hs")
    assert {"hidden_norms.png", "cell_norms.png"} <= {p.name for p in (tmp_path / "hs").iterdir()}


def test_hidden_states_with_too_few_long_texts(entries: list[ModelEntry]) -> None:
    with pytest.raises(RnnlabError, match=r"only \d+ negative texts with at least 100000 tokens"):
        hidden_states(entries, per_class=2, min_len=100_000, split="train")


# ----- padding, timing, parameters -------------------------------------------------------------
def test_padding_waste_matches_the_batching_helpers(tmp_path: Path) -> None:
    split = load_splits(dataclasses.replace(DATA, max_len=200)).train
    result = padding_waste(split, batch_size=8, max_len=200, seed=3, dataset="imdb")
    by_name = {s.strategy: s for s in result.strategies}
    plain = BucketBatchSampler(split.lengths, 8, shuffle=True, bucket=False, seed=3).batches()
    assert by_name["plain"].padding_share == pytest.approx(padding_share(split.lengths, plain))
    assert by_name["bucketed"].padding_share <= by_name["plain"].padding_share
    assert by_name["packed"].padding_share == 0.0 and by_name["packed"].padded == 0
    assert by_name["packed"].positions == result.real_tokens == int(split.lengths.sum())
    assert by_name["packed"].serial_steps == by_name["plain"].serial_steps
    sizes = result.example_batch_sizes
    assert sizes[0] == len(plain[0]) and all(a >= b for a, b in itertools.pairwise(sizes))
    assert len(result.step_batch_size) == max(int(split.lengths[b].max()) for b in plain)
    assert 0 <= (result.packed_tail_share or 0) <= 1
    _round_trip(result, tmp_path / "pad")


def test_timing_structure_on_tiny_settings(entries: list[ModelEntry], tmp_path: Path) -> None:
    models = [(e.label, e.model, e.source) for e in entries[:2]]
    result = bench_timing(models, lengths=[4, 8, 12], batch_size=2, warmup=0, repeats=2)
    assert result.modes == ["padded", "packed", "scratch"] and len(result.models) == 2
    assert result.flush_denormal == ["on", "off"] and result.cpu
    for m in result.models:
        assert [(t.mode, t.flush_denormal) for t in m.modes] == [
            (mode, flush) for mode in result.modes for flush in ("on", "off")
        ]
        for t in m.modes:
            assert len(t.forward) == len(t.forward_backward) == 3
            assert all(v > 0 for v in t.forward + t.forward_backward)
            assert all(len(r) == 2 for r in t.forward_runs)
            assert (
                t.forward_backward_fit.slope is not None and t.forward_backward_fit.r2 is not None
            )
    _round_trip(result, tmp_path / "timing")
    with pytest.raises(RnnlabError, match="unknown --modes"):
        bench_timing(models, lengths=[4], modes=["fused"])


def test_parameter_counts(entries: list[ModelEntry], tmp_path: Path) -> None:
    result = parameter_counts(entries)
    assert [m.counts for m in result.models] == [count_parameters(e.model) for e in entries]
    _round_trip(result, tmp_path / "params")


# ----- sweeps ----------------------------------------------------------------------------------
SWEEP = RunConfig(
    DATA, TINY, TrainConfig(epochs=1, batch_size=16, device="cpu", progress=False, patience=None)
)


def test_length_sweep_with_two_seeds(tmp_path: Path) -> None:
    result = seq_len_sweep(SWEEP, models=("rnn",), lengths=(20, 10), seeds=2)
    assert result.lengths == [10, 20] and len(result.cells) == 4
    assert {(c.max_len, c.seed) for c in result.cells} == {(10, 0), (10, 1), (20, 0), (20, 1)}
    for cell in result.cells:
        assert 0 <= cell.test_accuracy <= 1 and cell.train_seconds > 0 and cell.epochs_run == 1
    assert [(s.max_len, s.runs) for s in result.summary] == [(10, 2), (20, 2)]
    assert all(s.accuracy_std is not None for s in result.summary)
    _round_trip(result, tmp_path / "sweep")
    assert (tmp_path / "sweep" / "accuracy_vs_length.png").is_file()


def test_a_sweeps_limit_cuts_the_training_split_only() -> None:
    whole = load_splits(SWEEP.data)
    result = seq_len_sweep(SWEEP, models=("rnn",), lengths=(10,), limit=20, seeds=1)
    assert result.settings["limit"] == 20 and result.settings["test_examples"] == len(whole.test)
    assert result.cells[0].test_examples == len(whole.test)  # every test text scores each cell
    cut = limit_training(whole, 20, seed=0)
    assert len(cut.train) == 20 and cut.test is whole.test and cut.val is whole.val
    assert sorted(set(cut.train.labels.tolist())) == sorted(set(whole.train.labels.tolist()))
    assert limit_training(whole, None, seed=0) is whole


def test_hidden_sweep_reports_accuracy_by_length(tmp_path: Path) -> None:
    config = dataclasses.replace(SWEEP, data=dataclasses.replace(DATA, max_len=40))
    result = hidden_size_sweep(config, models=("gru",), sizes=(8, 4), seeds=1)
    assert result.sizes == [4, 8] and result.edges == [0, 5, 10, 20, 40]
    assert [c.hidden_dim for c in result.cells] == [4, 8]
    assert result.cells[0].parameters < result.cells[1].parameters
    for s in result.summary:
        assert len(s.bucket_accuracy) == len(result.edges)
    assert sum(b["count"] for b in result.cells[0].accuracy_by_length) == 6  # test texts
    _round_trip(result, tmp_path / "hidden")
    names = {p.name for p in (tmp_path / "hidden").iterdir()}
    assert {"accuracy_vs_hidden.png", "accuracy_by_length.png"} <= names


def test_run_all_writes_one_folder_per_part(tmp_path: Path) -> None:
    tiny = {
        "gradient-flow": dict(split="train", seq_len=20, batch_size=2),
        "embedding-grad": dict(split="train", lengths=(5, 10), batch_size=2),
        "hidden-states": dict(split="train", per_class=1, min_len=20, max_steps=20),
        "seq-len": dict(models=("rnn",), lengths=(10,), limit=60, epochs=1),
        "hidden-size": dict(models=("rnn",), sizes=(4,), max_len=20, limit=60, epochs=1),
        "timing": dict(lengths=(4, 8), batch_size=2, repeats=1, modes=("padded",)),
        "padding": dict(batch_size=8),
        "synthetic": dict(lengths=(4,), models=("rnn",), num_examples=60, epochs=1, hidden_dim=4),
        "memory-capacity": dict(pairs=(1,), models=("rnn",), state_size=4, vocab_size=2,
                                seeds=1, epochs=1, num_examples=30),
    }  # fmt: skip
    settings = {
        name: dataclasses.replace(s, **tiny.get(name, {}))
        for name, s in suite.presets(quick=True).items()
    }
    inputs = Inputs(SWEEP, models=["rnn", "lstm"], device="cpu")
    result = suite.run_all(inputs, tmp_path / "all", settings=settings)
    kinds = {p.name: p.kind for p in result.parts}
    assert kinds == {entry.name: entry.kind for entry in REGISTRY}
    for name, kind in kinds.items():
        assert read_result(tmp_path / "all" / name).kind == kind
    top = suite.AllResult.load(tmp_path / "all")
    used = {n: dataclasses.asdict(s) for n, s in settings.items()}
    assert top.settings == json.loads(json.dumps(used))  # tuples come back as lists
    assert top.seconds > 0 and top.models == ["rnn", "lstm"]


def test_run_all_checks_every_part_before_the_first_starts(tmp_path: Path) -> None:
    settings = {"gradient-flow": suite.presets(quick=True)["gradient-flow"]}
    settings["gradient-flow"] = dataclasses.replace(settings["gradient-flow"], seq_len=100_000)
    inputs = Inputs(SWEEP, models=["rnn"], device="cpu")
    with pytest.raises(RnnlabError, match="at least 100000 tokens"):
        suite.run_all(inputs, tmp_path / "all", settings=settings)
    assert not (tmp_path / "all").exists()
    with pytest.raises(RnnlabError, match="unknown part"):
        suite.run_all(inputs, tmp_path / "all", skip=["nope"])


# ----- plumbing --------------------------------------------------------------------------------
def test_every_result_kind_is_registered_once() -> None:
    kinds = [entry.kind for entry in REGISTRY]
    assert kinds == [entry.result.kind for entry in REGISTRY] and len(set(kinds)) == len(kinds)
    assert set(kinds) == {
        "gradient_flow", "embedding_grad", "hidden_states", "seq_len", "hidden_size",
        "timing", "padding", "parameters", "synthetic", "attribution", "memory_capacity",
    }  # fmt: skip


def test_results_written_by_earlier_versions_still_load(tmp_path: Path) -> None:
    result = seq_len_sweep(SWEEP, models=("rnn",), lengths=(10,), seeds=1)
    raw = result.to_dict()
    (tmp_path / "result.json").write_text(json.dumps({**raw, "kind": "length_sweep"}))
    assert read_result(tmp_path) == result


def test_read_result_errors(tmp_path: Path) -> None:
    with pytest.raises(RnnlabError, match="does not exist"):
        read_result(tmp_path)
    (tmp_path / "result.json").write_text('{"kind": "nope"}')
    with pytest.raises(RnnlabError, match="unknown kind 'nope'"):
        read_result(tmp_path)
    (tmp_path / "result.json").write_text('{"kind": "gradient_flow", "dataset": "imdb"}')
    with pytest.raises(RnnlabError, match="does not hold a gradient_flow result"):
        read_result(tmp_path)
    with pytest.raises(RnnlabError, match="unknown field"):
        GradientFlowResult.from_dict({"kind": "gradient_flow", "renamed_field": 1})


def test_a_failed_save_leaves_nothing_behind(
    entries: list[ModelEntry], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = gradient_flow(entries[:1], seq_len=10, batch_size=2, split="train")

    def boom(path: Any, obj: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("rnnlab.diagnostics.result.write_json_atomic", boom)
    with pytest.raises(OSError):
        result.save(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(OSError):
        result.save(existing)
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]


def test_out_dir_checks(tmp_path: Path) -> None:
    assert check_out_dir(tmp_path / "fresh", "x") == tmp_path / "fresh"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a").write_text("")
    with pytest.raises(RnnlabError, match="not empty; pick another --out"):
        check_out_dir(tmp_path / "full", "x")


def test_names_and_settings_are_checked() -> None:
    assert parse_names("rnn, lstm") == ["rnn", "lstm"]
    with pytest.raises(RnnlabError, match="unknown model 'cnn'"):
        parse_names("rnn,cnn")
    from rnnlab.diagnostics import embedding_grad as module

    assert module.Settings(lengths=(400, 50, 100)).lengths == (50, 100, 400)
    for bad in ((50, -1), ()):
        with pytest.raises(RnnlabError, match="--lengths must be positive"):
            module.Settings(lengths=bad)
    assert np.all(np.diff(default_steps(1000)) > 0)


def test_gradient_flow_measures_the_same_with_and_without_the_flush(
    entries: list[ModelEntry],
) -> None:
    """float64 gradients at the study's magnitudes (down to ~1e-60) are normal numbers, so
    flushing float32 subnormals to zero must not change a single value."""
    from rnnlab.training.device import flush_denormal

    results = []
    for flush in (True, False):
        with flush_denormal(flush):
            results.append(gradient_flow(entries, seq_len=120, batch_size=2, split="train"))
    assert results[0] == results[1]
    smallest = min(v for m in results[0].models for v in m.grad_x if v)
    assert smallest < 1.2e-38  # the flush would have zeroed it in float32
