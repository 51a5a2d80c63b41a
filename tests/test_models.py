"""Contract tests over every preset (every family), plus the sequence modes, impls, trace and
heads of the recurrent family. Family-specific exactness tests: tests/test_families.py."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from rnnlab import api
from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rnnlab.data import load_splits
from rnnlab.data.encoded import EncodedSplit, EncodedSplits
from rnnlab.errors import RnnlabError
from rnnlab.models import (
    ModelSpec,
    RecurrentClassifier,
    StateTrace,
    build_model,
    count_parameters,
    create_model,
    create_model_from_config,
    from_spec,
    get_preset,
    list_models,
    model_class,
)
from rnnlab.training import predict_logits

VOCAB, EMBED, HIDDEN = 30, 6, 8
TINY = {"embed_dim": EMBED, "hidden_dim": HIDDEN}
ATOL = 1e-5
KINDS = ["rnn", "lstm", "gru"]
POOLINGS = ["last", "mean", "max"]


def _model(name: str = "lstm", seed: int = 0, **overrides: Any) -> RecurrentClassifier:
    torch.manual_seed(seed)
    settings_ = {**TINY, **overrides}
    num_classes = int(settings_.pop("num_classes", 3))
    return create_model(name, vocab_size=VOCAB, num_classes=num_classes, **settings_).eval()


def _batch(lengths: list[int], seed: int = 0, extra: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids (B, max(lengths) + extra) and lengths (B,)."""
    gen = torch.Generator().manual_seed(seed)
    width = max(max(lengths), 1) + extra
    tokens = torch.randint(1, VOCAB, (len(lengths), width), generator=gen)
    positions = torch.arange(width)[None, :]
    lengths_t = torch.tensor(lengths, dtype=torch.int64)
    return tokens.masked_fill(positions >= lengths_t[:, None], 0), lengths_t


def _twin(model: Any, **changes: object) -> Any:
    """The same weights under another sequence_mode / impl."""
    spec = ModelSpec.from_dict({**model.spec.to_dict(), **changes})
    other = from_spec(spec).eval()
    other.load_state_dict(model.state_dict())
    return other


def _modes(name: str) -> list[tuple[str, str]]:
    """(sequence_mode, impl) pairs the preset's family runs."""
    family = model_class(get_preset(name).settings["kind"])
    return list(itertools.product(family.sequence_modes, family.impls))


