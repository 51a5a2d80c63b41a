"""mLSTM's own equations (rnnlab.models.mlstm): the stabilised forms against the plain
recurrence C_t = f C + i v kᵀ, n_t = f n + i k, h = o ⊙ C q / max(|nᵀq|, 1)."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab.models import create_model
from rnnlab.models.mlstm import MLSTMBlock


def block() -> MLSTMBlock:
    torch.manual_seed(0)
    return MLSTMBlock(width=6, heads=2).double()


def plain_recurrence(cell: MLSTMBlock, u: torch.Tensor) -> torch.Tensor:
    """The unstabilised equations (exp(ĩ) computed directly: fine for moderate ĩ)."""
    d = 3
    proj = cell.proj(u)  # (B, T, 4D + 2 heads)
    memory = torch.zeros(u.shape[0], 2, d, d, dtype=u.dtype)
    norm = torch.zeros(u.shape[0], 2, d, dtype=u.dtype)
    outs = []
    for t in range(u.shape[1]):
        q, k, v, o = (proj[:, t, 6 * j : 6 * (j + 1)] for j in range(4))
        q, k, v = q.view(-1, 2, d), k.view(-1, 2, d) / math.sqrt(d), v.view(-1, 2, d)
        i = torch.exp(proj[:, t, 24:26])[..., None]  # (B, heads, 1)
        f = torch.sigmoid(proj[:, t, 26:28])[..., None]
        memory = f[..., None] * memory + i[..., None] * v[..., :, None] * k[..., None, :]
        norm = f * norm + i * k
        denominator = (norm * q).sum(-1, keepdim=True).abs().clamp(min=1.0)
        h = (memory @ q[..., None]).squeeze(-1) / denominator  # (B, heads, d)
        outs.append(cell.out_proj(torch.sigmoid(o) * h.reshape(-1, 6)))
    return torch.stack(outs, dim=1)


@pytest.mark.parametrize("input_gate", [0.0, 5.0, -5.0])
def test_the_stabilised_forms_are_the_plain_recurrence(input_gate: float) -> None:
    cell = block()
    with torch.no_grad():
        cell.proj.bias[24:26] = input_gate  # large, small and neutral input gates
    u = torch.randn(2, 7, 6, dtype=torch.float64)
    expected = plain_recurrence(cell, u)
    torch.testing.assert_close(cell.parallel(u), expected, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(cell.sequential(u)[0], expected, atol=1e-12, rtol=1e-10)


def test_huge_input_gates_stay_finite_where_exp_would_overflow() -> None:
    """ĩ = 1000: exp(ĩ) is inf in float64; the stabilised forms agree and stay finite."""
    cell = block()
    with torch.no_grad():
        cell.proj.bias[24:26] = 1000.0
    u = torch.randn(1, 5, 6, dtype=torch.float64, requires_grad=True)
    parallel, sequential = cell.parallel(u), cell.sequential(u)[0]
    torch.testing.assert_close(parallel, sequential, atol=1e-12, rtol=1e-10)
    (grad,) = torch.autograd.grad(parallel.sum(), [u])
    assert torch.isfinite(parallel).all() and torch.isfinite(grad).all()


def test_forget_gates_start_between_sigmoid_3_and_6() -> None:
    model = create_model("mlstm", vocab_size=9, num_classes=2)
    bias = model.encoder["l0"].proj.bias
    torch.testing.assert_close(bias[-4:], torch.linspace(3.0, 6.0, 4))
    assert model.layout() == "mLSTM 1x128, 4 heads, last pooling"
    with pytest.raises(Exception, match="multiple of num_heads"):
        create_model("mlstm", vocab_size=9, num_classes=2, hidden_dim=10, num_heads=4)
