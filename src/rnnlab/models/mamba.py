"""Mamba (Gu & Dao 2023): a selective state space block, written from the paper's equations.

With D = hidden_dim, E = expand·D channels, N = state_dim states per channel, R = ⌈D/16⌉:

    [x; z] = W_in u_t                      (2E,)  an x branch and a gate z
    x_t    = SiLU(conv_k4(x)_t)            depthwise causal convolution over time, k = 4
    Δ_t    = softplus(W_Δ (W_R x_t) + b_Δ)  (E,)   input-dependent step size, rank R
    B_t, C_t = W_B x_t, W_C x_t            (N,)   input-dependent input and read-out
    h_t    = exp(Δ_t A) ⊙ h_{t−1} + (Δ_t x_t) B_tᵀ   (E, N) per channel and state dim
    y_t    = h_t C_t + D ⊙ x_t             (E,)
    out_t  = W_out (y_t ⊙ SiLU(z_t))       (D,)

A = −exp(A_log) is diagonal, negative real, initialised S4D-real (A_n = −(n + 1)); D starts at
1; b_Δ so that softplus(b_Δ) is log-uniform in [0.001, 0.1] (the paper's Δ init). The scan is
the paper's `selective_scan_ref` semantics. The parallel form hands a = exp(ΔA), b = Δ B x to
rnnlab.models.scan.linear_scan; the sequential reference steps the same equations.

`transition` `signed` uses a = 2 exp(ΔA) − 1 instead (Grazzi et al. 2025): a transition that can
be negative lets the state flip its sign, which parity needs.

When to pick it: long texts where the content decides what to keep (the selection mechanism
gates every step by its input), with a fixed-size state E·N per layer and a cost linear in T.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.errors import check
from rnnlab.models.classifier import ModelSpec
from rnnlab.models.family import SCAN, register_family
from rnnlab.models.residual import (
    BlockState,
    ResidualStackClassifier,
    TemporalBlock,
    causal_conv,
    conv_step,
)
from rnnlab.models.scan import linear_scan

CONV_WIDTH = 4
DT_MIN, DT_MAX, DT_FLOOR = 1e-3, 1e-1, 1e-4
"""The range of the initial step size Δ (log-uniform), and its floor."""


def dt_rank(width: int) -> int:
    """R = ⌈D / 16⌉, the rank of Δ's projection (the paper's default)."""
    return math.ceil(width / 16)


class MambaBlock(TemporalBlock):
    """The selective SSM block: u (B, T, D) -> (B, T, D)."""

    def __init__(self, width: int, inner: int, states: int, transition: str) -> None:
        super().__init__()
        rank = dt_rank(width)
        self.inner, self.states, self.rank = inner, states, rank
        self.signed = transition == "signed"
        self.in_proj = nn.Linear(width, 2 * inner, bias=False)
        self.conv_weight = nn.Parameter(torch.empty(inner, CONV_WIDTH))
        self.conv_bias = nn.Parameter(torch.empty(inner))
        bound = 1 / math.sqrt(CONV_WIDTH)  # nn.Conv1d's default for a depthwise k = 4 filter
        nn.init.uniform_(self.conv_weight, -bound, bound)
        nn.init.uniform_(self.conv_bias, -bound, bound)
        self.x_proj = nn.Linear(inner, rank + 2 * states, bias=False)  # Δ (rank R), B, C
        self.dt_proj = nn.Linear(rank, inner)
        nn.init.uniform_(self.dt_proj.weight, -(rank**-0.5), rank**-0.5)
        with torch.no_grad():  # softplus(b_Δ) log-uniform in [DT_MIN, DT_MAX]
            dt = torch.exp(
                torch.rand(inner) * (math.log(DT_MAX) - math.log(DT_MIN)) + math.log(DT_MIN)
            ).clamp(min=DT_FLOOR)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
        a_init = torch.arange(1, states + 1, dtype=torch.float32).repeat(inner, 1)  # (E, N)
        self.A_log = nn.Parameter(torch.log(a_init))  # A = −exp(A_log): S4D-real −(n + 1)
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, width, bias=False)

    def _inputs(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """u (..., D) -> the x branch before its convolution and the gate z, each (..., E)."""
        x, z = self.in_proj(u).chunk(2, dim=-1)
        return x, z

    def _selection(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (..., E) after the convolution -> Δ (..., E), B (..., N), C (..., N)."""
        low, b, c = self.x_proj(x).split([self.rank, self.states, self.states], dim=-1)
        return F.softplus(self.dt_proj(low)), b, c

    def _transition(self, delta: Tensor) -> Tensor:
        """a = exp(Δ A), or 2 exp(Δ A) − 1 for transitions in [−1, 1]: Δ (..., E) -> (..., E, N)."""
        a = torch.exp(delta[..., None] * -torch.exp(self.A_log))
        return 2 * a - 1 if self.signed else a

    def parallel(self, u: Tensor) -> Tensor:
        x, z = self._inputs(u)  # (B, T, E)
        x = F.silu(causal_conv(x, self.conv_weight, self.conv_bias))
        delta, b, c = self._selection(x)  # (B, T, E), (B, T, N), (B, T, N)
        a = self._transition(delta.transpose(0, 1))  # (T, B, E, N) time-major
        drive = (delta * x).transpose(0, 1)[..., None] * b.transpose(0, 1)[:, :, None, :]
        h = linear_scan(a, drive)  # (T, B, E, N)
        y = torch.einsum("tben,tbn->tbe", h, c.transpose(0, 1)).transpose(0, 1)  # (B, T, E)
        return self.out_proj((y + self.D * x) * F.silu(z))

    def initial_state(self, u: Tensor) -> BlockState:
        batch = u.shape[0]
        h = u.new_zeros(batch, self.inner * self.states)  # (B, E·N) flattened
        return h, u.new_zeros(batch, self.inner, CONV_WIDTH - 1)

    def step(self, u: Tensor, state: BlockState) -> tuple[Tensor, BlockState]:
        flat, window = state
        x, z = self._inputs(u)  # (B, E)
        x, window = conv_step(x, window, self.conv_weight, self.conv_bias)
        x = F.silu(x)
        delta, b, c = self._selection(x)  # (B, E), (B, N), (B, N)
        h = flat.view(-1, self.inner, self.states)  # (B, E, N)
        h = self._transition(delta) * h + (delta * x)[:, :, None] * b[:, None, :]
        y = (h * c[:, None, :]).sum(-1) + self.D * x  # (B, E)
        return self.out_proj(y * F.silu(z)), (h.flatten(1), window)


