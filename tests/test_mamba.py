"""Mamba's own equations (rnnlab.models.mamba): the S4D-real and Δ initialisations, one step by
hand in the paper's selective_scan_ref form, and the transition range [-1, 1]."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rnnlab.models import create_model
from rnnlab.models.mamba import MambaBlock


def block(transition: str = "positive") -> MambaBlock:
    torch.manual_seed(0)
    return MambaBlock(width=4, inner=6, states=3, transition=transition).double()


def test_initialisation_follows_the_paper() -> None:
    """A_n = −(n + 1) for every channel, D = 1, softplus(b_Δ) log-uniform in [0.001, 0.1]."""
    mamba = block()
    a = -torch.exp(mamba.A_log)
    torch.testing.assert_close(a, -torch.arange(1.0, 4.0, dtype=torch.float64).repeat(6, 1))
    assert torch.equal(mamba.D, torch.ones(6, dtype=torch.float64))
    dt = F.softplus(mamba.dt_proj.bias)
    assert bool((dt >= 1e-3 * (1 - 1e-9)).all()) and bool((dt <= 0.1 * (1 + 1e-9)).all())
    assert mamba.rank == math.ceil(4 / 16) and mamba.x_proj.out_features == 1 + 2 * 3


def selective_scan_by_hand(mamba: MambaBlock, u: torch.Tensor) -> torch.Tensor:
    """The paper's block with its reference scan written out: u (B, T, D) -> (B, T, D)."""
    xz = u @ mamba.in_proj.weight.T
    x, z = xz[..., :6], xz[..., 6:]
    padded = torch.cat([torch.zeros(u.shape[0], 3, 6, dtype=u.dtype), x], dim=1)
    conv = sum(padded[:, j : j + u.shape[1]] * mamba.conv_weight[:, j] for j in range(4))
    x = F.silu(conv + mamba.conv_bias)  # (B, T, E)
    proj = x @ mamba.x_proj.weight.T
    low, b, c = proj[..., :1], proj[..., 1:4], proj[..., 4:7]
    delta = F.softplus(low @ mamba.dt_proj.weight.T + mamba.dt_proj.bias)  # (B, T, E)
    a = -torch.exp(mamba.A_log)  # (E, N)
    h = torch.zeros(u.shape[0], 6, 3, dtype=u.dtype)
    ys = []
    for t in range(u.shape[1]):
        delta_a = torch.exp(torch.einsum("be,en->ben", delta[:, t], a))
        delta_b_u = torch.einsum("be,bn,be->ben", delta[:, t], b[:, t], x[:, t])
        h = delta_a * h + delta_b_u
        ys.append(torch.einsum("ben,bn->be", h, c[:, t]) + mamba.D * x[:, t])
    y = torch.stack(ys, dim=1) * F.silu(z)
    return y @ mamba.out_proj.weight.T


def test_both_forms_are_the_papers_selective_scan() -> None:
    mamba = block()
    u = torch.randn(2, 6, 4, dtype=torch.float64)
    expected = selective_scan_by_hand(mamba, u)
    torch.testing.assert_close(mamba.parallel(u), expected, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(mamba.sequential(u)[0], expected, atol=1e-12, rtol=1e-12)


def test_signed_transitions_are_two_exp_delta_a_minus_one() -> None:
    """signed ([-1, 1]): a = 2 exp(ΔA) − 1, which is negative for large steps: the state can flip sign."""
    plain, signed = block(), block("signed")
    delta = torch.tensor([[0.01, 0.5, 1.0, 2.0, 5.0, 9.0]], dtype=torch.float64)
    torch.testing.assert_close(signed._transition(delta), 2 * plain._transition(delta) - 1)
    assert bool((plain._transition(delta) >= 0).all())
    assert bool((signed._transition(delta) < 0).any())
    assert bool((signed._transition(delta).abs() <= 1).all())


def test_the_preset_is_d_state_16_expand_2() -> None:
    model = create_model("mamba", vocab_size=9, num_classes=2)
    spec = model.spec
    assert (spec.state_dim, spec.expand, spec.transition) == (16, 2, "positive")
    assert model.encoder["l0"].A_log.shape == (256, 16)
    assert model.layout() == "Mamba 1x128, d_state 16, expand 2, last pooling"
