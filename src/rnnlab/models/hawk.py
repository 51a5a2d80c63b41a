"""Hawk (De et al. 2024, "Griffin"): the recurrent block with the Real-Gated Linear Recurrent Unit
(RG-LRU), written from the paper's equations. With D = hidden_dim (the RNN width too):

    g_t = GeLU(W_g u_t)                                 the gate branch
    x_t = conv_k4(W_in u)_t                             depthwise causal convolution, k = 4
    r_t = σ(W_a x_t + b_a),  i_t = σ(W_x x_t + b_x)     recurrence and input gates
    log a_t = −c r_t softplus(−Λ)                       a_t = σ(Λ)^(c r_t), c = 8, in log space
    h_t = a_t ⊙ h_{t−1} + √(1 − a_t²) ⊙ (i_t ⊙ x_t)     the RG-LRU
    out_t = W_out (h_t ⊙ g_t)

Λ is initialised so that σ(Λ)^c is uniform in [0.9, 0.999] (the paper's init). √(1 − a²) is
computed as √(−expm1(2 log a)), floored at the smallest normal float, so its gradient stays
finite where a → 1. The parallel form hands a and b to rnnlab.models.scan.linear_scan; the
sequential reference steps the same equations. (Griffin's residual block also has an MLP after
the recurrent block; rnnlab's stack keeps the recurrent block alone, as for Mamba and mLSTM.)

When to pick it: a diagonal recurrence whose decay is gated by the input (like minGRU's), with
a normalised input (√(1 − a²) keeps the state's scale), a width-D state per layer and cost
linear in T: the simplest of the modern linear recurrences.
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
C = 8.0
"""The fixed scale of the recurrence gate's exponent."""
A_RANGE = (0.9, 0.999)
"""σ(Λ)^c is drawn uniformly from this range at init."""


class HawkBlock(TemporalBlock):
    """The Griffin recurrent block: u (B, T, D) -> (B, T, D)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.gate = nn.Linear(width, width)
        self.in_proj = nn.Linear(width, width)
        self.conv_weight = nn.Parameter(torch.empty(width, CONV_WIDTH))
        self.conv_bias = nn.Parameter(torch.empty(width))
        bound = 1 / math.sqrt(CONV_WIDTH)
        nn.init.uniform_(self.conv_weight, -bound, bound)
        nn.init.uniform_(self.conv_bias, -bound, bound)
        self.gates = nn.Linear(width, 2 * width)  # W_a, W_x stacked
        with torch.no_grad():  # σ(Λ) = p with p^c uniform in A_RANGE
            p = torch.empty(width).uniform_(*A_RANGE) ** (1 / C)
            self.Lambda = nn.Parameter(torch.log(p) - torch.log1p(-p))
        self.out_proj = nn.Linear(width, width)

    def _recurrence(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (..., D) after the convolution -> a and b = √(1 − a²) i x, each (..., D)."""
        r, i = torch.sigmoid(self.gates(x)).chunk(2, dim=-1)
        log_a = -C * r * F.softplus(-self.Lambda)
        tiny = torch.finfo(x.dtype).tiny
        scale = torch.sqrt((-torch.expm1(2 * log_a)).clamp(min=tiny))
        return torch.exp(log_a), scale * i * x

    def parallel(self, u: Tensor) -> Tensor:
        g = F.gelu(self.gate(u))  # (B, T, D)
        x = causal_conv(self.in_proj(u), self.conv_weight, self.conv_bias)
        a, b = self._recurrence(x)
        h = linear_scan(a.transpose(0, 1), b.transpose(0, 1)).transpose(0, 1)  # (B, T, D)
        return self.out_proj(h * g)

    def initial_state(self, u: Tensor) -> BlockState:
        return u.new_zeros(u.shape[0], self.width), u.new_zeros(u.shape[0], self.width,
                                                                  CONV_WIDTH - 1)  # fmt: skip

    def step(self, u: Tensor, state: BlockState) -> tuple[Tensor, BlockState]:
        h, window = state
        x, window = conv_step(self.in_proj(u), window, self.conv_weight, self.conv_bias)
        a, b = self._recurrence(x)
        h = a * h + b
        return self.out_proj(h * F.gelu(self.gate(u))), (h, window)


@register_family("hawk", display="Hawk", group=SCAN, colour="tab:cyan", gated=True, year=2024)
class HawkClassifier(ResidualStackClassifier):
    """Hawk recurrent blocks in a pre-norm residual stream (rnnlab.models.residual)."""

    family = "hawk"

    @classmethod
    def state_size(cls, spec: ModelSpec) -> int | None:
        """h: one number per channel."""
        return spec.hidden_dim

    @classmethod
    def build_block(cls, spec: ModelSpec) -> TemporalBlock:
        check(spec.kind == "hawk", f"HawkClassifier runs hawk, not {spec.kind}")
        return HawkBlock(spec.hidden_dim)

    @classmethod
    def block_words(cls, spec: ModelSpec) -> str:
        return "RG-LRU"

    @classmethod
    def block_flops_per_token(cls, spec: ModelSpec, steps: int) -> int:
        """W_g, W_in, the k = 4 convolution, W_a and W_x, W_out."""
        width = spec.hidden_dim
        return 2 * (5 * width * width + width * CONV_WIDTH)

    @classmethod
    def block_floats_per_token(cls, spec: ModelSpec, steps: int) -> float:
        """g, the projections, the convolution, r, i, a, b, h and the product (about 12 D)."""
        return 12 * spec.hidden_dim
