"""Hand-written cells against torch.nn: same parameters, same outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.errors import RnnlabError
from rnnlab.models.cells import (
    ScratchRecurrent,
    gru_step,
    layer_weights,
    lstm_step,
    rnn_step,
    run_cells,
)

TORCH_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
ATOL = 1e-5


def _pair(kind: str, layers: int, bidirectional: bool) -> tuple[nn.Module, ScratchRecurrent]:
    torch.manual_seed(0)
    reference = TORCH_LAYERS[kind](
        6, 8, layers, batch_first=True, bidirectional=bidirectional
    ).eval()
    scratch = ScratchRecurrent(kind, 6, 8, layers, bidirectional=bidirectional).eval()
    scratch.load_state_dict(reference.state_dict())
    return reference, scratch


def test_step_functions_match_torch_cells() -> None:
    torch.manual_seed(0)
    x, h, c = torch.randn(3, 5), torch.randn(3, 4), torch.randn(3, 4)
    rnn, lstm, gru = nn.RNNCell(5, 4), nn.LSTMCell(5, 4), nn.GRUCell(5, 4)

    def proj(cell: nn.RNNCellBase) -> torch.Tensor:
        return nn.functional.linear(x, cell.weight_ih, cell.bias_ih)

    expected = rnn(x, h)
    got = rnn_step(proj(rnn), h, rnn.weight_hh, rnn.bias_hh)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    h_ref, c_ref = lstm(x, (h, c))
    h_new, c_new = lstm_step(proj(lstm), h, c, lstm.weight_hh, lstm.bias_hh)
    torch.testing.assert_close(h_new, h_ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(c_new, c_ref, atol=ATOL, rtol=0)
    got = gru_step(proj(gru), h, gru.weight_hh, gru.bias_hh)
    torch.testing.assert_close(got, gru(x, h), atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_scratch_layer_matches_torch(kind: str, layers: int, bidirectional: bool) -> None:
    reference, scratch = _pair(kind, layers, bidirectional)
    assert list(scratch.state_dict()) == list(reference.state_dict())
    for name, weight in reference.state_dict().items():
        assert scratch.state_dict()[name].shape == weight.shape
    x = torch.randn(4, 7, 6)  # (B, T, In)
    lengths = torch.tensor([7, 1, 4, 2])

    out_ref, state_ref = reference(x)  # padded semantics
    out, state = scratch(x)
    torch.testing.assert_close(out, out_ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(state, state_ref, atol=ATOL, rtol=0)

    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_packed, state_ref = reference(packed)  # packed semantics
    out_ref, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=7)
    out, state = scratch(x, lengths)
    torch.testing.assert_close(out, out_ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(state, state_ref, atol=ATOL, rtol=0)


def test_state_dict_moves_back_to_torch() -> None:
    reference, _ = _pair("lstm", 2, True)
    torch.manual_seed(1)
    fresh = ScratchRecurrent("lstm", 6, 8, 2, bidirectional=True)
    reference.load_state_dict(fresh.state_dict())
    x = torch.randn(2, 5, 6)
    torch.testing.assert_close(reference(x)[0], fresh.eval()(x)[0], atol=ATOL, rtol=0)


def test_same_init_distribution_as_torch() -> None:
    scratch = ScratchRecurrent("gru", 6, 16, 1)
    bound = 1 / 16**0.5
    for weight in scratch.parameters():
        assert weight.abs().max() <= bound


def test_run_cells_keeps_every_state_on_the_graph() -> None:
    torch.manual_seed(0)
    _, scratch = _pair("lstm", 1, False)
    x = torch.randn(2, 5, 6)
    run = run_cells("lstm", x, layer_weights(scratch, 0, reverse=False))
    assert len(run.hidden) == 5 and run.cell is not None and len(run.cell) == 5
    for h in run.hidden:
        h.retain_grad()
    run.output[:, -1].sum().backward()
    grads = [h.grad for h in run.hidden]
    assert all(g is not None for g in grads)
    assert all(float(g.norm()) > 0 for g in grads if g is not None)


def test_unknown_kind() -> None:
    with pytest.raises(RnnlabError, match="rnn, lstm, gru"):
        ScratchRecurrent("transformer", 2, 2)
