"""Token attributions (integrated gradients): completeness, a known answer, padding, every
model family, Captum's own LayerIntegratedGradients, `predict --explain` and `diagnose
attribution` end to end, and the bad inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rnnlab import api
from rnnlab.cli import main
from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rnnlab.data.synthetic import make_examples
from rnnlab.diagnostics import read_result
from rnnlab.diagnostics.attribution import Settings, position_shares
from rnnlab.diagnostics.attribution_result import AttributionResult
from rnnlab.diagnostics.explain import attribute, log_odds
from rnnlab.errors import RnnlabError
from rnnlab.models import create_model, list_models

DATA = ["--dataset", "imdb", "--limit", "60"]
TINY = ["--embed-dim", "8", "--hidden-dim", "8"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, seed: int) -> dict[str, Path]:
    """A small LSTM trained on real IMDB reviews (about 60% test accuracy, in a few seconds)
    and a regression run (synthetic adding)."""
    out = tmp_path_factory.mktemp("runs")
    lstm = RunConfig(
        DataConfig(dataset="imdb", limit=3000, max_len=100, max_size=5000),
        ModelConfig(name="lstm", embed_dim=16, hidden_dim=16),
        TrainConfig(epochs=4, batch_size=32, lr=1e-2, seed=seed, device="cpu", progress=False),
    )
    adding = RunConfig(
        DataConfig(dataset="synthetic:adding", length=8, num_examples=64),
        ModelConfig(name="rnn", hidden_dim=4),
        TrainConfig(epochs=1, batch_size=32, device="cpu", progress=False),
    )
    return {
        "lstm": api.train(lstm, out=out, name="lstm", verbose=False).run_dir,
        "adding": api.train(adding, out=out, name="adding", verbose=False).run_dir,
    }


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ----- the method ------------------------------------------------------------------------------
@pytest.mark.known_answer
def test_completeness_on_a_trained_model(runs: dict[str, Path], record_property: Any) -> None:
    """The attributions add up to f(x) - f(baseline) within 5%, and Captum's delta says the
    same (it is that difference from its own forward passes).
    Worst over kernels off / base / avx2, 1 and 2 threads, seeds 0-4 (AMD EPYC, 2026-12-07):
    5 of the 6 texts checked (needs 3), largest relative gap 0.0053 (needs < 0.05)."""
    loaded = api.load_run(runs["lstm"])
    texts = [
        "one of the best films i have seen, moving and wonderfully acted",
        "a dull, boring mess with a terrible script and awful acting",
        "the plot was thin but the music and the photography were great",
        "a brilliant, funny and touching film; i loved every minute of it",
        "the worst movie of the year: stupid, badly acted and far too long",
        "a waste of time, with a predictable plot and wooden characters",
    ]
    found = api.explain(loaded, texts, n_steps=50)
    gaps = []
    for e in found:
        assert len(e.tokens) == len(e.scores) == len(e.ids) > 5
        assert e.target == e.label and e.probabilities[e.label] == max(e.probabilities.values())
        assert np.isfinite(e.delta) and np.isfinite(e.gap)
        assert abs(e.delta - e.gap) < 1e-4 + 0.01 * abs(e.difference)
        if abs(e.difference) > 1e-2:
            assert e.relative_gap is not None and e.relative_gap < 0.05, e.to_dict()
            gaps.append(e.relative_gap)
    record_property("checked", len(gaps))
    record_property("largest_relative_gap", max(gaps, default=0.0))
    assert len(gaps) >= 3  # f(x) - f(baseline) can be near 0 for a text the model is unsure of
    probs = api.predict(loaded, texts)
    for p, e in zip(probs, found, strict=True):
        assert p.label == e.label
        assert p.probabilities[p.label] == pytest.approx(e.probabilities[e.label], abs=1e-5)
        p_target = e.probabilities[e.target]
        assert e.score == pytest.approx(np.log(p_target / (1 - p_target)), abs=1e-4)


def _train_remember_first_lstm(seed: int, length: int) -> torch.nn.Module:
    """A toy LSTM trained on remember-first until a held-out batch is 99% right (checked every
    50 steps, at most 2,000 at lr 3e-3 with clipping; 450-650 steps were needed): it stops at
    the first good point, so a later wobble of the trajectory cannot undo what it learned."""
    torch.manual_seed(seed)
    model = create_model("lstm", vocab_size=2, num_classes=2, input_dim=1, hidden_dim=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x_check, y_check = (
        torch.from_numpy(a)
        for a in make_examples("remember-first", length, 256, seed=[10**6, seed])
    )
    lengths = torch.full((256,), length)
    for step in range(1, 2001):
        x, y = (
            torch.from_numpy(a)
            for a in make_examples("remember-first", length, 64, seed=[seed, step])
        )
        model.train()
        optimizer.zero_grad()
        model.loss(model(x, lengths[:64]), y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0:
            model.eval()
            with torch.no_grad():
                if (model(x_check, lengths).argmax(-1) == y_check).float().mean() >= 0.99:
                    break
    model.eval()
    return model


@pytest.mark.known_answer
def test_a_trained_lstm_puts_its_evidence_on_the_first_input_of_remember_first(
    seed: int, record_property: Any
) -> None:
    """Known answer: on remember-first (x_t ~ N(0, 1), label = sign of x_0) a trained LSTM
    puts over 80% of a typical text's |attribution| on step 0 (the median text; the baseline is
    0, the <pad> rule). A text whose x_0 is near 0 holds little evidence anywhere, so the mean
    share would rest on a few such texts.
    Worst over kernels off / base / avx2, 1 and 2 threads, seeds 0-4 (AMD EPYC, 2026-12-07):
    accuracy 0.975 (needs > 0.9), median share on step 0 0.88 (needs > 0.8)."""
    length = 10
    model = _train_remember_first_lstm(seed, length)
    x, y = (torch.from_numpy(a) for a in make_examples("remember-first", length, 40, seed=10**6))
    lengths = torch.full((40,), length)
    with torch.no_grad():
        accuracy = float((model(x, lengths).argmax(-1) == y).float().mean())
    record_property("accuracy", accuracy)
    assert accuracy > 0.9, f"the toy LSTM did not learn the task ({accuracy:.2f})"
    found = attribute(model, x, lengths, n_steps=32)
    weight = np.abs(found.scores)
    on_first = weight[:, 0] / weight.sum(axis=1)
    record_property("median_share_on_first", float(np.median(on_first)))
    assert np.median(on_first) > 0.8, on_first
    assert not model.training  # the caller's model is untouched


@pytest.mark.parametrize("name", list_models())
def test_every_family_padding_and_completeness(name: str) -> None:
    """Every preset: a text's attributions are the same alone and padded in a batch with a
    longer one, padding gets none, and they add up to f(x) - f(baseline)."""
    torch.manual_seed(1)
    model = create_model(name, vocab_size=30, num_classes=3, embed_dim=6, hidden_dim=8)
    tokens = torch.randint(2, 30, (2, 14))
    lengths = torch.tensor([9, 14])
    tokens[0, 9:] = 0
    alone = attribute(model, tokens[:1, :9], lengths[:1], n_steps=100)
    batch = attribute(model, tokens, lengths, n_steps=100, internal_batch_size=50)
    np.testing.assert_allclose(batch.scores[0, :9], alone.scores[0], rtol=1e-4, atol=1e-7)
    assert (batch.scores[0, 9:] == 0).all()
    assert batch.targets[0] == alone.targets[0]
    difference = batch.score - batch.baseline_score
    np.testing.assert_allclose(batch.scores.sum(axis=1), difference, rtol=0.05, atol=1e-5)
    np.testing.assert_allclose(batch.gap, batch.delta, atol=1e-5)


def test_same_as_captum_layer_integrated_gradients_on_the_embedding() -> None:
    from captum.attr import LayerIntegratedGradients

    torch.manual_seed(2)
    model = create_model("gru", vocab_size=40, num_classes=2, embed_dim=6, hidden_dim=8)
    model.eval()
    tokens = torch.randint(2, 40, (3, 10))
    lengths = torch.full((3,), 10)
    ours = attribute(model, tokens, lengths, [1, 0, 1], n_steps=20)

    def forward(ids: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        return log_odds(model(ids, steps))

    assert model.embedding is not None
    lig = LayerIntegratedGradients(forward, model.embedding)
    theirs = lig.attribute(
        tokens, baselines=torch.zeros_like(tokens), target=torch.tensor([1, 0, 1]),
        additional_forward_args=(lengths,), n_steps=20, method="gausslegendre",
    )  # fmt: skip
    np.testing.assert_allclose(ours.scores, theirs.sum(-1).double().numpy(), rtol=1e-4, atol=1e-7)


def test_position_shares() -> None:
    scores = np.zeros((2, 20))
    scores[0, 19] = -3.0  # all of text 0 in its last tenth
    scores[1, :10] = 1.0  # text 1: its first half, evenly
    shares = position_shares(scores, np.array([20, 20]))
    np.testing.assert_allclose(shares, [0.1] * 5 + [0.0] * 4 + [0.5])
    assert shares.sum() == pytest.approx(1.0)
    assert position_shares(np.zeros((1, 12)), np.array([12])).sum() == 0


def test_settings_checks() -> None:
    with pytest.raises(RnnlabError, match="--min-len must be at least 10"):
        Settings(min_len=5)
    with pytest.raises(RnnlabError, match="--max-tokens must be at least 10"):
        Settings(max_tokens=9)
    with pytest.raises(RnnlabError, match="--n-steps must be positive"):
        Settings(n_steps=0)


# ----- the CLI ---------------------------------------------------------------------------------
def test_predict_explain_text_json_and_file(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = str(runs["lstm"])
    code, out, err = _run(
        ["predict", run, "A moving, beautifully acted film.", "--explain"], capsys
    )
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(("positive", "negative")) and "positive 0." in lines[0]
    assert "a moving beautifully acted film" in lines[1]
    assert lines[2].startswith("  for ") and lines[3].startswith("  against: ")
    assert "completeness: attributions sum to" in lines[4] and "Captum's delta" in lines[4]

    code, out, _ = _run(["predict", run, "dull and far too long", "--explain", "--json"], capsys)
    (data,) = json.loads(out)
    assert [t["token"] for t in data["tokens"]] == ["dull", "and", "far", "too", "long"]
    assert data["sum"] == pytest.approx(sum(t["score"] for t in data["tokens"]))
    assert data["gap"] == pytest.approx(data["sum"] - (data["f_x"] - data["f_baseline"]))
    assert {"delta", "relative_gap", "n_steps", "baseline", "probabilities"} <= set(data)

    texts = tmp_path / "texts.txt"
    texts.write_text("a great film\n\nwhat a waste of time\n", encoding="utf-8")
    code, out, _ = _run(["predict", run, "--file", str(texts), "--explain", "--json"], capsys)
    assert code == 0 and [d["text"] for d in json.loads(out)] == [
        "a great film",
        "what a waste of time",
    ]


def test_diagnose_attribution_on_runs_and_fresh_models(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "attr"
    code, stdout, err = _run(
        ["diagnose", "attribution", "--run", str(runs["lstm"]), "--texts", "3", "--min-len",
         "20", "--max-tokens", "40", "--n-steps", "12", "--out", str(out), "--quiet"],
        capsys,
    )  # fmt: skip
    assert code == 0 and err == ""
    assert "Where the evidence sits" in stdout and "of its evidence in the last tenth" in stdout
    result = read_result(out)
    assert isinstance(result, AttributionResult)
    (model,) = result.models
    assert model.source == str(runs["lstm"]) and len(model.texts) == 3
    assert sum(model.shares) == pytest.approx(1.0)
    assert {"attribution_position.png", "attribution_text.png"} <= {p.name for p in out.iterdir()}

    fresh = tmp_path / "fresh"
    code, stdout, _ = _run(
        ["diagnose", "attribution", *DATA, *TINY, "--models", "rnn,gru", "--texts", "2",
         "--min-len", "20", "--max-tokens", "30", "--n-steps", "8", "--split", "train",
         "--target", "label", "--out", str(fresh), "--quiet"],
        capsys,
    )  # fmt: skip
    assert code == 0
    result = read_result(fresh)
    assert [m.label for m in result.models] == ["rnn", "gru"] and result.target == "label"
    for m in result.models:
        assert all(t.target == t.label for t in m.texts)
    assert result.reading.startswith("rnn puts ") and "; gru " in result.reading


BAD = [
    (["predict", "no/such/run", "a text", "--explain"], "run folder no/such/run does not exist"),
    (["predict", "{lstm}", "   ", "--explain"], "the text is empty"),
    (["predict", "{lstm}", "a text", "--explain", "--steps", "0"], "--steps must be positive"),
    (["predict", "{adding}", "a text", "--explain"], "is a regression run"),
    (
        ["diagnose", "attribution", *DATA, *TINY, "--min-len", "100000"],
        "no text with at least 100000 tokens",
    ),
    (["diagnose", "attribution", *DATA, "--min-len", "4"], "--min-len must be at least 10"),
    (["diagnose", "attribution", "--run", "{adding}"], "is a regression model"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[f"bad-{i}" for i in range(len(BAD))])
def test_bad_input_is_one_line_exit_2(
    args: list[str],
    message: str,
    runs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [
        a.replace("{lstm}", str(runs["lstm"])).replace("{adding}", str(runs["adding"]))
        for a in args
    ]
    if args[0] == "diagnose":
        args += ["--out", str(tmp_path / "out")]
    code, _, err = _run(args, capsys)
    assert code == 2
    assert err.startswith("rnnlab: error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