# -- contract tests over the registry ---------------------------------------------------------


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_shape_no_nan(name: str) -> None:
    model = _model(name).train()
    tokens, lengths = _batch([5, 1, 3, 5])
    logits = model(tokens, lengths)
    assert logits.shape == (4, 3)
    assert torch.isfinite(logits).all()
    model.loss(logits, torch.tensor([0, 1, 2, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    counts = count_parameters(model)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["embedding"] + counts["recurrent"] + counts["head"] <= counts["total"]
    assert model.layout()


@pytest.mark.parametrize(
    ("name", "mode", "impl"), [(name, *pair) for name in list_models() for pair in _modes(name)]
)
def test_padding_does_not_change_the_output(name: str, mode: str, impl: str) -> None:
    model = _model(name, sequence_mode=mode, impl=impl)
    tokens, lengths = _batch([4, 1, 2, 4])
    wider = torch.cat([tokens, torch.zeros(4, 3, dtype=torch.int64)], dim=1)  # 3 more pad columns
    junk = wider.clone()
    junk[:, 4:] = torch.randint(1, VOCAB, (4, 3))  # whatever sits after the end is not read
    for row, n in enumerate(lengths.tolist()):
        junk[row, n:4] = 7
    with torch.no_grad():
        expected = model(tokens, lengths)
        torch.testing.assert_close(expected, model(wider, lengths), atol=ATOL, rtol=0)
        torch.testing.assert_close(expected, model(junk, lengths), atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", list_models())
def test_forward_is_forward_embedded_of_embed(name: str) -> None:
    """model(t, l) == model.forward_embedded(model.embed(t), l): what gradient flow and the
    attributions differentiate; padding of the embedded input gets no gradient."""
    model = _model(name)
    tokens, lengths = _batch([4, 2, 1])
    x = model.embed(tokens).detach().requires_grad_(True)
    logits = model.forward_embedded(x, lengths)
    torch.testing.assert_close(logits, model(tokens, lengths), atol=ATOL, rtol=0)
    logits.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad[1, 2:].abs().sum() == 0 and x.grad[2, 1:].abs().sum() == 0
    assert x.grad[0].abs().sum(dim=-1).gt(0).all()  # every real step reaches the logits


@pytest.mark.parametrize("name", list_models())
def test_rows_of_pure_padding_stay_finite(name: str) -> None:
    model = _model(name).train()
    tokens, lengths = _batch([3, 1, 2])
    tokens[1] = 0
    lengths[1] = 0
    logits = model(tokens, lengths)
    assert logits.shape == (3, 3) and torch.isfinite(logits).all()
    model.loss(logits, torch.tensor([0, 1, 2])).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small two-label CSV the contract tests train on."""
    rng = np.random.default_rng(0)
    words = {0: ["bad", "awful", "dull"], 1: ["good", "great", "fun"]}
    filler = ["the", "movie", "plot", "film", "scene", "story"]
    path = tmp_path_factory.mktemp("corpus") / "reviews.csv"
    lines = ["text,label"]
    for i in range(120):
        text = [*rng.choice(words[i % 2], 2), *rng.choice(filler, 4)]
        rng.shuffle(text)
        lines.append(f"{' '.join(text)},{('negative', 'positive')[i % 2]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("name", list_models())
def test_save_load_round_trip_and_predict_on_raw_text(
    name: str, tiny_corpus: Path, tmp_path: Path
) -> None:
    """Every preset trains into a run folder, loads back with the same outputs (the spec and
    the weights' shapes checked by load_run) and predicts labels for new text."""
    config = RunConfig(
        DataConfig(dataset=str(tiny_corpus), max_len=12),
        ModelConfig(name=name, embed_dim=8, hidden_dim=8),
        TrainConfig(epochs=1, batch_size=16, lr=1e-2, progress=False, patience=None),
    )
    result = api.train(config, out=tmp_path, name="run", verbose=False)
    loaded = api.load_run(result.run_dir)
    assert type(loaded.model) is type(result.model) and loaded.model.spec == result.model.spec
    splits = load_splits(config.data)
    result.model.cpu().eval()
    torch.testing.assert_close(
        predict_logits(loaded.model, splits.test), predict_logits(result.model, splits.test),
        rtol=0, atol=0,
    )  # fmt: skip
    [good, bad] = api.predict(loaded, ["a great fun film", "dull awful plot"])
    for answer in (good, bad):
        assert answer.label in ("negative", "positive")
        assert sum(answer.probabilities.values()) == pytest.approx(1.0)


def test_presets_have_descriptions_and_notebook_setup() -> None:
    assert {"rnn", "lstm", "gru"} <= set(list_models())
    assert len(list_models()) >= 5
    for name in ("rnn", "lstm", "gru"):
        spec = _model(name, embed_dim=None, hidden_dim=None).spec
        assert (spec.kind, spec.embed_dim, spec.hidden_dim) == (name, 100, 128)
        assert (spec.num_layers, spec.bidirectional, spec.pooling, spec.dropout) == (
            1,
            False,
            "last",
            0.0,
        )
    for name in list_models():
        assert get_preset(name).description
    assert get_preset("BiGRU-Max").name == "bigru-max"


# -- padded vs packed, torch vs scratch, trace ------------------------------------------------

COMBOS = list(itertools.product(KINDS, [1, 2], [False, True], POOLINGS))


@pytest.mark.parametrize(("kind", "layers", "bidirectional", "pooling"), COMBOS)
def test_padded_packed_scratch_and_trace_agree(
    kind: str, layers: int, bidirectional: bool, pooling: str
) -> None:
    model = _model(kind, kind=kind, num_layers=layers, bidirectional=bidirectional, pooling=pooling)
    tokens, lengths = _batch([6, 1, 3, 2, 6], seed=layers)
    with torch.no_grad():
        expected = model(tokens, lengths)
        for mode, impl in [("packed", "torch"), ("padded", "scratch"), ("packed", "scratch")]:
            got = _twin(model, sequence_mode=mode, impl=impl)(tokens, lengths)
            torch.testing.assert_close(got, expected, atol=ATOL, rtol=0, msg=f"{mode} {impl}")
        logits, trace = model.trace(model.embed(tokens), lengths)
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)
    assert len(trace.hidden) == tokens.shape[1]
    assert all(h.shape == (5, HIDDEN) for h in trace.hidden)
    assert (trace.cell is not None) == (kind == "lstm")


@settings(max_examples=15, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    bidirectional=st.booleans(),
    pooling=st.sampled_from(POOLINGS),
    lengths=st.lists(st.integers(1, 7), min_size=1, max_size=5),
)
def test_padded_equals_packed_for_random_lengths(
    kind: str, bidirectional: bool, pooling: str, lengths: list[int]
) -> None:
    model = _model(kind, kind=kind, num_layers=2, bidirectional=bidirectional, pooling=pooling)
    tokens, lengths_t = _batch(lengths, extra=1)
    with torch.no_grad():
        padded = model(tokens, lengths_t)
        packed = _twin(model, sequence_mode="packed")(tokens, lengths_t)
    torch.testing.assert_close(padded, packed, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "bigru-max", "bilstm-max"])
def test_fast_padded_path_gives_the_packed_loss_and_gradients(name: str) -> None:
    """Speed never changes results: the padded path trains exactly like the packed one."""
    model = _model(name, dropout=0.0).train()
    packed = _twin(model, sequence_mode="packed").train()
    tokens, lengths = _batch([9, 1, 4, 7, 9, 2], seed=3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    losses = []
    for net in (model, packed):
        loss = net.loss(net(tokens, lengths), labels)
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1], atol=ATOL, rtol=0)
    for (param_name, fast), slow in zip(model.named_parameters(), packed.parameters(), strict=True):
        assert fast.grad is not None and slow.grad is not None
        torch.testing.assert_close(fast.grad, slow.grad, atol=ATOL, rtol=0, msg=param_name)


def test_state_dicts_are_interchangeable_between_impls() -> None:
    torch_model = _model("bilstm-max", num_layers=2)
    scratch_model = _model("bilstm-max", num_layers=2, impl="scratch", seed=1)
    assert list(torch_model.state_dict()) == list(scratch_model.state_dict())
    assert "rnn.weight_ih_l1_reverse" in torch_model.state_dict()
    scratch_model.load_state_dict(torch_model.state_dict())
    tokens, lengths = _batch([3, 5])
    with torch.no_grad():
        torch.testing.assert_close(
            scratch_model(tokens, lengths), torch_model(tokens, lengths), atol=ATOL, rtol=0
        )


@pytest.mark.parametrize("kind", KINDS)
def test_trace_states_carry_gradients(kind: str) -> None:
    model = _model(kind, kind=kind).train()  # dropout 0: train mode is deterministic here
    tokens, lengths = _batch([5, 3])
    x = model.embed(tokens)
    logits, trace = model.trace(x, lengths)
    assert isinstance(trace, StateTrace)
    for h in trace.hidden:
        h.retain_grad()
    model.loss(logits, torch.tensor([0, 2])).backward()
    norms = torch.stack([h.grad.norm(dim=-1) for h in trace.hidden if h.grad is not None])  # (T, B)
    assert norms.shape == (5, 2)
    assert (norms[:, 0] > 0).all()  # every real step of row 0 reaches the loss
    assert (norms[:3, 1] > 0).all() and (norms[3:, 1] == 0).all()  # padding of row 1 does not
    hidden_norms = torch.stack([h.norm(dim=-1) for h in trace.hidden])
    assert torch.isfinite(hidden_norms).all()


def test_forward_embedded_composes_with_embed() -> None:
    model = _model("gru")
    tokens, lengths = _batch([4, 2])
    x = model.embed(tokens).detach().requires_grad_(True)
    logits = model.forward_embedded(x, lengths)
    torch.testing.assert_close(logits, model(tokens, lengths))
    logits.sum().backward()
    assert x.grad is not None and x.grad[1, 2:].abs().sum() == 0  # padding gets no gradient


@pytest.mark.parametrize("mode", ["padded", "packed"])
@pytest.mark.parametrize("name", ["lstm", "bigru-max"])
def test_zero_length_row_does_not_crash(name: str, mode: str) -> None:
    model = _model(name, sequence_mode=mode)
    tokens, _ = _batch([3, 1, 2])
    tokens[1] = 0
    logits = model(tokens, torch.tensor([3, 0, 2]))
    assert logits.shape == (3, 3) and torch.isfinite(logits).all()
    logits_trace, _ = model.trace(model.embed(tokens), torch.tensor([3, 0, 2]))
    torch.testing.assert_close(logits_trace, logits, atol=ATOL, rtol=0)


# -- heads, tasks and inputs ------------------------------------------------------------------


def test_single_logit_binary_uses_bce() -> None:
    model = _model("lstm", num_classes=2, binary_single_logit=True)
    tokens, lengths = _batch([3, 2, 4])
    logits = model(tokens, lengths)
    assert logits.shape == (3, 1)
    labels = torch.tensor([0, 1, 1])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits.squeeze(-1), labels.float()
    )
    torch.testing.assert_close(model.loss(logits, labels), expected)
    probs = model.probabilities(logits)
    assert probs.shape == (3, 2)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))
    assert torch.equal(model.predict(logits), probs.argmax(-1))


