"""mLSTM (Beck et al. 2024, "xLSTM"): the LSTM with a matrix memory, written from the paper's
equations. Per head (D = hidden_dim split into heads of d), from the block's input u_t:

    q_t, k_t, v_t = W_q u_t, W_k u_t / √d, W_v u_t          (d,)
    ĩ_t, f̃_t = w_i·u_t + b_i, w_f·u_t + b_f                 scalar gate pre-activations
    i_t = exp(ĩ_t),  f_t = σ(f̃_t),  o_t = σ(W_o u_t + b_o)
    C_t = f_t C_{t−1} + i_t v_t k_tᵀ                        (d, d) the matrix memory
    n_t = f_t n_{t−1} + i_t k_t                             (d,)  the normaliser
    h_t = o_t ⊙ C_t q_t / max(|n_tᵀ q_t|, 1)
    out_t = W_out h_t                                       (heads concatenated)

The exponential input gate is stabilised in log space: m_t = max(log f_t + m_{t−1}, ĩ_t) (m
before the text: −∞), i'_t = exp(ĩ_t − m_t), f'_t = exp(log f_t + m_{t−1} − m_t), and the stored
memory is C̃_t = C_t e^{−m_t}, ñ_t = n_t e^{−m_t}, so
h_t = o_t ⊙ C̃_t q_t / max(|ñ_tᵀ q_t|, e^{−m_t}): the same h_t, with no exp that can overflow.
h_t does not depend on m_t, so m_t carries no gradient (detached). e^{−m_t} is capped at e^{80}: beyond it, h_t is below 1e−30 either way.

Two modes compute the same thing:
- `torch` (training): the parallel form, attention-like with a log-decay matrix. With F_t =
  Σ_{j≤t} log f_j, D̃_ts = F_t − F_s + ĩ_s for s ≤ t (−∞ above the diagonal), m_t = max_s D̃_ts:
  S = (Q Kᵀ) ⊙ exp(D̃ − m), H = O ⊙ (S V) / max(|S 1|, e^{−m}): two (T, T) matmuls per head,
  quadratic in T.
- `scratch`: the recurrence above step by step (the reference, `trace()`, streaming).

When to pick it: recall of many items (a d × d memory per head stores key-value pairs, where a
vector state must compress them); the parallel form is matmul-heavy but quadratic in T.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.errors import check
from rnnlab.models.classifier import ModelSpec
from rnnlab.models.family import SCAN, register_family
from rnnlab.models.residual import BlockState, ResidualStackClassifier, TemporalBlock

CAP = 80.0
"""e^{−m} is computed as e^{min(−m, CAP)}: finite in float32 (e^80 ~ 5.5e34)."""
FORGET_BIAS = (3.0, 6.0)
"""The forget gates' biases start spread over this range across heads (σ(3) ~ 0.95)."""


