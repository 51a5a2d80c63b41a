"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): gates that read only the
input, so the recurrence is linear in the state and trains as a parallel scan over time.

    minGRU   z_t = σ(W_z x_t + b_z),  h̃_t = g(W_h x_t + b_h)
             h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t
    minLSTM  f_t = σ(W_f x_t + b_f),  i_t = σ(W_i x_t + b_i),  h̃_t = g(W_h x_t + b_h)
             f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)
             h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ h̃_t
    g(x) = x + 0.5 for x ≥ 0, σ(x) otherwise (always positive);  h_{−1} = 0.

Both are h_t = a_t ⊙ h_{t−1} + b_t (models.scan) with a_t in (0, 1) and b_t > 0, and with k_t
the logit of the update weight (minGRU: k = W_z x + b_z; minLSTM: k = softplus(−f) −
softplus(−i), from log f' = −softplus(k) and log i' = −softplus(−k)):

    log a_t = −softplus(k_t),  log b_t = −softplus(−k_t) + log g(h̃ pre-activation)

Transition range (`ModelSpec.transition`): `positive` keeps a_t = 1 − z_t in (0, 1), as
published; `signed` maps it to 2a_t − 1 = 1 − 2z_t in (−1, 1) (minLSTM: 2f'_t − 1), b_t
unchanged. Grazzi et al., "Unlocking State-Tracking in Linear RNNs Through Negative
Eigenvalues", ICLR 2025, prove that a diagonal linear recurrence with transitions in [0, 1]
cannot solve parity at finite precision, and that the same map, a -> 2a − 1, lets it.

Two modes compute the same thing (`ModelSpec.impl`):
- `torch` (training, the default), by `ModelSpec.scan`:
  - `auto`: on the CPU (float32 / float64, kernels built: models.kernels), the fused gated scan
    of `kernels/scan.cpp`: the input projection as one batch-major GEMM, then one C++ pass
    that computes σ(k), g(v) and the recurrence together, and a reverse pass for the backward
    (the adjoint g̃_t = dL/dh_t + a_{t+1} g̃_{t+1}, the gates recomputed from k and v) that
    writes dL/d(gates) as one buffer for the projection's backward GEMMs. Elsewhere (GPU,
    kernels off), as `parallel`;
  - `parallel`: for `positive`, Heinsen's log-space parallel scan, h = exp(A +
    logcumsumexp(log b − A)) with A = cumsum(log a). It runs in chunks of about √T steps: the
    cumulative sums and logcumsumexp inside each chunk, one log-space carry between chunks, so
    the values stay small (float32 keeps ~1e-6 at any T, where one scan over the whole text
    would lose precision as |A| grows) and every number is finite (no −inf enters a
    logcumsumexp: an all −inf prefix gives NaN gradients, pytorch issues 31829 and 49724). The
    backward pass is the scan's exact adjoint, chunked the same way. For `signed` (log space
    takes no negative a): models.scan's chunked scan in linear space.
- `scratch`: the step-by-step loop of the equations above (plain autograd): the reference the
  tests compare the scans with, the per-step states of `trace()`, and streaming (`step`).

Padding: right padding, read at length − 1 (the scan is causal: padding comes after the real
steps); a bidirectional encoder reads each row reversed within its own length.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.errors import check
from rnnlab.models import kernels
from rnnlab.models.classifier import ModelSpec, StateTrace, TextClassifier
from rnnlab.models.family import SCAN, family, register_family
from rnnlab.models.scan import chunk_size, chunked, linear_scan, reverse_chunked_scan
from rnnlab.models.sequence import POOLINGS, clean_lengths, pool, reverse_index, reverse_within

GATES = {"mingru": 2, "minlstm": 3}
"""Blocks of the input projection: minGRU (z, h̃), minLSTM (f, i, h̃)."""
NEGATIVE = -1e30
"""A large finite stand-in for log 0 (the empty prefix): finite, so no NaN gradients."""