def test_two_logit_binary_and_multiclass_use_cross_entropy() -> None:
    for classes in (2, 4):
        model = _model("gru", num_classes=classes)
        tokens, lengths = _batch([3, 2])
        logits = model(tokens, lengths)
        assert logits.shape == (2, classes)
        labels = torch.tensor([0, 1])
        torch.testing.assert_close(
            model.loss(logits, labels), torch.nn.functional.cross_entropy(logits, labels)
        )
        assert model.predict(logits).dtype == torch.int64
        torch.testing.assert_close(model.probabilities(logits).sum(-1), torch.ones(2))


def test_continuous_inputs_and_regression_head() -> None:
    torch.manual_seed(0)
    model = create_model(
        "bigru-max", vocab_size=0, num_classes=1, input_dim=2, task="regression", **TINY
    )
    assert model.embedding is None and count_parameters(model)["embedding"] == 0
    x = torch.randn(3, 6, 2)  # (B, T, F)
    lengths = torch.tensor([6, 6, 4])
    assert torch.equal(model.embed(x), x)
    out = model(x, lengths)
    assert out.shape == (3, 1)
    target = torch.randn(3)
    torch.testing.assert_close(
        model.loss(out, target), torch.nn.functional.mse_loss(out.squeeze(-1), target)
    )
    assert model.predict(out).shape == (3,)
    model.loss(out, target).backward()
    packed = _twin(model.eval(), sequence_mode="packed", impl="scratch")
    with torch.no_grad():
        torch.testing.assert_close(packed(x, lengths), model(x, lengths), atol=ATOL, rtol=0)
        torch.testing.assert_close(model.trace(x, lengths)[0], model(x, lengths), atol=ATOL, rtol=0)


