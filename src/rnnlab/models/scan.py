"""The diagonal linear recurrence h_t = a_t ⊙ h_{t−1} + b_t, shared by every family whose state
update is linear in the state (minGRU, minLSTM, Mamba per state dimension, RG-LRU).

`linear_scan(a, b, h0)` is the one entry point, with three ways to compute the same thing
(`method`):

- `auto` (the default): on the CPU, float32 / float64, the fused C++ scan
  (`kernels/scan.cpp`: one pass over a and b forward, one reverse pass over a, h and dL/dh
  backward, any strides, OpenMP over the non-time dims) wherever the kernels build
  (`RNNLAB_CPU_KERNELS`, models.kernels); elsewhere (GPU, other dtypes, kernels off) the
  parallel scan;
- `parallel`: a chunked scan in linear space, for GPUs (and on the CPU for comparison): inside
  chunks of about √T steps the recurrence runs for every chunk at once, then one carry passes
  from chunk to chunk. Linear space, unlike Heinsen's log-space scan (minrnn.heinsen_scan),
  takes a and b of either sign; with |a_t| ≤ 1 every product of a's stays at most 1, so
  nothing overflows at any T. Its backward is the exact adjoint, the reverse scan below;
- `reference`: the equations step by step with plain autograd (the tests' reference).

The backward of all three is the reverse recurrence g̃_t = dL/dh_t + a_{t+1} g̃_{t+1}, with
dL/da_t = g̃_t h_{t−1}, dL/db_t = g̃_t and dL/dh0 = a_0 g̃_0.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor

from rnnlab.errors import check
from rnnlab.models import kernels

ScanMethod = Literal["auto", "parallel", "reference"]
METHODS: tuple[str, ...] = ("auto", "parallel", "reference")


def reference_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """The equations step by step, plain autograd: a, b time-major (T, ...) -> h (T, ...)."""
    h = h0 if h0 is not None else b.new_zeros(b.shape[1:])
    states = []
    for t in range(b.shape[0]):
        h = a[t] * h + b[t]
        states.append(h)
    return torch.stack(states) if states else b.new_zeros(b.shape)


def linear_scan(
    a: Tensor, b: Tensor, h0: Tensor | None = None, *, method: ScanMethod = "auto"
) -> Tensor:
    """h_t = a_t ⊙ h_{t−1} + b_t along dim 0, h_{−1} = h0 (zeros when None).

    a, b: time-major (T, ...), the same shape, dtype and device, any strides; h0: (...).
    Returns h (T, ...), contiguous. `method`: `auto`, `parallel` or `reference` (module doc)."""
    check(a.shape == b.shape, f"linear_scan: a {tuple(a.shape)} and b {tuple(b.shape)} differ")
    check(method in METHODS, f"linear_scan: method must be one of {', '.join(METHODS)}")
    check(
        a.dtype == b.dtype and a.device == b.device,
        f"linear_scan: a ({a.dtype}, {a.device}) and b ({b.dtype}, {b.device}) must match",
    )
    if h0 is not None:
        check(
            h0.shape == b.shape[1:] and h0.dtype == b.dtype and h0.device == b.device,
            f"linear_scan: h0 must be {tuple(b.shape[1:])}, {b.dtype} on {b.device} "
            f"(got {tuple(h0.shape)}, {h0.dtype} on {h0.device})",
        )
    if method == "reference" or b.dim() == 0 or b.shape[0] == 0:
        return reference_scan(a, b, h0)
    if method == "auto" and kernels.scan_applies(b):
        return _FusedLinearScan.apply(a, b, h0)
    return _ParallelLinearScan.apply(a, b, h0)


# -- the fused CPU kernel ----------------------------------------------------------------------


def fold(tensors: list[Tensor]) -> list[Tensor]:
    """Time-major (T, ...) tensors of one shape as (T, M, K) views of the same memory, the
    non-time dims folded into two (dims of size 1 dropped, neighbours merged where every tensor
    lays them out as one); where more than two remain, contiguous copies (T, 1, N). The flat
    index m K + k of a view is the row-major index of the non-time dims, as in a contiguous
    tensor of the same shape."""
    shape = tensors[0].shape
    groups: list[list[int]] = []  # runs of dims, last first
    for dim in reversed([d for d in range(1, len(shape)) if shape[d] != 1]):
        inner = groups[-1][0] if groups else None
        if inner is not None and all(
            x.stride(dim) == x.stride(inner) * shape[inner] for x in tensors
        ):
            groups[-1].insert(0, dim)
        else:
            groups.append([dim])
    if len(groups) > 2:
        return [x.contiguous().view(shape[0], 1, -1) for x in tensors]
    groups = groups[::-1]
    while len(groups) < 2:
        groups.insert(0, [])
    sizes = [math.prod(shape[d] for d in group) for group in groups]
    return [
        x.as_strided(
            (shape[0], *sizes),
            (x.stride(0), *(x.stride(g[-1]) if g else 1 for g in groups)),
            x.storage_offset(),
        )
        for x in tensors
    ]


def _with_time(h0: Tensor, like: Tensor) -> Tensor:
    """h0 (...) as a one-step (1, ...) view, to fold it like the (T, ...) operands."""
    return h0.unsqueeze(0).expand(1, *like.shape[1:])


class _FusedLinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
        ext = kernels.loaded()
        if h0 is None:
            a3, b3 = fold([a, b])
            start = None
        else:  # h0 folds as a one-step tensor beside a and b (its time stride is never read)
            start_t = _with_time(h0, b).expand(b.shape[0], *b.shape[1:])
            a3, b3, start_3 = fold([a, b, start_t])
            start = start_3[0]  # (M, K)
        h = ext.linear_scan_forward(a3, b3, start).view(b.shape)  # (T, ...), contiguous
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx: Any, d_h: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        a, h, h0 = ctx.saved_tensors
        a3, d_h3, h3 = fold([a, d_h, h])  # h: the forward's output, contiguous
        # the kernel reads h and h0 by flat index m K + k, the row-major order of their dims
        d_a, d_b, d_h0 = kernels.loaded().linear_scan_backward(a3, h3, d_h3, h0)
        d_start = d_h0.view(h.shape[1:]) if h0 is not None and ctx.needs_input_grad[2] else None
        return d_a.view(h.shape), d_b.view(h.shape), d_start


# -- the chunked parallel scan (GPU; on the CPU for comparison) -------------------------------


def chunk_size(steps: int) -> int:
    """About √T steps per chunk: the scans then loop about 2√T times."""
    return max(1, math.ceil(math.sqrt(steps)))


def chunked(x: Tensor, size: int, fill: float) -> Tensor:
    """Time-major (T, ...) -> (n, size, ...), padding time with `fill` to a multiple of size.
    Step i of every chunk, [:, i], is then n blocks of contiguous numbers (elementwise ops on a
    batch-major layout's [:, :, i] run tens of times slower on the CPU)."""
    steps = x.shape[0]
    chunks = -(-steps // size)
    if chunks * size != steps:
        x = torch.cat([x, x.new_full((chunks * size - steps, *x.shape[1:]), fill)], dim=0)
    return x.view(chunks, size, *x.shape[1:])


def chunked_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """h_t = a_t h_{t−1} + b_t in linear space, chunked: a, b (T, ...) contiguous -> h (T, ...).

    Inside each chunk of C steps, every chunk at once: its own part from a zero state, and its
    decay (the product of its a's so far); then the state entering each chunk, chunk by chunk;
    then h = own part + decay x entering state. About 2√T elementwise steps in all."""
    steps = a.shape[0]
    size = chunk_size(steps)
    coef = chunked(a, size, 1.0)  # (n, C, ...); padding (after the end): a = 1, b = 0
    local = chunked(b, size, 0.0).clone()  # the chunk's own part, from a zero state
    decay = coef.clone()  # prod of a from the chunk's start
    for i in range(1, size):
        local[:, i].addcmul_(coef[:, i], local[:, i - 1])
        decay[:, i].mul_(decay[:, i - 1])
    carries = torch.empty_like(local[:, 0])  # (n, ...): h just before each chunk
    carry = h0 if h0 is not None else local.new_zeros(local.shape[2:])
    for c in range(local.shape[0]):
        carries[c] = carry
        carry = torch.addcmul(local[c, -1], decay[c, -1], carry)
    h = local.addcmul_(decay, carries[:, None])
    return h.view(-1, *a.shape[1:])[:steps]


def reverse_chunked_scan(coef: Tensor, values: Tensor) -> Tensor:
    """y_t = values_t + coef_{t+1} y_{t+1} (y_T = 0), (T, ...) contiguous, chunked like
    chunked_scan. Note the shift: the coefficient of step t+1 carries y_{t+1} back to step t
    (the adjoint of h_t = a_t h_{t−1} + b_t)."""
    steps = coef.shape[0]
    size = chunk_size(steps)
    a = chunked(coef, size, 0.0)  # (n, C, ...)
    b = chunked(values, size, 0.0)
    local = torch.empty_like(b)  # the reverse scan inside each chunk, from y = 0
    decay = torch.empty_like(a)  # prod_{j > i in the chunk} coef_j (1 at the chunk's end)
    local[:, -1] = b[:, -1]
    decay[:, -1] = 1.0
    for i in range(size - 2, -1, -1):
        torch.addcmul(b[:, i], a[:, i + 1], local[:, i + 1], out=local[:, i])
        torch.mul(a[:, i + 1], decay[:, i + 1], out=decay[:, i])
    carries = torch.empty_like(local[:, 0])  # (n, ...): what enters each chunk from the next
    carry = local.new_zeros(local.shape[2:])
    for c in range(a.shape[0] - 1, -1, -1):
        carries[c] = carry
        carry = a[c, 0] * torch.addcmul(local[c, 0], decay[c, 0], carry)  # a_first * y_first
    out = local.addcmul_(decay, carries[:, None])
    return out.view(-1, *coef.shape[1:])[:steps]


class _ParallelLinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
        a = a.contiguous()
        h = chunked_scan(a, b.contiguous(), h0)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx: Any, d_h: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        a, h, h0 = ctx.saved_tensors
        total = reverse_chunked_scan(a, d_h.contiguous())  # g̃_t
        before = torch.empty_like(h)  # h_{t−1}
        before[0] = h0 if h0 is not None else 0.0
        before[1:] = h[:-1]
        d_start = a[0] * total[0] if h0 is not None and ctx.needs_input_grad[2] else None
        return total * before, total, d_start
