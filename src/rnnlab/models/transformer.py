"""A small Transformer encoder (Vaswani et al. 2017): pre-norm layers on PyTorch's own
F.scaled_dot_product_attention, GELU feed-forward.

    u_t = P x_t + p_t                  x_t the embedded token, P a projection to the model width D
                                       (identity when embed_dim == D), p_t the position's vector
    U' = Layer_N(... Layer_1([c; U]))  each: U + MHA(LN(U)), then + FFN(LN(·)); c a learned [CLS]
                                       vector, present only with first-token pooling
    logits = W · pool(LN(U')) + b      mean / max over the real tokens, or the [CLS] output

Every position attends to every other one in one step: no state is carried along the text, so
nothing has to survive many steps, and the whole layer is a few large matrix products (the
serial loop is gone; the cost is quadratic in the length instead). Padding: a key-padding mask,
so no position attends to padding; outputs on padding are never read. Positions: sinusoidal
(any length) or learned (up to `max_positions`). Dropout acts on the embedded tokens and on the
two residual branches of every layer, not on the attention weights: there it costs a (B, heads, T, T) random
mask per layer and, on the CPU, sends attention down PyTorch's slow path (about 5x the time at
T = 400). The layer is written out rather than nn.TransformerEncoderLayer, whose attention in
training turns the key-padding mask into a (B * heads, T, T) float mask and checks it for fully
masked rows every call; here the mask stays (B, 1, 1, T) and boolean.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.errors import check
from rnnlab.models.classifier import ModelSpec, TextClassifier
from rnnlab.models.family import ATTENTION, register_family
from rnnlab.models.sequence import clean_lengths, pool, time_mask


def sinusoidal_positions(
    steps: int, width: int, *, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """(T, D): sin on even features, cos on odd ones, wavelengths 2π .. 10000·2π."""
    position = torch.arange(steps, device=device, dtype=torch.float64)[:, None]
    rates = torch.exp(
        torch.arange(0, width, 2, device=device, dtype=torch.float64)
        * (-math.log(10_000.0) / width)
    )
    table = torch.zeros(steps, width, device=device, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * rates)
    table[:, 1::2] = torch.cos(position * rates[: width // 2])
    return table.to(dtype)


class EncoderLayer(nn.Module):
    """Pre-norm: u + Dropout(W_o · MHA(LN(u))), then u + Dropout(FFN(LN(u)))."""

    def __init__(self, width: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.ff1 = nn.Linear(width, ff)
        self.ff2 = nn.Linear(ff, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, u: Tensor, keep: Tensor) -> Tensor:
        """u (B, T, D), keep (B, 1, 1, T) bool (True: a key to attend to) -> (B, T, D)."""
        batch, steps, width = u.shape
        qkv = self.qkv(self.norm1(u)).view(batch, steps, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, T, D / heads)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        u = u + self.dropout(self.out(attended.transpose(1, 2).reshape(batch, steps, width)))
        return u + self.dropout(self.ff2(F.gelu(self.ff1(self.norm2(u)))))


@register_family(
    "transformer", display="Transformer", group=ATTENTION, colour="tab:purple", year=2017
)
class TransformerClassifier(TextClassifier):
    """embedding -> projection + positions -> N pre-norm encoder layers -> pooling -> head."""

    family = "transformer"
    sequence_modes = ("padded",)
    impls = ("torch",)
    poolings = ("mean", "max", "first")
    has_states = False
    no_states = (
        "a Transformer has no recurrent state: every position attends to every other in one step"
    )

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        check(
            spec.kind == "transformer", f"TransformerClassifier runs transformer, not {spec.kind}"
        )
        self.check_spec(spec)
        width = spec.hidden_dim
        check(
            width % spec.num_heads == 0,
            f"hidden_dim {width} (the model width) must be a multiple of num_heads "
            f"{spec.num_heads}; e.g. --hidden-dim {spec.num_heads * max(1, width // spec.num_heads)}",
        )
        check(not spec.bidirectional, "bidirectional does not apply to a Transformer: it already "
              "reads every position from both sides; drop --bidirectional")  # fmt: skip
        self._token_embedding(spec)
        features = spec.input_dim or spec.embed_dim
        encoder: dict[str, nn.Module] = {}
        encoder["project"] = nn.Identity() if features == width else nn.Linear(features, width)
        if spec.positions == "learned":
            encoder["positions"] = nn.Embedding(spec.max_positions, width)
        encoder["layers"] = nn.ModuleList(
            EncoderLayer(width, spec.num_heads, spec.ff_dim or 2 * width, spec.dropout)
            for _ in range(spec.num_layers)
        )
        encoder["norm"] = nn.LayerNorm(width)
        self.encoder = nn.ModuleDict(encoder)
        self.cls = nn.Parameter(torch.zeros(1, 1, width)) if spec.pooling == "first" else None
        self.head = nn.Linear(width, spec.num_outputs)

    def parts(self) -> dict[str, nn.Module | None]:
        return {"embedding": self.embedding, "recurrent": self.encoder, "head": self.head}

    def layout(self) -> str:
        s = self.spec
        return (
            f"Transformer {s.num_layers}x{s.hidden_dim}, {s.num_heads} heads, {s.positions} "
            f"positions, {'[CLS]' if s.pooling == 'first' else s.pooling} pooling"
        )

    @classmethod
    def encoder_flops_per_token(cls, spec: ModelSpec, steps: int) -> int:
        """Matmul FLOPs per token of the forward pass: the projection (when there is one), and per
        layer q/k/v and the output (4 D²), the feed-forward (2 D·ff) and attention's Q Kᵀ and
        A V over the whole padded length (2 T D), each 2 FLOPs per multiply-add."""
        width = spec.hidden_dim
        ff = spec.ff_dim or 2 * width
        features = spec.input_dim or spec.embed_dim
        project = 0 if features == width else 2 * features * width
        per_layer = 2 * (4 * width * width + 2 * width * ff + 2 * steps * width)
        return project + spec.num_layers * per_layer

    @classmethod
    def activation_floats_per_token(cls, spec: ModelSpec, steps: int) -> float:
        """Per layer: the residual stream, norms, q/k/v, attention output and the FFN (about
        12 D + 2 ff floats per token). scaled_dot_product_attention's fused kernels keep no
        (T, T) weights, only a log-sum-exp per head and query."""
        width = spec.hidden_dim
        ff = spec.ff_dim or 2 * width
        per_layer = 12 * width + 2 * ff + spec.num_heads
        return (spec.input_dim or spec.embed_dim) + spec.num_layers * per_layer

    # -- forward ----------------------------------------------------------------------------

    def forward_embedded(self, x: Tensor, lengths: Tensor) -> Tensor:
        steps = x.shape[1]
        lengths = clean_lengths(lengths, steps)
        spec = self.spec
        u = self.encoder["project"](x)  # (B, T, D)
        if spec.positions == "learned":
            check(
                steps <= spec.max_positions,
                f"a text of {steps} tokens is longer than the {spec.max_positions} learned "
                "positions; cut texts with --max-len or use sinusoidal positions",
            )
            table = self.encoder["positions"]
            assert isinstance(table, nn.Embedding)
            u = u + table.weight[:steps]
        else:
            u = u + sinusoidal_positions(steps, u.shape[-1], device=u.device, dtype=u.dtype)
        keep = time_mask(lengths, steps, x.device)  # (B, T) True on real tokens
        if self.cls is not None:
            u = torch.cat([self.cls.expand(u.shape[0], -1, -1).to(u.dtype), u], dim=1)
            keep = torch.cat([keep.new_ones(keep.shape[0], 1), keep], dim=1)
        keys = keep[:, None, None, :]  # (B, 1, 1, T): every query sees the real keys only
        layers = self.encoder["layers"]
        assert isinstance(layers, nn.ModuleList)
        for layer in layers:
            u = layer(u, keys)
        out = self.encoder["norm"](u)  # (B, T(+1), D)
        # the [CLS] position, or mean / max over the real tokens: (B, D)
        pooled = out[:, 0] if self.cls is not None else pool(out, lengths, spec.pooling, 1)
        return self.head(self.dropout(pooled))  # (B, C)
