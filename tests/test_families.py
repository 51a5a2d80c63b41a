"""Family-specific exactness: minGRU / minLSTM's parallel scan against the step-by-step
equations, the bag of n-grams' hashed bigrams and its EmbeddingBag path, the Transformer's mask,
positions and pooling. The registry contract tests (tests/test_models.py) cover the rest."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.errors import RnnlabError
from rnnlab.models import ModelSpec, create_model, from_spec
from rnnlab.models.bow import bigram_ids
from rnnlab.models.minrnn import (
    heinsen_scan,
    parallel_scan,
    reverse_linear_scan,
    sequential_steps,
)

VOCAB = 30
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def _batch(lengths: list[int], seed: int = 0, width: int | None = None) -> tuple[Any, Any]:
    """Right-padded ids (B, width) and lengths (B,); a length 0 is a row of pure padding."""
    gen = torch.Generator().manual_seed(seed)
    width = width or max(max(lengths), 1)
    tokens = torch.randint(1, VOCAB, (len(lengths), width), generator=gen)
    lengths_t = torch.tensor(lengths, dtype=torch.int64)
    return tokens.masked_fill(torch.arange(width)[None, :] >= lengths_t[:, None], 0), lengths_t


def _min_model(name: str, dtype: torch.dtype, impl: str = "torch", **changes: Any) -> Any:
    torch.manual_seed(0)
    settings_ = {"embed_dim": 5, "hidden_dim": 6, "dropout": 0.0, **changes}
    model = create_model(name, vocab_size=VOCAB, num_classes=3, impl=impl, **settings_)
    return model.to(dtype).train()


def _sequential_twin(model: Any) -> Any:
    twin = from_spec(ModelSpec.from_dict({**model.spec.to_dict(), "impl": "scratch"}))
    twin = twin.to(next(model.parameters()).dtype).train()
    twin.load_state_dict(model.state_dict())
    return twin


# -- minGRU / minLSTM: the scan -----------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    steps=st.integers(1, 70),
    batch=st.integers(1, 4),
    hidden=st.integers(1, 5),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    scale=st.sampled_from([0.1, 1.0, 5.0, 30.0]),
    seed=st.integers(0, 10_000),
)
def test_parallel_scan_is_the_recurrence_with_its_gradients(
    steps: int, batch: int, hidden: int, dtype: torch.dtype, scale: float, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    k = (scale * torch.randn(steps, batch, hidden, generator=gen, dtype=dtype)).requires_grad_()
    v = (scale * torch.randn(steps, batch, hidden, generator=gen, dtype=dtype)).requires_grad_()
    h = parallel_scan(k, v)  # (T, B, H) time-major
    gates = torch.cat([k, v], dim=-1).transpose(0, 1)  # (B, T, 2H)
    expected = torch.stack(sequential_steps("mingru", gates), dim=0)  # (T, B, H)
    assert torch.isfinite(h).all()
    tol = TOLERANCE[dtype] * max(1.0, scale)
    torch.testing.assert_close(h, expected, atol=tol, rtol=tol)
    weights = torch.randn(h.shape, generator=gen, dtype=dtype)
    got = torch.autograd.grad((h * weights).sum(), [k, v])
    want = torch.autograd.grad((expected * weights).sum(), [k, v])
    for a, b in zip(got, want, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


def test_scan_at_4000_steps_in_float64() -> None:
    """T = 4000: |cumsum(log a)| reaches thousands; chunking keeps the log-space scan exact."""
    gen = torch.Generator().manual_seed(3)
    k = (2 * torch.randn(4000, 2, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    v = torch.randn(4000, 2, 3, generator=gen, dtype=torch.float64).requires_grad_()
    h = parallel_scan(k, v)
    expected = torch.stack(
        sequential_steps("mingru", torch.cat([k, v], dim=-1).transpose(0, 1)), dim=0
    )
    torch.testing.assert_close(h, expected, atol=1e-10, rtol=1e-10)
    got = torch.autograd.grad(h[::97].sum(), [k, v])
    want = torch.autograd.grad(expected[::97].sum(), [k, v])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_scan_at_4000_steps_in_float32_stays_close_and_finite() -> None:
    gen = torch.Generator().manual_seed(4)
    k = 3 * torch.randn(4000, 2, 3, generator=gen)
    v = torch.randn(4000, 2, 3, generator=gen)
    h = parallel_scan(k, v)
    expected = torch.stack(
        sequential_steps("mingru", torch.cat([k, v], dim=-1).transpose(0, 1)), dim=0
    )
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h, expected, atol=1e-5, rtol=1e-5)


def test_extreme_gates_give_no_nan_or_inf() -> None:
    """Saturated gates (|k| up to 1e4) and huge candidates: finite values and gradients."""
    k = torch.tensor([[-1e4, 1e4, 0.0, 80.0, -80.0]], dtype=torch.float32).T[:, :, None]
    k = k.expand(5, 2, 1).clone().requires_grad_()
    v = torch.tensor([-1e4, 1e3, 0.0, -100.0, 5.0])[:, None, None].expand(5, 2, 1)
    v = v.clone().requires_grad_()
    h = parallel_scan(k, v)
    h.sum().backward()
    assert torch.isfinite(h).all() and torch.isfinite(k.grad).all() and torch.isfinite(v.grad).all()


def test_heinsen_scan_and_the_reverse_scan_solve_their_recurrences() -> None:
    gen = torch.Generator().manual_seed(5)
    a = torch.rand(23, 2, 3, generator=gen, dtype=torch.float64)
    b = torch.rand(23, 2, 3, generator=gen, dtype=torch.float64)
    h, forward = heinsen_scan(a.log(), b.log()), []
    state = torch.zeros(2, 3, dtype=torch.float64)
    for t in range(23):
        state = a[t] * state + b[t]
        forward.append(state)
    torch.testing.assert_close(h, torch.stack(forward), atol=1e-12, rtol=1e-12)
    both = [heinsen_scan(a.log(), b.log(), stepped=s) for s in (True, False)]
    torch.testing.assert_close(both[0], both[1], atol=1e-12, rtol=1e-12)  # the GPU's path too
    y, backward = reverse_linear_scan(a, b), []
    state = torch.zeros(2, 3, dtype=torch.float64)
    for t in range(22, -1, -1):  # the adjoint's shift: a_{t+1} carries y_{t+1} back to t
        state = b[t] + (a[t + 1] * state if t < 22 else 0)
        backward.append(state)
    torch.testing.assert_close(y, torch.stack(backward[::-1]), atol=1e-12, rtol=1e-12)


# -- minGRU / minLSTM: the model ----------------------------------------------------------------

MIN_PRESETS = ["mingru", "minlstm", "bimingru-max"]


@settings(max_examples=20, deadline=None)
@given(
    name=st.sampled_from(MIN_PRESETS),
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=4),
    layers=st.integers(1, 2),
    pooling=st.sampled_from(["last", "mean", "max"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_parallel_model_equals_the_sequential_mode(
    name: str, lengths: list[int], layers: int, pooling: str, dtype: torch.dtype
) -> None:
    """Logits and every parameter gradient, parallel scan vs step by step, for any lengths
    (length 1, rows of pure padding) and extra padding columns."""
    model = _min_model(name, dtype, num_layers=layers, pooling=pooling)
    twin = _sequential_twin(model)
    tokens, lengths_t = _batch(lengths, width=max(max(lengths), 1) + 2)
    labels = torch.arange(len(lengths)) % 3
    tol = TOLERANCE[dtype]
    outputs, grads = [], []
    for net in (model, twin):
        logits = net(tokens, lengths_t)
        assert torch.isfinite(logits).all()
        outputs.append(logits)
        grads.append(torch.autograd.grad(net.loss(logits, labels), list(net.parameters())))
    torch.testing.assert_close(outputs[0], outputs[1], atol=tol, rtol=tol)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)
    trace_logits, trace = model.trace(model.embed(tokens), lengths_t)
    torch.testing.assert_close(trace_logits, outputs[0], atol=tol, rtol=tol)
    assert len(trace.hidden) == tokens.shape[1] and trace.cell is None


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_minlstm_and_mingru_follow_their_equations(name: str) -> None:
    """One step by hand: minGRU (1 - z) h + z g(.), minLSTM f/(f+i) h + i/(f+i) g(.)."""
    model = _min_model(name, torch.float64)
    layer = model.rnn["l0"]
    x = torch.randn(2, 3, 5, dtype=torch.float64)
    _, trace = model.trace(x, torch.tensor([3, 3]))
    h = torch.zeros(2, 6, dtype=torch.float64)
    for t in range(3):
        blocks = layer(x[:, t]).chunk(2 if name == "mingru" else 3, dim=-1)
        candidate = torch.where(blocks[-1] >= 0, blocks[-1] + 0.5, torch.sigmoid(blocks[-1]))
        if name == "mingru":
            z = torch.sigmoid(blocks[0])
            h = (1 - z) * h + z * candidate
        else:
            f, i = torch.sigmoid(blocks[0]), torch.sigmoid(blocks[1])
            h = f / (f + i) * h + i / (f + i) * candidate
        torch.testing.assert_close(trace.hidden[t], h, atol=1e-12, rtol=1e-12)


def test_streaming_steps_give_the_states_of_the_whole_text() -> None:
    model = _min_model("mingru", torch.float64, num_layers=2).eval()
    tokens, lengths = _batch([7, 7], seed=2)
    x = model.embed(tokens)
    with torch.no_grad():
        whole, _ = model._layered(x, lengths, sequential=False)  # (B, T, H)
        state = None
        for t in range(7):
            out, state = model.step(x[:, t], state)
            torch.testing.assert_close(out, whole[:, t], atol=1e-12, rtol=1e-12)
    with pytest.raises(RnnlabError, match="unidirectional"):
        _min_model("bimingru-max", torch.float64).step(x[:, 0])


def test_gate_bias_keeps_the_state_at_the_start() -> None:
    gru = _min_model("mingru", torch.float32, gate_bias=3.0)
    assert torch.all(gru.rnn["l0"].bias[:6] == -3.0)  # z small: keep h
    lstm = _min_model("minlstm", torch.float32, gate_bias=3.0)
    assert torch.all(lstm.rnn["l0"].bias[:6] == 3.0) and torch.all(lstm.rnn["l0"].bias[6:12] == 0)


def test_min_families_refuse_packed_sequences() -> None:
    with pytest.raises(RnnlabError, match="sequence_mode packed does not apply to mingru"):
        create_model("mingru", vocab_size=VOCAB, num_classes=2, sequence_mode="packed")


# -- bag of n-grams -----------------------------------------------------------------------------


def test_bigrams_are_hashed_from_the_encoded_ids() -> None:
    tokens = torch.tensor([[3, 4, 5, 0], [4, 5, 0, 0]])
    pairs = bigram_ids(tokens, VOCAB, 1000)
    assert pairs[:, 0].tolist() == [0, 0]  # no pair before the first word
    assert pairs[0, 1] == VOCAB + (3 * 1_000_003 + 4) % 1000
    assert pairs[0, 2] == pairs[1, 1]  # the same pair (4, 5) gets the same row
    assert pairs[0, 3] == 0 and pairs[1, 2] == 0  # pairs touching padding: the <pad> row


@pytest.mark.parametrize("buckets", [0, 64])
def test_bow_is_the_mean_of_word_and_pair_vectors(buckets: int) -> None:
    torch.manual_seed(0)
    model = create_model("bow", vocab_size=VOCAB, num_classes=3, embed_dim=4, hash_buckets=buckets)
    model.eval()
    tokens, lengths = _batch([5, 1, 3], seed=1)
    weight = model.embedding.weight
    rows = []
    for row, n in enumerate(lengths.tolist()):
        words = tokens[row, :n]
        vectors = [weight[w] for w in words]
        if buckets:
            vectors += [
                weight[VOCAB + (a * 1_000_003 + b) % buckets] for a, b in itertools.pairwise(words)
            ]
        rows.append(torch.stack(vectors).mean(dim=0))
    expected = model.head(torch.stack(rows))
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, lengths), expected, atol=1e-6, rtol=1e-5)
        embedded = model.forward_embedded(model.embed(tokens), lengths)
        torch.testing.assert_close(embedded, expected, atol=1e-6, rtol=1e-5)


def test_bow_word_order_enters_only_through_pairs() -> None:
    torch.manual_seed(0)
    words = create_model("bow", vocab_size=VOCAB, num_classes=2, embed_dim=4, hash_buckets=0)
    pairs = create_model("bow", vocab_size=VOCAB, num_classes=2, embed_dim=4, hash_buckets=97)
    tokens = torch.tensor([[3, 4, 5, 6]])
    shuffled = torch.tensor([[6, 4, 3, 5]])
    lengths = torch.tensor([4])
    with torch.no_grad():
        torch.testing.assert_close(words(tokens, lengths), words(shuffled, lengths))
        assert not torch.allclose(pairs(tokens, lengths), pairs(shuffled, lengths))


def test_bow_pretrained_vectors_fill_the_word_rows() -> None:
    model = create_model("bow", vocab_size=VOCAB, num_classes=2, embed_dim=4, hash_buckets=8)
    pairs_before = model.embedding.weight[VOCAB:].detach().clone()
    model.load_embeddings(torch.ones(VOCAB, 4))
    assert torch.all(model.embedding.weight[1:VOCAB] == 1) and torch.all(
        model.embedding.weight[0] == 0
    )
    assert torch.equal(model.embedding.weight[VOCAB:], pairs_before)


# -- transformer ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["mean", "max", "first"])
@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_transformer_masks_padding_and_pools(pooling: str, positions: str) -> None:
    torch.manual_seed(0)
    model = create_model(
        "transformer", vocab_size=VOCAB, num_classes=3, embed_dim=6, hidden_dim=8,
        pooling=pooling, positions=positions,
    ).eval()  # fmt: skip
    tokens, lengths = _batch([5, 2, 3])
    with torch.no_grad():
        batch = model(tokens, lengths)
        for row, n in enumerate(lengths.tolist()):  # each text alone, without padding
            alone = model(tokens[row : row + 1, :n], lengths[row : row + 1])
            torch.testing.assert_close(batch[row : row + 1], alone, atol=1e-5, rtol=1e-5)
    assert (model.cls is not None) == (pooling == "first")


def test_transformer_reads_positions() -> None:
    torch.manual_seed(0)
    model = create_model("transformer", vocab_size=VOCAB, num_classes=2, embed_dim=8, hidden_dim=8)
    model.eval()
    with torch.no_grad():
        a = model(torch.tensor([[3, 4, 5, 6]]), torch.tensor([4]))
        b = model(torch.tensor([[6, 5, 4, 3]]), torch.tensor([4]))
    assert not torch.allclose(a, b)


def test_transformer_settings_are_checked() -> None:
    with pytest.raises(RnnlabError, match="multiple of num_heads"):
        create_model("transformer", vocab_size=VOCAB, num_classes=2, hidden_dim=6, num_heads=4)
    with pytest.raises(RnnlabError, match="bidirectional does not apply"):
        create_model("transformer", vocab_size=VOCAB, num_classes=2, bidirectional=True)
    with pytest.raises(RnnlabError, match="impl scratch does not apply to transformer"):
        create_model("transformer", vocab_size=VOCAB, num_classes=2, impl="scratch")
    learned = create_model(
        "transformer", vocab_size=VOCAB, num_classes=2, embed_dim=8, hidden_dim=8,
        positions="learned", max_positions=4,
    )  # fmt: skip
    with pytest.raises(RnnlabError, match="longer than the 4 learned positions"):
        learned(torch.ones(1, 5, dtype=torch.int64), torch.tensor([5]))


def test_float64_diagnostics_run_every_family() -> None:
    """Gradient flow runs each family in float64; nothing in a family may assume float32."""
    for name in ("bow", "mingru", "transformer"):
        torch.manual_seed(0)
        model = create_model(name, vocab_size=VOCAB, num_classes=2, embed_dim=8, hidden_dim=8)
        model = model.double().train()
        tokens, lengths = _batch([4, 2])
        x = model.embed(tokens).detach().requires_grad_(True)
        logits = model.forward_embedded(x, lengths)
        assert logits.dtype == torch.float64
        (grad,) = torch.autograd.grad(logits.sum(), [x])
        assert torch.isfinite(grad).all() and grad[1, 2:].abs().sum() == 0