class MLSTMBlock(TemporalBlock):
    """The multi-head mLSTM cell with its projections: u (B, T, D) -> (B, T, D)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.width, self.heads, self.head_dim = width, heads, width // heads
        self.proj = nn.Linear(width, 4 * width + 2 * heads)  # q, k, v, o, then ĩ, f̃ per head
        with torch.no_grad():
            self.proj.bias[4 * width : 4 * width + heads] = 0.0
            self.proj.bias[4 * width + heads :] = torch.linspace(*FORGET_BIAS, heads)
        self.out_proj = nn.Linear(width, width)

    def _project(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """u (..., D) -> q, k (scaled by 1/√d), v (..., heads, d), the output gate o (..., D),
        ĩ and log f (..., heads)."""
        width, heads = self.width, self.heads
        q, k, v, o, i, f = self.proj(u).split([width] * 4 + [heads] * 2, dim=-1)
        shape = (*u.shape[:-1], heads, self.head_dim)
        k = k.view(shape) / math.sqrt(self.head_dim)
        return q.view(shape), k, v.view(shape), torch.sigmoid(o), i, F.logsigmoid(f)

    def parallel(self, u: Tensor) -> Tensor:
        batch, steps, width = u.shape
        q, k, v, o, i, log_f = self._project(u)  # (B, T, heads, d) ..., (B, T, heads)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, heads, T, d)
        cum = log_f.transpose(1, 2).cumsum(-1)  # F_t (B, heads, T)
        decay = cum[..., :, None] - cum[..., None, :] + i.transpose(1, 2)[..., None, :]
        causal = torch.ones(steps, steps, dtype=torch.bool, device=u.device).tril()
        decay = decay.masked_fill(~causal, float("-inf"))  # D̃ (B, heads, T, T)
        m = decay.amax(-1, keepdim=True).detach()  # (B, heads, T, 1): the diagonal is finite
        scores = (q @ k.transpose(-1, -2)) * torch.exp(decay - m)  # S (B, heads, T, T)
        floor = torch.exp((-m).clamp(max=CAP))
        norm = torch.maximum(scores.sum(-1, keepdim=True).abs(), floor)  # (B, heads, T, 1)
        h = (scores @ v) / norm  # (B, heads, T, d)
        return self.out_proj(o * h.transpose(1, 2).reshape(batch, steps, width))

    def initial_state(self, u: Tensor) -> BlockState:
        batch, heads, d = u.shape[0], self.heads, self.head_dim
        memory = u.new_zeros(batch, heads * (d * d + d))  # C̃ and ñ, flattened
        return memory, u.new_full((batch, heads), float("-inf"))  # m

    def step(self, u: Tensor, state: BlockState) -> tuple[Tensor, BlockState]:
        flat, m = state
        batch, heads, d = u.shape[0], self.heads, self.head_dim
        memory = flat[:, : heads * d * d].view(batch, heads, d, d)  # C̃ (B, heads, d, d)
        normaliser = flat[:, heads * d * d :].view(batch, heads, d)  # ñ (B, heads, d)
        q, k, v, o, i, log_f = self._project(u)  # (B, heads, d) ..., (B, heads)
        m_new = torch.maximum(log_f + m, i).detach()
        forget = torch.exp(log_f + m - m_new)[..., None]  # (B, heads, 1)
        write = torch.exp(i - m_new)[..., None]
        memory = forget[..., None] * memory + write[..., None] * v[..., :, None] * k[..., None, :]
        normaliser = forget * normaliser + write * k
        floor = torch.exp((-m_new).clamp(max=CAP))[..., None]
        norm = torch.maximum((normaliser * q).sum(-1, keepdim=True).abs(), floor)
        h = (memory @ q[..., None]).squeeze(-1) / norm  # (B, heads, d)
        out = self.out_proj(o * h.reshape(batch, heads * d))
        return out, (torch.cat([memory.flatten(1), normaliser.flatten(1)], dim=1), m_new)


@register_family("mlstm", display="mLSTM", group=SCAN, colour="tab:gray", gated=True, year=2024)
class MLSTMClassifier(ResidualStackClassifier):
    """mLSTM blocks in a pre-norm residual stream (rnnlab.models.residual)."""

    family = "mlstm"

    @classmethod
    def state_size(cls, spec: ModelSpec) -> int | None:
        """Per head the matrix memory C (d x d) and the normaliser n (d), d = D / heads."""
        head = spec.hidden_dim // spec.num_heads
        return spec.num_heads * (head * head + head)

    @classmethod
    def build_block(cls, spec: ModelSpec) -> TemporalBlock:
        check(spec.kind == "mlstm", f"MLSTMClassifier runs mlstm, not {spec.kind}")
        check(
            spec.hidden_dim % spec.num_heads == 0,
            f"hidden_dim {spec.hidden_dim} must be a multiple of num_heads {spec.num_heads}; "
            f"e.g. --hidden-dim {spec.num_heads * max(1, spec.hidden_dim // spec.num_heads)}",
        )
        return MLSTMBlock(spec.hidden_dim, spec.num_heads)

    @classmethod
    def block_words(cls, spec: ModelSpec) -> str:
        return f"{spec.num_heads} heads"

    @classmethod
    def block_flops_per_token(cls, spec: ModelSpec, steps: int) -> int:
        """The q/k/v/o/gate projection, W_out, and the parallel form's two (T, T) matmuls per
        head (Q Kᵀ and S V: 2 T d each per token and head, the full square as computed)."""
        width, heads = spec.hidden_dim, spec.num_heads
        return 2 * width * (4 * width + 2 * heads) + 2 * width * width + 4 * steps * width

    @classmethod
    def block_floats_per_token(cls, spec: ModelSpec, steps: int) -> float:
        """q, k, v, o, h and the projections (about 10 D), and per head a row of each (T, T)
        matrix autograd keeps (the decay, its exp, the scores: 4 T)."""
        return 10 * spec.hidden_dim + 4 * spec.num_heads * steps
