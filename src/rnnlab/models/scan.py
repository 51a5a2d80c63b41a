"""The diagonal linear recurrence h_t = a_t ⊙ h_{t−1} + b_t, shared by every family whose state
update is linear in the state (minGRU, minLSTM, Mamba per state dimension, RG-LRU).

`linear_scan` is the one entry point. This first version is the step-by-step reference; the
fused CPU kernel and the GPU's parallel scan plug in behind the same signature.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.errors import check


def reference_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """The equations step by step, plain autograd: a, b time-major (T, ...) -> h (T, ...)."""
    h = h0 if h0 is not None else b.new_zeros(b.shape[1:])
    states = []
    for t in range(b.shape[0]):
        h = a[t] * h + b[t]
        states.append(h)
    return torch.stack(states) if states else b.new_zeros(b.shape)


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """h_t = a_t ⊙ h_{t−1} + b_t along dim 0, h_{−1} = h0 (zeros when None).

    a, b: time-major (T, ...), the same shape; h0: (...) -> h (T, ...)."""
    check(a.shape == b.shape, f"linear_scan: a {tuple(a.shape)} and b {tuple(b.shape)} differ")
    return reference_scan(a, b, h0)
