"""Hawk's own equations (rnnlab.models.hawk): Λ's initialisation and the RG-LRU step by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rnnlab.models.hawk import HawkBlock


def block() -> HawkBlock:
    torch.manual_seed(0)
    return HawkBlock(width=5).double()


def test_lambda_starts_with_a_to_the_c_uniform_in_the_papers_range() -> None:
    torch.manual_seed(0)
    a_c = torch.sigmoid(HawkBlock(width=400).Lambda.double()) ** 8
    assert bool((a_c >= 0.9 - 1e-6).all()) and bool((a_c <= 0.999 + 1e-6).all())
    assert abs(a_c.mean().item() - 0.9495) < 0.01  # uniform: the middle (7 standard errors)


def test_the_rg_lru_follows_its_equations() -> None:
    """r, i, a = σ(Λ)^(8 r), h = a h + √(1 − a²) (i x), out = W_out (h ⊙ GeLU(W_g u))."""
    hawk = block()
    u = torch.randn(2, 6, 5, dtype=torch.float64)
    x = hawk.in_proj(u)  # (B, T, D)
    padded = torch.cat([torch.zeros(2, 3, 5, dtype=u.dtype), x], dim=1)
    x = sum(padded[:, j : j + 6] * hawk.conv_weight[:, j] for j in range(4)) + hawk.conv_bias
    w_a, w_x = hawk.gates.weight.chunk(2)
    b_a, b_x = hawk.gates.bias.chunk(2)
    h = torch.zeros(2, 5, dtype=u.dtype)
    outs = []
    for t in range(6):
        r = torch.sigmoid(x[:, t] @ w_a.T + b_a)
        i = torch.sigmoid(x[:, t] @ w_x.T + b_x)
        a = torch.sigmoid(hawk.Lambda) ** (8 * r)
        h = a * h + torch.sqrt(1 - a**2) * (i * x[:, t])
        outs.append(hawk.out_proj(h * F.gelu(hawk.gate(u[:, t]))))
    expected = torch.stack(outs, dim=1)
    torch.testing.assert_close(hawk.parallel(u), expected, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(hawk.sequential(u)[0], expected, atol=1e-12, rtol=1e-12)


def test_a_state_that_keeps_everything_has_a_finite_gradient() -> None:
    """r = 0 (a = 1, √(1 − a²) = 0): the floor keeps the square root's gradient finite."""
    hawk = block()
    with torch.no_grad():
        hawk.gates.bias[:5] = -1e4  # r = σ(−1e4) = 0
    u = torch.randn(1, 4, 5, dtype=torch.float64, requires_grad=True)
    for out in (hawk.parallel(u), hawk.sequential(u)[0]):
        (grad,) = torch.autograd.grad(out.sum(), [u])
        assert torch.isfinite(out).all() and torch.isfinite(grad).all()