def test_embedding_padding_row_is_zero_and_gets_no_gradient() -> None:
    model = _model("rnn").train()
    assert model.embedding is not None
    assert model.embedding.padding_idx == 0
    assert model.embedding.weight[0].abs().sum() == 0
    tokens, lengths = _batch([2, 4])
    model.loss(model(tokens, lengths), torch.tensor([0, 1])).backward()
    assert model.embedding.weight.grad is not None
    assert model.embedding.weight.grad[0].abs().sum() == 0


# -- spec, counts, registry errors ------------------------------------------------------------


def test_spec_round_trip() -> None:
    model = _model("bilstm-max", impl="scratch", pooling="mean", num_layers=2)
    raw = model.spec.to_dict()
    assert raw["name"] == "bilstm-max" and raw["num_layers"] == 2
    rebuilt = RecurrentClassifier.from_spec(raw)
    assert rebuilt.spec == model.spec
    rebuilt.load_state_dict(model.state_dict())
    with pytest.raises(RnnlabError, match="unknown model spec fields"):
        ModelSpec.from_dict({**raw, "colour": "red"})


def test_count_parameters() -> None:
    model = _model("lstm")
    counts = count_parameters(model)
    rec = 4 * HIDDEN * (EMBED + HIDDEN) + 2 * 4 * HIDDEN
    assert counts == {
        "embedding": VOCAB * EMBED,
        "recurrent": rec,
        "head": HIDDEN * 3 + 3,
        "total": VOCAB * EMBED + rec + HIDDEN * 3 + 3,
        "trainable": VOCAB * EMBED + rec + HIDDEN * 3 + 3,
    }
    frozen = _model("lstm", freeze_embeddings=True)
    assert count_parameters(frozen)["trainable"] == rec + HIDDEN * 3 + 3
    bi = count_parameters(_model("bigru-max"))
    assert bi["head"] == 2 * HIDDEN * 3 + 3


