"""The per-step gradients of the gradient-flow diagnostic, checked independently:

- dL/dx_t through the fused torch layer == through the hand-written cells (model.trace),
  for every kind and for bidirectional, stacked, packed and scratch variants;
- dL/dx_t against central finite differences on a tiny float64 model;
- dL/dh_t and dL/dc_t against finite differences of a loss unrolled here from the gate
  equations, with a perturbation injected into the state at step t;
- the RNN identity dL/dx_t = W_ih^T [(1 - h_t^2) * dL/dh_t].
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from rnnlab.diagnostics.gradient_flow import reading, step_gradients
from rnnlab.diagnostics.gradients import gradient_mode, sum_loss
from rnnlab.models import create_model
from rnnlab.models.cells import layer_weights

VOCAB, EMBED, HIDDEN, CLASSES = 20, 3, 4, 3
KINDS = ["rnn", "lstm", "gru"]
EPS = 1e-6


def _model(kind: str, seed: int = 0, **overrides: Any) -> torch.nn.Module:
    torch.manual_seed(seed)
    settings = {"embed_dim": EMBED, "hidden_dim": HIDDEN, **overrides}
    return create_model(kind, vocab_size=VOCAB, num_classes=CLASSES, **settings).double()


def _batch(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    steps = max(lengths)
    tokens = torch.randint(1, VOCAB, (len(lengths), steps), generator=gen)
    lengths_t = torch.tensor(lengths, dtype=torch.int64)
    tokens = tokens.masked_fill(torch.arange(steps)[None, :] >= lengths_t[:, None], 0)
    labels = torch.randint(0, CLASSES, (len(lengths),), generator=gen)
    return tokens, lengths_t, labels


def _loss_of_x(
    model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor
) -> float:
    with gradient_mode(model), torch.no_grad():
        return float(sum_loss(model, model.forward_embedded(x, lengths), labels))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"bidirectional": True},
        {"num_layers": 2, "dropout": 0.5},
        {"sequence_mode": "packed"},
        {"impl": "scratch"},
        {"pooling": "mean"},
    ],
    ids=["plain", "bidirectional", "two-layers-dropout", "packed", "scratch", "mean-pool"],
)
def test_fused_layer_and_hand_written_cells_give_the_same_input_gradients(
    kind: str, variant: dict[str, Any]
) -> None:
    model = _model(kind, **variant)
    tokens, lengths, labels = _batch([7, 5, 7, 2])
    grads = step_gradients(model, tokens, lengths, labels)
    assert grads.x.shape == (4, 7, EMBED) and grads.h.shape == (4, 7, HIDDEN)
    assert (grads.c is not None) == (kind == "lstm")
    torch.testing.assert_close(grads.x, grads.x_trace, rtol=1e-9, atol=1e-12)
    assert grads.x.abs().max() > 0
    # padding positions get no gradient (they come after the real tokens)
    assert float(grads.x[1, 5:].abs().max()) == 0.0 and float(grads.x[3, 2:].abs().max()) == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_input_gradients_match_finite_differences(kind: str) -> None:
    model = _model(kind)
    tokens, lengths, labels = _batch([6, 4])
    grads = step_gradients(model, tokens, lengths, labels)
    with torch.no_grad():
        x = model.embed(tokens)  # (B, T, E), float64
    numeric = torch.zeros_like(x)
    for index in torch.cartesian_prod(*(torch.arange(n) for n in x.shape)).tolist():
        plus, minus = x.clone(), x.clone()
        plus[tuple(index)] += EPS
        minus[tuple(index)] -= EPS
        up = _loss_of_x(model, plus, lengths, labels)
        down = _loss_of_x(model, minus, lengths, labels)
        numeric[tuple(index)] = (up - down) / (2 * EPS)
    torch.testing.assert_close(grads.x, numeric, rtol=1e-5, atol=1e-8)
    # and so do the per-step norms the diagnostic reports
    norms = grads.norms()["x"]
    expected = numeric.norm(dim=-1).mean(dim=0)[:4]  # steps every row reaches
    torch.testing.assert_close(torch.from_numpy(norms[:4]), expected, rtol=1e-5, atol=1e-10)


def _unrolled_loss(
    model: torch.nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    inject: tuple[str, int, int, int] | None = None,
    delta: float = 0.0,
) -> float:
    """Loss of a one-layer, last-step-pooled model, unrolled here from the gate equations (not
    the library's cells); `inject=(state, t, b, k)` adds `delta` to c_t[b, k] before h_t is
    computed from it (so h_t sees it, as in the cell's graph), or to h_t[b, k] after step t."""
    kind = model.spec.kind
    w_ih, w_hh, b_ih, b_hh = layer_weights(model.rnn, 0, False)
    batch, steps, _ = x.shape
    h = x.new_zeros(batch, HIDDEN)
    c = x.new_zeros(batch, HIDDEN)

    def bump(state: str, t: int) -> torch.Tensor:
        out = torch.zeros_like(h)
        if inject is not None and inject[0] == state and inject[1] == t:
            out[inject[2], inject[3]] = delta
        return out

    for t in range(steps):
        gx = x[:, t] @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        if kind == "lstm":
            i, f, g, o = (gx + gh).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g) + bump("c", t)
            h = torch.sigmoid(o) * torch.tanh(c)
        elif kind == "gru":
            (x_r, x_z, x_n), (h_r, h_z, h_n) = gx.chunk(3, dim=-1), gh.chunk(3, dim=-1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            h = (1 - z) * torch.tanh(x_n + r * h_n) + z * h
        else:
            h = torch.tanh(gx + gh)
        h = h + bump("h", t)
    logits = model.head(h)
    return float(sum_loss(model, logits, labels))


@pytest.mark.parametrize("kind", KINDS)
def test_state_gradients_match_finite_differences_of_an_independent_unroll(kind: str) -> None:
    model = _model(kind)
    tokens, lengths, labels = _batch([5, 5, 5])
    grads = step_gradients(model, tokens, lengths, labels)
    with torch.no_grad():
        x = model.embed(tokens)
        assert abs(_unrolled_loss(model, x, labels) - _loss_of_x(model, x, lengths, labels)) < 1e-12
        states = ["h", "c"] if kind == "lstm" else ["h"]
        for state in states:
            analytic = grads.h if state == "h" else grads.c
            assert analytic is not None
            numeric = torch.zeros_like(analytic)
            for b in range(3):
                for t in range(5):
                    for k in range(HIDDEN):
                        where = (state, t, b, k)
                        up = _unrolled_loss(model, x, labels, inject=where, delta=EPS)
                        down = _unrolled_loss(model, x, labels, inject=where, delta=-EPS)
                        numeric[b, t, k] = (up - down) / (2 * EPS)
            torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-9)


def test_rnn_input_gradient_is_the_hidden_gradient_through_tanh_and_w_ih() -> None:
    model = _model("rnn", seed=3)
    tokens, lengths, labels = _batch([8, 8], seed=4)
    grads = step_gradients(model, tokens, lengths, labels)
    with torch.no_grad():
        _, trace = model.trace(model.embed(tokens), lengths)
        h = torch.stack(trace.hidden, dim=1)  # (B, T, H)
        w_ih = model.rnn.weight_ih_l0  # (H, E)
        expected = ((1 - h**2) * grads.h) @ w_ih  # (B, T, E)
    torch.testing.assert_close(grads.x, expected, rtol=1e-10, atol=1e-14)


def test_a_saturated_forget_gate_preserves_the_cell_gradient_and_a_weak_rnn_loses_it() -> None:
    lstm = _model("lstm", seed=5)
    with torch.no_grad():  # f = sigmoid(large) = 1, i = sigmoid(-large) = 0: c carries everything
        lstm.rnn.bias_ih_l0[HIDDEN : 2 * HIDDEN] = 30.0
        lstm.rnn.bias_ih_l0[:HIDDEN] = -30.0
    rnn = _model("rnn", seed=5)
    with torch.no_grad():
        rnn.rnn.weight_hh_l0.mul_(0.05)
    tokens, lengths, labels = _batch([40, 40], seed=6)
    cell = step_gradients(lstm, tokens, lengths, labels).norms()["c"]
    hidden = step_gradients(rnn, tokens, lengths, labels).norms()["h"]
    assert reading(cell[2] / cell[38]) == "well preserved"
    assert reading(hidden[2] / hidden[38]) == "severe vanishing"


def test_gradient_mode_turns_dropout_off_and_restores_everything() -> None:
    model = _model("lstm", num_layers=2, dropout=0.5).eval()
    spec = model.spec
    with gradient_mode(model):
        assert model.training and model.spec.dropout == 0.0 and model.rnn.dropout == 0.0
        assert all(m.p == 0.0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
        tokens, lengths, _ = _batch([5, 5])
        first = model(tokens, lengths)
        torch.testing.assert_close(first, model(tokens, lengths))  # deterministic: no dropout
    assert not model.training and model.spec is spec and model.rnn.dropout == 0.5
    assert all(m.p == 0.5 for m in model.modules() if isinstance(m, torch.nn.Dropout))


def test_reading_thresholds() -> None:
    assert reading(None) == "no gradient"
    assert reading(0.0) == reading(0.009) == "severe vanishing"
    assert reading(0.01) == reading(0.099) == "vanishing"
    assert reading(0.1) == reading(1.0) == reading(10.0) == "well preserved"
    assert reading(10.5) == "growing"
