"""The frame shared by the families whose layer is a causal sequence-mixing block in a pre-norm
residual stream (Mamba, Hawk, mLSTM: rnnlab.models.mamba, hawk, mlstm):

    u⁰_t = P x_t                            P a projection to the model width D = hidden_dim
                                            (identity when the input width is already D)
    uˡ⁺¹ = uˡ + Dropout(Blockˡ(RMSNorm(uˡ)))  bidirectional: + the reverse block's output, which
                                            reads each row reversed within its length
    logits = W · pool(RMSNorm(uᴺ)) + b      last real step, mean or max

A family gives its block (`TemporalBlock`): the parallel form for training (`parallel`) and one
step of the recurrence (`step`); running `step` over the text is the sequential reference
(impl `scratch`), the per-step states of `trace()` and streaming. Every block is causal (step
t reads steps <= t only), so right padding is never read by a real step: the output is read at
length − 1. The norms keep each block's input at unit scale, whatever the embeddings hold.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.errors import check
from rnnlab.models.classifier import ModelSpec, StateTrace, TextClassifier
from rnnlab.models.family import family
from rnnlab.models.sequence import POOLINGS, clean_lengths, pool, reverse_index, reverse_within

BlockState = tuple[Tensor, ...]
"""A block's state between steps; entry 0 is its recurrent state flattened to (B, S), the node
`trace()` hands out (the others: a convolution's window, a stabiliser)."""


class TemporalBlock(nn.Module):
    """One causal sequence-mixing block, (B, T, D) -> (B, T, D)."""

    def parallel(self, u: Tensor) -> Tensor:
        """The training form over the whole text: u (B, T, D) -> (B, T, D)."""
        raise NotImplementedError

    def initial_state(self, u: Tensor) -> BlockState:
        """The state before the first step, for a batch like u (B, D)."""
        raise NotImplementedError

    def step(self, u: Tensor, state: BlockState) -> tuple[Tensor, BlockState]:
        """One step of the recurrence: u (B, D) -> (B, D) and the new state."""
        raise NotImplementedError

    def sequential(self, u: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The reference: `step` over every time step. u (B, T, D) -> (B, T, D) and the T
        recurrent states (B, S), each a node on the loss path."""
        state = self.initial_state(u[:, 0])
        outputs, states = [], []
        for t in range(u.shape[1]):
            y, state = self.step(u[:, t], state)
            outputs.append(y)
            states.append(state[0])
        return torch.stack(outputs, dim=1), states


def causal_conv(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """Depthwise causal convolution over time: x (B, T, C), weight (C, K), bias (C,) ->
    (B, T, C) with y_t = Σ_j weight[:, j] x_{t−K+1+j} + bias (zeros before the text)."""
    width = weight.shape[1]
    padded = F.pad(x.transpose(1, 2), (width - 1, 0))  # (B, C, K - 1 + T)
    return F.conv1d(padded, weight[:, None, :], bias, groups=x.shape[-1]).transpose(1, 2)


def conv_step(x: Tensor, window: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """One step of causal_conv: x (B, C), window (B, C, K − 1) the previous inputs ->
    y (B, C) and the next window."""
    full = torch.cat([window, x[:, :, None]], dim=-1)  # (B, C, K)
    return (full * weight).sum(-1) + bias, full[:, :, 1:]


class ResidualStackClassifier(TextClassifier):
    """embedding -> projection -> N pre-norm residual blocks -> RMSNorm -> pooling -> head.

    model(tokens (B, T) int64 or (B, T, F) float, lengths (B,)) -> logits (B, C). Parameters:
    `encoder.project`, `encoder.norm{l}` and `encoder.l{l}` (`encoder.l{l}_reverse`) per layer,
    `encoder.norm` (the final norm). A family subclasses it with `build_block`.
    """

    sequence_modes = ("padded",)
    impls = ("torch", "scratch")
    poolings = POOLINGS
    has_states = True
    state_words: ClassVar[str] = "state"
    """What the traced state is, in words (layout)."""

    @classmethod
    def build_block(cls, spec: ModelSpec) -> TemporalBlock:
        raise NotImplementedError

    @classmethod
    def block_flops_per_token(cls, spec: ModelSpec, steps: int) -> int:
        """Matmul FLOPs of one block's parallel forward pass per token (T = steps)."""
        raise NotImplementedError

    @classmethod
    def block_floats_per_token(cls, spec: ModelSpec, steps: int) -> float:
        """Floats autograd keeps per token for one block."""
        raise NotImplementedError

    @classmethod
    def block_words(cls, spec: ModelSpec) -> str:
        """The block's settings for layout(), e.g. `d_state 16, expand 2`."""
        return ""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.check_spec(spec)
        self._token_embedding(spec)
        width, features = spec.hidden_dim, spec.input_dim or spec.embed_dim
        encoder: dict[str, nn.Module] = {}
        encoder["project"] = nn.Identity() if features == width else nn.Linear(features, width)
        for layer in range(spec.num_layers):
            encoder[f"norm{layer}"] = nn.RMSNorm(width)
            for suffix in ("", "_reverse")[: spec.directions]:
                encoder[f"l{layer}{suffix}"] = self.build_block(spec)
        encoder["norm"] = nn.RMSNorm(width)
        self.encoder = nn.ModuleDict(encoder)
        self.head = nn.Linear(width, spec.num_outputs)

    def parts(self) -> dict[str, nn.Module | None]:
        return {"embedding": self.embedding, "recurrent": self.encoder, "head": self.head}

    def layout(self) -> str:
        s = self.spec
        bi = "bi" if s.bidirectional else ""
        words = self.block_words(s)
        extra = f", {words}" if words else ""
        name = f"{bi}{family(s.kind).display} {s.num_layers}x{s.hidden_dim}"
        return f"{name}{extra}, {s.pooling} pooling"

    @classmethod
    def encoder_flops_per_token(cls, spec: ModelSpec, steps: int) -> int:
        """The projection (when there is one) and every block's matmul FLOPs per token."""
        features = spec.input_dim or spec.embed_dim
        project = 0 if features == spec.hidden_dim else 2 * features * spec.hidden_dim
        blocks = spec.num_layers * spec.directions * cls.block_flops_per_token(spec, steps)
        return project + blocks

    @classmethod
    def activation_floats_per_token(cls, spec: ModelSpec, steps: int) -> float:
        """The input, the residual stream and its norms (3 D per layer), and every block's."""
        per_layer = 3 * spec.hidden_dim + spec.directions * cls.block_floats_per_token(spec, steps)
        return (spec.input_dim or spec.embed_dim) + spec.hidden_dim + spec.num_layers * per_layer

    # -- forward ----------------------------------------------------------------------------

    def forward_embedded(self, x: Tensor, lengths: Tensor) -> Tensor:
        lengths = clean_lengths(lengths, x.shape[1])
        outputs, _ = self._encode(x, lengths, sequential=self.spec.impl == "scratch")
        return self._head(outputs, lengths)

    def trace(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, StateTrace]:
        """The sequential mode: logits and the recurrent states of the last layer's forward
        block, one (B, S) node per step on the loss path (any impl gives the same logits)."""
        lengths = clean_lengths(lengths, x.shape[1])
        outputs, states = self._encode(x, lengths, sequential=True)
        return self._head(outputs, lengths), StateTrace(states, None, lengths)

    def step(
        self, x: Tensor, state: list[BlockState] | None = None
    ) -> tuple[Tensor, list[BlockState]]:
        """Streaming: one time step x (B, In) of a unidirectional model -> the normed output
        (B, D) that pooling reads and the new state (one BlockState per layer; None: the start)."""
        check(not self.spec.bidirectional, "streaming needs a unidirectional model")
        u = self.encoder["project"](x)  # (B, D)
        new_state = []
        for layer in range(self.spec.num_layers):
            block = self._block(f"l{layer}")
            normed = self.encoder[f"norm{layer}"](u)
            previous = state[layer] if state is not None else block.initial_state(normed)
            y, layer_state = block.step(normed, previous)
            new_state.append(layer_state)
            u = u + F.dropout(y, self.spec.dropout, self.training)
        return self.encoder["norm"](u), new_state

    def _block(self, name: str) -> TemporalBlock:
        block = self.encoder[name]
        assert isinstance(block, TemporalBlock)
        return block

    def _head(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        pooled = pool(outputs, lengths, self.spec.pooling, 1)  # (B, D)
        return self.head(self.dropout(pooled))  # (B, C)

    def _encode(
        self, x: Tensor, lengths: Tensor, *, sequential: bool
    ) -> tuple[Tensor, list[Tensor]]:
        """x (B, T, In) -> the normed stream (B, T, D) and, when sequential, the last layer's
        forward states."""
        spec = self.spec
        index = reverse_index(lengths, x.shape[1], x.device) if spec.bidirectional else None
        u = self.encoder["project"](x)  # (B, T, D)
        states = list[Tensor]()
        for layer in range(spec.num_layers):
            normed = self.encoder[f"norm{layer}"](u)
            y, states = self._run(f"l{layer}", normed, sequential)
            if index is not None:
                backward, _ = self._run(
                    f"l{layer}_reverse", reverse_within(normed, index), sequential
                )
                y = y + reverse_within(backward, index)
            u = u + F.dropout(y, spec.dropout, self.training)
        return self.encoder["norm"](u), states

    def _run(self, name: str, u: Tensor, sequential: bool) -> tuple[Tensor, list[Tensor]]:
        block = self._block(name)
        if sequential:
            return block.sequential(u)
        return block.parallel(u), []