@register_family("mamba", display="Mamba", group=SCAN, colour="tab:olive", gated=True, year=2023)
class MambaClassifier(ResidualStackClassifier):
    """Mamba blocks in a pre-norm residual stream (rnnlab.models.residual)."""

    family = "mamba"
    transitions = ("positive", "signed")

    @classmethod
    def state_size(cls, spec: ModelSpec) -> int | None:
        """h: N state dimensions per inner channel (E = expand x D)."""
        return spec.expand * spec.hidden_dim * spec.state_dim

    @classmethod
    def build_block(cls, spec: ModelSpec) -> TemporalBlock:
        check(spec.kind == "mamba", f"MambaClassifier runs mamba, not {spec.kind}")
        return MambaBlock(spec.hidden_dim, spec.expand * spec.hidden_dim, spec.state_dim,
                          spec.transition)  # fmt: skip

    @classmethod
    def block_words(cls, spec: ModelSpec) -> str:
        signed = ", transitions in [-1,1]" if spec.transition == "signed" else ""
        return f"d_state {spec.state_dim}, expand {spec.expand}{signed}"

    @classmethod
    def block_flops_per_token(cls, spec: ModelSpec, steps: int) -> int:
        """W_in, the k = 4 convolution, W_R / W_B / W_C, W_Δ, the read-out h C and W_out."""
        width, inner, states = spec.hidden_dim, spec.expand * spec.hidden_dim, spec.state_dim
        rank = dt_rank(width)
        return 2 * (
            width * 2 * inner + inner * CONV_WIDTH + inner * (rank + 2 * states)
            + rank * inner + inner * states + inner * width
        )  # fmt: skip

    @classmethod
    def block_floats_per_token(cls, spec: ModelSpec, steps: int) -> float:
        """x, z, the convolution, Δ, B, C, y (about 8 E) and a, b, h over (E, N) with room for
        the scan's temporaries (4 E N)."""
        inner = spec.expand * spec.hidden_dim
        return 8 * inner + 4 * inner * spec.state_dim + spec.hidden_dim