LIMIT = 60.0
"""Gate logits and candidate pre-activations are clamped to ±LIMIT inside the scans: σ(−60) ~
1e-26, so the result moves by less than float rounding, and no logarithm ever sees 0."""


def g(x: Tensor) -> Tensor:
    """x + 0.5 for x >= 0, σ(x) otherwise: continuous, positive, linear for large x.
    Computed as σ(min(x, 0)) + max(x, 0) (the same function, without a branch)."""
    return torch.sigmoid(x.clamp(max=0)) + x.clamp(min=0)


def heinsen_scan(log_a: Tensor, log_b: Tensor, *, stepped: bool | None = None) -> Tensor:
    """h_t = a_t h_{t-1} + b_t with h_{-1} = 0, from log a and log b, time-major (T, B, H).

    Heinsen's sequence inside each chunk of C steps: with A = cumsum(log a) from the chunk's
    start, the chunk's own part is exp(A + logcumsumexp(log b − A)) (its state started from 0);
    the state entering a chunk is carried over with exp(A) (the chunk's decay, at most 1).
    Both parts are at most max_t b_t / (1 - a_t), so nothing overflows, at any length.
    Works in place on its two inputs (the caller's temporaries) and returns h in log_b's memory.
    `stepped`: the logcumsumexp inside the chunks as C logaddexp steps (None: on the CPU, where
    PyTorch's logcumsumexp is a scalar loop) or as torch.logcumsumexp (elsewhere).
    """
    steps, batch, hidden = log_a.shape
    size = chunk_size(steps)
    cum = chunked(log_a, size, 0.0)  # (n, C, B, H); padding (after the end): a = 1 ...
    inner = chunked(log_b, size, NEGATIVE)  # ... b ~ 0: never read
    if stepped if stepped is not None else log_a.device.type == "cpu":
        inner[:, 0].sub_(cum[:, 0])
        for i in range(1, size):
            cum[:, i].add_(cum[:, i - 1])  # A
            torch.logaddexp(inner[:, i - 1], inner[:, i].sub_(cum[:, i]), out=inner[:, i])
    else:
        torch.cumsum(cum, dim=1, out=cum)
        inner = torch.logcumsumexp(inner.sub_(cum), dim=1)
    local = inner.add_(cum).exp_()  # the chunk's own part: exp(A + logcumsumexp(log b - A))
    decay = cum.exp_()  # prod of a from the chunk's start, in [0, 1]
    carries = torch.empty_like(local[:, 0])  # (n, B, H): h just before each chunk
    carry = local.new_zeros(batch, hidden)
    for c in range(local.shape[0]):
        carries[c] = carry
        carry = torch.addcmul(local[c, -1], decay[c, -1], carry)
    h = local.addcmul_(decay, carries[:, None])
    return h.view(-1, batch, hidden)[:steps]


reverse_linear_scan = reverse_chunked_scan
"""y_t = values_t + coef_{t+1} y_{t+1} (y_T = 0): the log-space scan's adjoint (models.scan)."""