def test_create_model_from_config() -> None:
    cfg = ModelConfig(name="gru", hidden_dim=8, embed_dim=6, bidirectional=True, pooling="max")
    model = create_model_from_config(cfg, vocab_size=VOCAB, num_classes=2)
    spec = model.spec
    assert (spec.kind, spec.hidden_dim, spec.bidirectional, spec.pooling) == ("gru", 8, True, "max")
    assert spec.sequence_mode == "padded" and spec.impl == "torch"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"hidden_dim": 0}, "hidden_dim must be a positive integer"),
        ({"num_layers": -1}, "num_layers"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"dropout": -0.1}, "dropout"),
        ({"colour": "red"}, "unknown model override.*colour.*valid ones"),
        ({"pooling": "sum"}, "pooling must be one of last, mean, max, first"),
        ({"pooling": "first"}, "pooling first does not apply to lstm"),
        ({"kind": "cnn"}, "kind must be one of rnn, lstm, gru, bow, hawk, mamba, mingru"),
        ({"sequence_mode": "ragged"}, "padded or packed"),
        ({"impl": "cuda"}, "torch or scratch"),
        ({"binary_single_logit": True}, "needs exactly 2 classes"),
        ({"embeddings": "glove-6b-50d"}, "vocabulary words"),
    ],
)
def test_bad_overrides(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(RnnlabError, match=match):
        create_model("lstm", vocab_size=VOCAB, num_classes=3, **overrides)


def test_unknown_model_lists_presets() -> None:
    with pytest.raises(RnnlabError, match=r"unknown model 'cnn'.*rnn, lstm, gru"):
        create_model("cnn", vocab_size=VOCAB, num_classes=2)
    with pytest.raises(RnnlabError, match="bigru-max"):
        get_preset("nope")


def test_none_overrides_are_ignored() -> None:
    model = create_model("gru", vocab_size=VOCAB, num_classes=2, hidden_dim=None, embed_dim=6)
    assert model.spec.hidden_dim == 128 and model.spec.embed_dim == 6


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gate_bias_sets_the_memory_gate_only(kind: str) -> None:
    from rnnlab.models import ModelSpec, RecurrentClassifier

    model = create_model(
        kind, vocab_size=30, num_classes=2, hidden_dim=8, embed_dim=6, gate_bias=5.0
    )
    for name, param in model.rnn.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.all(param[8:16] == 5.0) and not torch.all(param[:8] == 5.0)
        if name.startswith("bias_hh"):
            assert torch.all(param[8:16] == 0.0)
    assert model.spec.gate_bias == 5.0
    again = RecurrentClassifier.from_spec(ModelSpec.from_dict(model.spec.to_dict()))
    assert again.spec.gate_bias == 5.0


def test_gate_bias_is_ignored_by_the_vanilla_rnn() -> None:
    torch.manual_seed(0)
    plain = create_model("rnn", vocab_size=30, num_classes=2, hidden_dim=8, embed_dim=6)
    torch.manual_seed(0)
    biased = create_model(
        "rnn", vocab_size=30, num_classes=2, hidden_dim=8, embed_dim=6, gate_bias=5.0
    )
    for a, b in zip(plain.parameters(), biased.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (2, True)])
def test_recurrent_flops_per_token_matches_counted_matmuls(
    kind: str, layers: int, bidirectional: bool
) -> None:
    model = create_model(
        kind, vocab_size=30, num_classes=2, embed_dim=6, hidden_dim=5, num_layers=layers,
        bidirectional=bidirectional, impl="scratch",
    )  # fmt: skip
    batch, steps = 3, 7
    x = torch.randn(batch, steps, 6)
    with FlopCounterMode(display=False) as counter:
        model._encode(x, torch.full((batch,), steps))
    assert counter.get_total_flops() == model.spec.recurrent_flops_per_token * batch * steps
    assert create_model("lstm", vocab_size=9, num_classes=2).spec.recurrent_flops_per_token == (
        2 * (100 + 128) * 4 * 128
    )


def test_build_model_sizes_the_preset_for_the_data() -> None:
    split = EncodedSplit.from_sequences([[2, 3], [4]], [0, 2])
    splits = EncodedSplits(split, split, split, ["a", "b", "c"], vocab_size=VOCAB)
    model = build_model(ModelConfig(name="gru", kind="lstm", hidden_dim=HIDDEN), splits)
    assert model.spec.kind == "lstm" and model.spec.vocab_size == VOCAB
    assert model.spec.num_classes == 3 and model.spec.hidden_dim == HIDDEN
    other = build_model(ModelConfig(kind="lstm"), splits, name="rnn", hidden_dim=4)
    assert other.spec.kind == "rnn" and other.spec.hidden_dim == 4  # the new preset's cell
