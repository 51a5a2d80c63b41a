"""rnnlab study: step states, resuming, bad input, and one tiny real study end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rnnlab import api
from rnnlab.cli import main
from rnnlab.diagnostics import REGISTRY
from rnnlab.errors import RnnlabError
from rnnlab.report.findings import findings_of
from rnnlab.study import Context, Step, build_steps, default_out, run_study, study_settings
from rnnlab.training import Callback, TrainState

TINY = dict(limit=300, max_len=32, epochs=1, batch_size=32, embed_dim=8, hidden_dim=8, seeds=1)
TINY_DIAGNOSTICS = {
    "gradient-flow": dict(seq_len=16, batch_size=4),
    "embedding-grad": dict(lengths=(8, 16), batch_size=4),
    "hidden-states": dict(per_class=1, min_len=16, max_steps=24),
    "timing": dict(lengths=(8, 16), modes=("padded",), batch_size=4, repeats=1),
    "seq-len": dict(models=("rnn",), lengths=(16, 32), limit=300, epochs=1, seeds=2),
    "hidden-size": dict(sizes=(4, 8), limit=300, epochs=1, seeds=1),
    "synthetic": dict(lengths=(5, 10), num_examples=200, epochs=1, hidden_dim=8, seeds=1),
    "memory-capacity": dict(pairs=(1, 2), state_size=8, vocab_size=4, num_examples=200, epochs=1,
                            seeds=1),
}  # fmt: skip


def fake_steps(
    log: list[str], *, fail: str | None = None, interrupt: str | None = None
) -> list[Step]:
    """Steps that write a marker file (or fail / are interrupted), recording each run."""

    def make(name: str):
        def run(ctx: Context) -> None:
            log.append(name)
            if name == fail:
                raise RnnlabError(f"{name} broke; fix it")
            if name == interrupt:
                raise KeyboardInterrupt
            (ctx.out / name).mkdir(parents=True, exist_ok=True)
            (ctx.out / name / "result.json").write_text(json.dumps({"kind": f"fake-{name}"}))

        return run

    return [Step(n, n, f"{n}/result.json", make(n), folder=n) for n in ("a", "b", "c")]


def states(out: Path) -> dict[str, str]:
    data = json.loads((out / "study.json").read_text())
    return {name: s["state"] for name, s in data["steps"].items()}


def test_finished_steps_are_not_run_again(tmp_path: Path) -> None:
    settings = study_settings("imdb", quick=True)
    out, log = tmp_path / "s", []
    result = run_study(settings, out, steps=fake_steps(log))
    assert log == ["a", "b", "c"] and result.report.is_file()
    assert states(out) == {"a": "done", "b": "done", "c": "done"}
    run_study(settings, out, steps=fake_steps(log))
    assert log == ["a", "b", "c"]  # nothing ran twice
    (out / "b" / "result.json").unlink()
    run_study(settings, out, steps=fake_steps(log))
    assert log == ["a", "b", "c", "b"]


def test_interrupted_study_resumes(tmp_path: Path) -> None:
    settings = study_settings("imdb", quick=True)
    out, log = tmp_path / "s", []
    with pytest.raises(KeyboardInterrupt):
        run_study(settings, out, steps=fake_steps(log, interrupt="b"))
    assert states(out) == {"a": "done", "b": "interrupted"}
    assert not (out / "report.html").exists()
    run_study(settings, out, steps=fake_steps(log))
    assert log == ["a", "b", "b", "c"] and states(out)["b"] == "done"


def test_failed_step_is_recorded_and_reported(tmp_path: Path) -> None:
    settings = study_settings("imdb", quick=True)
    out = tmp_path / "s"
    result = run_study(settings, out, steps=fake_steps([], fail="b"))
    assert result.failed == ["b"] and states(out)["b"] == "failed"
    html = result.report.read_text()
    assert "Study step b" in html and "b broke; fix it" in html


def test_fresh_starts_over(tmp_path: Path) -> None:
    settings = study_settings("imdb", quick=True)
    out, log = tmp_path / "s", []
    run_study(settings, out, steps=fake_steps(log))
    (out / "dataset.json").write_text("{}")  # a managed file of an earlier study
    run_study(settings, out, steps=fake_steps(log), fresh=True)
    assert log == ["a", "b", "c", "a", "b", "c"] and not (out / "dataset.json").exists()


def test_other_settings_or_foreign_folder_refused(tmp_path: Path) -> None:
    out = tmp_path / "s"
    run_study(study_settings("imdb", quick=True), out, steps=fake_steps([]))
    with pytest.raises(RnnlabError, match="other settings"):
        run_study(study_settings("imdb", quick=False), out, steps=fake_steps([]))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(RnnlabError, match="not a study folder"):
        run_study(study_settings("imdb", quick=True), other, steps=fake_steps([]))
    with pytest.raises(RnnlabError, match="unknown study setting"):
        study_settings("imdb", warp_speed=True)
    with pytest.raises(RnnlabError, match="unknown gradient-flow setting"):
        study_settings("imdb", diagnostics={"gradient-flow": {"warp": 1}})
    with pytest.raises(RnnlabError, match="unknown diagnostic 'nope'"):
        study_settings("imdb", diagnostics={"nope": {}})


def test_step_list_and_presets() -> None:
    quick, full = study_settings("imdb", quick=True), study_settings("imdb")
    names = [s.name for s in build_steps(quick)]
    models = ["rnn", "lstm", "gru", "bow", "mingru"]
    trained = [f"train-{m}-seed{s}" for s in range(3) for m in models]  # first seeds first
    assert names[:17] == ["dataset", *trained, "compare"]
    assert names[17:] == [entry.name for entry in REGISTRY]  # every diagnostic, registry order
    assert quick.max_len <= 256 and quick.epochs <= 3 and quick.truncate == "tail"
    assert full.models == ("rnn", "lstm", "gru", "bow", "mingru", "transformer")
    for settings, presets in ((quick, {e.name: e.quick for e in REGISTRY}),
                              (full, {e.name: e.settings() for e in REGISTRY})):  # fmt: skip
        # the synthetic task trains the study's own models; every other preset as it is
        synthetic = dataclasses.replace(presets["synthetic"], models=settings.models)
        assert settings.diagnostics == {**presets, "synthetic": synthetic}
    by_hand = study_settings("imdb", quick=True, diagnostics={"synthetic": {"models": ("gru",)}})
    assert by_hand.diagnostics["synthetic"].models == ("gru",)
    assert full.limit is None and "minutes" in full.expected
    assert [s.name for s in build_steps(study_settings("imdb", seeds=1))][1] == "train-rnn"


def test_every_preset_trains_with_at_least_three_seeds() -> None:
    """A difference is a finding only over seeds: the compared models, every sweep cell and
    every synthetic cell of both presets train with three or more."""
    for quick in (True, False):
        settings = study_settings("imdb", quick=quick)
        assert settings.seeds >= 3 and len(settings.seed_list) == settings.seeds
        seeded = {n: s.seeds for n, s in settings.diagnostics.items() if hasattr(s, "seeds")}
        assert set(seeded) == {"seq-len", "hidden-size", "synthetic", "memory-capacity"}
        assert all(n >= 3 for n in seeded.values()), seeded
    with pytest.raises(RnnlabError, match="seeds must be at least 1"):
        study_settings("imdb", seeds=0)
    assert default_out("imdb", quick=True).name == "study-imdb-quick"


def test_cli_study_bad_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["study", "--dataset", "imdb", "--quick", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "Traceback" not in err


@pytest.mark.slow
def test_tiny_real_study_end_to_end(tmp_path: Path) -> None:
    settings = study_settings(
        "imdb", quick=True, diagnostics=TINY_DIAGNOSTICS, **{**TINY, "seeds": 2}
    )
    out = tmp_path / "study"
    result = run_study(settings, out)
    done = {name for name, s in result.states.items() if s["state"] == "done"}
    expected = {s.name for s in build_steps(settings)}
    assert done == expected, result.states
    html = result.report.read_text()
    sections = ("dataset", "models", "training", "gradient-flow", "embedding-grad",
                "hidden-states", "timing", "seq-len", "hidden-size", "padding", "synthetic",
                "memory-capacity", "environment")  # fmt: skip
    for section in sections:
        assert f'id="{section}"' in html
    assert (out / "compare" / "compare.json").is_file()
    study = json.loads((out / "study.json").read_text())
    recorded = study["steps"]
    lstm = json.loads((out / "compare" / "lstm-seed1" / "summary.json").read_text())
    assert recorded["train-lstm-seed1"]["seeds"] == [settings.seed + 1]
    assert (
        recorded["train-lstm-seed1"]["intervals"]["accuracy_interval"]
        == lstm["test"]["accuracy_interval"]
    )
    compare = json.loads((out / "compare" / "compare.json").read_text())
    assert compare["seeds"] == [0, 1] and len(compare["rows"]) == 2 * len(settings.models)
    assert set(recorded["compare"]["intervals"]) == set(settings.models)
    cells = recorded["seq-len"]["intervals"]
    assert cells and all(len(v) == 2 and v[0] <= v[1] for v in cells.values())
    # the findings: one list, the report's and study.json's, each with the seeds behind it
    found = {f["id"]: f for f in study["findings"]}
    assert [f.to_dict() for f in findings_of([out])] == study["findings"]
    assert "compare:gru-vs-rnn" in found and "seq_len:rnn" in found
    assert found["compare:gru-vs-rnn"]["seeds"] == [0, 1]
    assert len(found["seq_len:rnn"]["p_values"]) == 2
    assert all(f["verdict"] in ("holds", "not settled") for f in found.values())
    assert 'data-row="finding-compare:gru-vs-rnn"' in html
    # diagnostics of trained models read each model's first seed
    flow = json.loads((out / "gradient-flow" / "result.json").read_text())
    assert "lstm-seed0" in json.dumps(flow) and "lstm-seed1" not in json.dumps(flow)
    first = (out / "compare" / "lstm-seed0" / "summary.json").stat().st_mtime_ns
    again = run_study(settings, out)
    assert (out / "compare" / "lstm-seed0" / "summary.json").stat().st_mtime_ns == first
    assert again.seconds < result.seconds


class _StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, state: TrainState, record: dict[str, object]) -> None:
        if state.epoch == 1:
            raise KeyboardInterrupt


def test_a_training_step_resumes_inside_the_run(tmp_path: Path) -> None:
    """An interrupted training step continues from its last epoch, not from scratch."""
    settings = study_settings("imdb", quick=True, **{**TINY, "epochs": 2})
    out = tmp_path / "study"
    config = settings.run_config()
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, name="rnn"))
    first = api.train(
        config, out=out / "compare", name="rnn", callbacks=[_StopAfterFirstEpoch()], verbose=False
    )
    assert first.status == "interrupted" and len(first.history) == 1
    step = next(s for s in build_steps(settings) if s.name == "train-rnn")
    assert step.resumes and not step.done(out)
    step.run(Context(out, settings, lambda _: None))
    history = [
        json.loads(x) for x in (out / "compare" / "rnn" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["epoch"] for r in history] == [1, 2] and history[0] == first.history[0]
    assert step.done(out)


def test_an_unknown_dataset_fails_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    assert main(["study", "--dataset", "nosuch", "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nosuch" in err and "Traceback" not in err
    assert not out.exists()