class _ParallelScan(torch.autograd.Function):
    """h = scan(k, v): a = σ(−k), b = σ(k) g(v); forward in log space, backward its adjoint.
    Time-major (T, B, H) in and out, contiguous: elementwise ops on strided views are many
    times slower on the CPU. The few full-size temporaries are reused in place: each pass over
    (T, B, H) numbers costs more than the arithmetic in it."""

    @staticmethod
    def forward(ctx: Any, k: Tensor, v: Tensor) -> Tensor:
        k = F.hardtanh(k, -LIMIT, LIMIT)  # our own copy
        z = torch.sigmoid(k)
        log_z = torch.log(z)
        log_a = k.neg_().add_(log_z)  # log(1 - σ(k)) = log σ(k) - k: finite where 1 - z is 0
        positive = torch.relu(v)
        low = F.hardtanh(v, -LIMIT, 0.0).sigmoid_()  # σ(min(v, 0))
        candidate = torch.add(low, positive)  # g(v)
        log_b = log_z.add_(torch.log(candidate))  # log z + log g(v)
        h = heinsen_scan(log_a, log_b)  # (T, B, H)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            # g'(v) = σ'(v) = s (1 - s) below 0, 1 above (s = σ(min(v, 0)) is 1/2 there)
            slope = torch.addcmul(low, low, low, value=-1.0).add_(positive.sign_(), alpha=0.75)
            ctx.save_for_backward(z, candidate, slope, h)
        return h

    @staticmethod
    def backward(ctx: Any, grad_h: Tensor) -> tuple[Tensor, Tensor]:
        z, candidate, slope, h = ctx.saved_tensors  # (T, B, H)
        a = 1 - z
        total = reverse_linear_scan(a, grad_h.contiguous())  # dL/dh_t via every later step
        gap = candidate.clone()  # h̃_t - h_{t-1} (not h_t - h_{t-1} = z (h̃_t - h_{t-1}): in
        gap[1:] -= h[:-1]  # float32 that difference of two large states loses the small z)
        grad_k = gap.mul_(z).mul_(a).mul_(total)  # dh_t/dk_t = z a (h̃_t - h_{t-1})
        grad_v = total.mul_(z).mul_(slope)  # dh_t/dv_t = z g'(v_t)
        return grad_k, grad_v


def parallel_scan(k: Tensor, v: Tensor) -> Tensor:
    """h_t = (1 − σ(k_t)) h_{t−1} + σ(k_t) g(v_t), h_{−1} = 0, all steps at once.
    k, v time-major (T, B, H) -> h (T, B, H)."""
    return _ParallelScan.apply(k.contiguous(), v.contiguous())


class _FusedGatedScan(torch.autograd.Function):
    """h = scan(k, v) on the fused CPU kernel, gates and all: k and v, the two halves of the last
    dim of `gates` (T, B, 2H), any strides, in; h (T, B, H) out, in the layout of gates (a view
    of batch-major memory for a batch-major gates). One pass forward (σ(k), g(v) and the
    recurrence in one loop), one reverse pass backward that recomputes the gates from k and v
    and writes dL/dgates in gates' layout as one buffer, so the input projection's backward is
    one GEMM. Saved: gates (the projection's output) and h."""

    @staticmethod
    def forward(ctx: Any, gates: Tensor, signed: bool) -> Tensor:
        k, v = gates.chunk(2, dim=-1)  # (T, B, H) views, row stride 2H
        h = kernels.loaded().gated_scan_forward(k, v, signed)  # (T, B, H), contiguous
        ctx.signed = signed
        ctx.save_for_backward(gates, h)
        return h

    @staticmethod
    def backward(ctx: Any, grad_h: Tensor) -> tuple[Tensor, None]:
        gates, h = ctx.saved_tensors
        k, v = gates.chunk(2, dim=-1)
        grad = torch.empty_like(gates)  # (T, B, 2H)
        d_k, d_v = grad.chunk(2, dim=-1)
        kernels.loaded().gated_scan_backward(k, v, h, grad_h, d_k, d_v, ctx.signed, False)
        return grad, None


