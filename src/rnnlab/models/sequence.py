"""Length-aware helpers for right-padded batches: masks, per-row reversal, pooling.

Every batch is right-padded: row b holds its real steps at 0 .. lengths[b]-1.
"""

from __future__ import annotations

import torch
from torch import _VF, Tensor

from rnnlab.models import kernels
from rnnlab.models.cells import Weights

POOLINGS = ("last", "mean", "max")


def clean_lengths(lengths: Tensor, steps: int) -> Tensor:
    """(B,) int64 on the CPU, clamped to [1, T]: a length-0 row reads its first (padding) step."""
    return lengths.detach().to("cpu", torch.int64).clamp(1, max(steps, 1))


def time_mask(lengths: Tensor, steps: int, device: torch.device) -> Tensor:
    """(B, T) bool, True on real steps."""
    positions = torch.arange(steps, device=device)
    return positions[None, :] < lengths.to(device)[:, None]


def reverse_index(lengths: Tensor, steps: int, device: torch.device) -> Tensor:
    """(B, T) int64 gather index that reverses each row within its length, padding left in place.

    Applying it twice is the identity, so the same index reverses the outputs back.
    """
    positions = torch.arange(steps, device=device)[None, :]  # (1, T)
    lengths = lengths.to(device)[:, None]  # (B, 1)
    return torch.where(positions < lengths, lengths - 1 - positions, positions)  # (B, T)


def reverse_within(x: Tensor, index: Tensor) -> Tensor:
    """x (B, T, F) with each row's first `length` steps reversed (index from reverse_index)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def pool(outputs: Tensor, lengths: Tensor, how: str, directions: int) -> Tensor:
    """Pool encoder outputs (B, T, D*H) over real steps -> (B, D*H).

    `last`: the forward direction at length-1 and, for a bidirectional encoder, the backward
    direction at step 0 (each direction's final state, as h_n of a packed run).
    `mean` / `max`: over the real steps only.
    """
    batch, steps, features = outputs.shape
    lengths = lengths.to(outputs.device)
    if how == "last":
        index = (lengths - 1).view(batch, 1, 1).expand(batch, 1, features)
        last = outputs.gather(1, index).squeeze(1)  # (B, D*H)
        if directions == 2:
            half = features // 2
            last = torch.cat([last[:, :half], outputs[:, 0, half:]], dim=-1)
        return last
    mask = time_mask(lengths, steps, outputs.device).unsqueeze(-1)  # (B, T, 1)
    if how == "mean":
        total = outputs.masked_fill(~mask, 0.0).sum(dim=1)  # (B, D*H)
        return total / lengths.unsqueeze(-1).to(outputs.dtype)
    if how == "max":
        return outputs.masked_fill(~mask, float("-inf")).amax(dim=1)  # (B, D*H)
    raise ValueError(f"unknown pooling {how!r}")


def fused_direction(kind: str, x: Tensor, weights: Weights, *, training: bool) -> Tensor:
    """One layer, one direction, run forward in time by a fused kernel: (B, T, In) -> (B, T, H).

    This is the call nn.RNN / nn.LSTM / nn.GRU make, on a subset of their weights, so a
    bidirectional or stacked encoder can be run layer by layer and direction by direction;
    on the CPU, GRU, RNN and LSTM layers run on rnnlab's own kernels (rnnlab.models.kernels).
    """
    if kernels.applies(kind, x):
        return kernels.run_direction(kind, x, weights)
    hidden = weights[1].shape[1]
    h0 = x.new_zeros(1, x.shape[0], hidden)  # (1, B, H)
    params = list(weights)
    if kind == "lstm":
        return _VF.lstm(x, (h0, h0), params, True, 1, 0.0, training, False, True)[0]
    if kind == "gru":
        return _VF.gru(x, h0, params, True, 1, 0.0, training, False, True)[0]
    return _VF.rnn_tanh(x, h0, params, True, 1, 0.0, training, False, True)[0]