class _FusedMinGRULayer(torch.autograd.Function):
    """One minGRU layer direction on the fused CPU kernel, input projection included:
    x (B, T, In), weight (2H, In), bias (2H) -> h (B, T, H). Batch major throughout: the
    projection is one GEMM into gates (B, T, 2H) (no transposed copy of x), the kernel walks each
    row's time loop in memory order, and its backward writes dL/dgates as one buffer and sums
    the bias gradient as it goes (no extra pass over the gradients); then one GEMM each for
    dL/dx and dL/dweight."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, signed: bool) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])  # (B*T, In), free for a contiguous x
        gates = torch.addmm(bias, flat, weight.t()).view(x.shape[0], x.shape[1], -1)
        k, v = gates.transpose(0, 1).chunk(2, dim=-1)  # (T, B, H) views
        h = kernels.loaded().gated_scan_forward(k, v, signed)  # (T, B, H) view of (B, T, H)
        ctx.signed, ctx.x_shape = signed, x.shape
        ctx.save_for_backward(flat, weight, gates, h)
        return h.transpose(0, 1)  # (B, T, H), contiguous

    @staticmethod
    def backward(ctx: Any, grad_h: Tensor) -> tuple[Tensor | None, Tensor, Tensor, None]:
        flat, weight, gates, h = ctx.saved_tensors
        grad = torch.empty_like(gates)  # (B, T, 2H)
        k, v = gates.transpose(0, 1).chunk(2, dim=-1)
        d_k, d_v = grad.transpose(0, 1).chunk(2, dim=-1)
        d_bias = kernels.loaded().gated_scan_backward(
            k, v, h, grad_h.transpose(0, 1), d_k, d_v, ctx.signed, True
        )
        grad_flat = grad.view(-1, grad.shape[-1])  # (B*T, 2H)
        d_x = torch.mm(grad_flat, weight).view(ctx.x_shape) if ctx.needs_input_grad[0] else None
        d_weight = torch.mm(flat.t(), grad_flat).t()  # (2H, In); MKL is faster this way round
        return d_x, d_weight, d_bias, None


def signed_scan(k: Tensor, v: Tensor) -> Tensor:
    """The [−1, 1] transition without the kernel: a_t = 1 − 2σ(k_t), b_t = σ(k_t) g(v_t) by
    torch ops, then the chunked linear-space scan (log space cannot take a negative a).
    k, v time-major (T, B, H) -> h (T, B, H)."""
    z = torch.sigmoid(k)
    return linear_scan(1 - 2 * z, z * g(v), method="parallel")


def padded_steps(steps: int) -> int:
    """T rounded up to whole chunks (the scans then need no padding of their own)."""
    size = chunk_size(steps)
    return -(-steps // size) * size


def sequential_steps(
    kind: str, gates: Tensor, state: Tensor | None = None, *, signed: bool = False
) -> list[Tensor]:
    """The equations step by step (the reference): gates (B, T, G*H) -> T states (B, H).
    `signed`: the keep weight a in [0, 1] mapped to 2a − 1 in [−1, 1] (TRANSITIONS)."""
    blocks = gates.chunk(GATES[kind], dim=-1)
    candidate = g(blocks[-1])  # h̃ (B, T, H)
    if kind == "mingru":
        keep_new = torch.sigmoid(blocks[0])
        keep_old = 1 - keep_new
    else:
        f, i = torch.sigmoid(blocks[0]), torch.sigmoid(blocks[1])
        keep_old, keep_new = f / (f + i), i / (f + i)
    if signed:
        keep_old = 2 * keep_old - 1
    h = state if state is not None else candidate.new_zeros(candidate.shape[0], candidate.shape[2])
    states = []
    for t in range(candidate.shape[1]):
        h = keep_old[:, t] * h + keep_new[:, t] * candidate[:, t]
        states.append(h)
    return states


def update_logit(kind: str, blocks: list[Tensor]) -> tuple[Tensor, Tensor]:
    """(k, v) from the gate blocks: the logit of the update weight and the candidate's
    pre-activation (minLSTM: k = softplus(−f) − softplus(−i), so that σ(k) = i / (f + i))."""
    if kind == "mingru":
        return blocks[0], blocks[1]
    return F.softplus(-blocks[0]) - F.softplus(-blocks[1]), blocks[2]


@register_family(
    "minlstm", display="minLSTM", group=SCAN, colour="tab:pink", gate_blocks=GATES["minlstm"],
    gated=True, year=2024,
)  # fmt: skip
@register_family(  # decorators apply bottom up: mingru registers first
    "mingru", display="minGRU", group=SCAN, colour="tab:orange", gate_blocks=GATES["mingru"],
    gated=True, year=2024,
)  # fmt: skip
class MinRecurrentClassifier(TextClassifier):
    """embedding -> stacked minGRU / minLSTM layers (optionally bidirectional) -> pooling -> head.

    model(tokens (B, T) int64 or (B, T, F) float, lengths (B,)) -> logits (B, C). Parameters:
    `rnn.l{layer}` (and `rnn.l{layer}_reverse`), each one Linear(In, G*H) with the gate blocks
    stacked in the order of GATES (minGRU z, h̃; minLSTM f, i, h̃).
    """

    family = "minrnn"
    sequence_modes = ("padded",)
    impls = ("torch", "scratch")
    poolings = POOLINGS
    transitions = ("positive", "signed")
    has_states = True

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        check(spec.kind in GATES, f"MinRecurrentClassifier runs mingru or minlstm, not {spec.kind}")
        self.check_spec(spec)
        self._token_embedding(spec)
        hidden, blocks = spec.hidden_dim, GATES[spec.kind]
        layers = {}
        for layer in range(spec.num_layers):
            in_size = (spec.input_dim or spec.embed_dim) if layer == 0 else spec.directions * hidden
            for suffix in ("", "_reverse")[: spec.directions]:
                layers[f"l{layer}{suffix}"] = nn.Linear(in_size, blocks * hidden)
        self.rnn = nn.ModuleDict(layers)
        self.head = nn.Linear(spec.directions * hidden, spec.num_outputs)
        if spec.gate_bias is not None:
            self._set_gate_bias(spec.gate_bias)

    def _set_gate_bias(self, value: float) -> None:
        """Bias towards keeping the state: minGRU's z by -value, minLSTM's f by +value."""
        hidden = self.spec.hidden_dim
        with torch.no_grad():
            for linear in self.rnn.values():
                assert isinstance(linear, nn.Linear)
                linear.bias[:hidden] = -value if self.spec.kind == "mingru" else value
                if self.spec.kind == "minlstm":
                    linear.bias[hidden : 2 * hidden] = 0.0

    def parts(self) -> dict[str, nn.Module | None]:
        return {"embedding": self.embedding, "recurrent": self.rnn, "head": self.head}

    @classmethod
    def state_size(cls, spec: ModelSpec) -> int | None:
        """h."""
        return spec.hidden_dim

    def layout(self) -> str:
        s = self.spec
        name = family(s.kind).display
        bi = "bi" if s.bidirectional else ""
        return f"{bi}{name} {s.num_layers}x{s.hidden_dim}, {s.pooling} pooling"

    @classmethod
    def activation_floats_per_token(cls, spec: ModelSpec, steps: int) -> float:
        """Floats autograd keeps per token: the gates, k, v and h per layer and direction, with
        room for the scan's temporaries."""
        features = spec.input_dim or spec.embed_dim
        per_direction = features + (GATES[spec.kind] + 7) * spec.hidden_dim
        return features + spec.num_layers * spec.directions * per_direction

    # -- forward ----------------------------------------------------------------------------

    def forward_embedded(self, x: Tensor, lengths: Tensor) -> Tensor:
        lengths = clean_lengths(lengths, x.shape[1])
        outputs, _ = self._layered(x, lengths, sequential=self.spec.impl == "scratch")
        return self._head(outputs, lengths)

    def trace(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, StateTrace]:
        """The sequential mode: logits and the states h_t of the last layer's forward direction,
        one (B, H) node per step on the loss path (any impl gives the same logits)."""
        lengths = clean_lengths(lengths, x.shape[1])
        outputs, states = self._layered(x, lengths, sequential=True)
        return self._head(outputs, lengths), StateTrace(states, None, lengths)

    def step(self, x: Tensor, state: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        """Streaming: one time step x (B, In) of a unidirectional model -> the last layer's h_t
        (B, H) and the new state (one (B, H) per layer; None starts from h = 0)."""
        check(not self.spec.bidirectional, "streaming needs a unidirectional model")
        new_state = []
        layer_input = x
        for layer in range(self.spec.num_layers):
            if layer > 0:
                layer_input = F.dropout(layer_input, self.spec.dropout, self.training)
            gates = self.rnn[f"l{layer}"](layer_input)[:, None]  # (B, 1, G*H)
            previous = state[layer] if state is not None else None
            (h,) = sequential_steps(self.spec.kind, gates, previous, signed=self._signed)
            new_state.append(h)
            layer_input = h
        return layer_input, new_state

    @property
    def _signed(self) -> bool:
        return self.spec.transition == "signed"

    def _head(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        pooled = pool(outputs, lengths, self.spec.pooling, self.spec.directions)  # (B, D*H)
        return self.head(self.dropout(pooled))  # (B, C)

    def _layered(
        self, x: Tensor, lengths: Tensor, *, sequential: bool
    ) -> tuple[Tensor, list[Tensor]]:
        """Layer by layer; the backward direction reads each row reversed within its length.
        Returns outputs (B, T, D*H) and, when sequential, the last layer's forward states."""
        spec = self.spec
        index = reverse_index(lengths, x.shape[1], x.device) if spec.bidirectional else None
        layer_input, states = x, list[Tensor]()
        for layer in range(spec.num_layers):
            if layer > 0:
                layer_input = F.dropout(layer_input, spec.dropout, self.training)
            forward, states = self._direction(layer_input, f"l{layer}", sequential)
            outputs = [forward]  # (B, T, H)
            if index is not None:
                flipped = reverse_within(layer_input, index)
                backward, _ = self._direction(flipped, f"l{layer}_reverse", sequential)
                outputs.append(reverse_within(backward, index))
            layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        return layer_input, states

    def _direction(self, x: Tensor, name: str, sequential: bool) -> tuple[Tensor, list[Tensor]]:
        """One layer and direction over x (B, T, In) -> (B, T, H), and the states if sequential."""
        linear = self.rnn[name]
        assert isinstance(linear, nn.Linear)
        kind, signed = self.spec.kind, self._signed
        if sequential:
            states = sequential_steps(kind, linear(x), signed=signed)  # gates (B, T, G*H)
            return torch.stack(states, dim=1), states
        steps = x.shape[1]
        if self.spec.scan == "auto" and kernels.scan_applies(x):
            # batch major throughout: no transposed copy of x, and the kernel runs each row's
            # time loop in memory order
            if kind == "mingru":
                return _FusedMinGRULayer.apply(x, linear.weight, linear.bias, signed), []
            gates = F.linear(x, linear.weight, linear.bias)  # (B, T, 3H)
            k, v = update_logit(kind, list(gates.chunk(GATES[kind], dim=-1)))
            h = _FusedGatedScan.apply(torch.cat([k, v], dim=-1).transpose(0, 1), signed)
            return h.transpose(0, 1), []  # (B, T, H), contiguous
        # the parallel scans run time major, on whole chunks (the padded steps come last)
        xt = F.pad(x.transpose(0, 1), (0, 0, 0, 0, 0, padded_steps(steps) - steps))
        hidden = self.spec.hidden_dim
        blocks = [
            F.linear(xt, linear.weight[i * hidden : (i + 1) * hidden],
                     linear.bias[i * hidden : (i + 1) * hidden])
            for i in range(GATES[kind])
        ]  # fmt: skip  # each (T', B, H), contiguous
        k, v = update_logit(kind, blocks)
        h = signed_scan(k, v) if signed else parallel_scan(k, v)  # (T', B, H)
        return h[:steps].transpose(0, 1), []
