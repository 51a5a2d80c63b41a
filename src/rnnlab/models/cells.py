"""Hand-written RNN / LSTM / GRU cells with the same parameters and gate layout as torch.nn.

The step functions are pure: they take the input projection `gx = x_t @ W_ih^T + b_ih`
(computed for all time steps at once, since it does not depend on the state), the previous
state and the recurrent weights, and return the new state. Gate order is torch's:
LSTM `i, f, g, o` and GRU `r, z, n`, so weights copied from nn.LSTM / nn.GRU give the same
outputs, and `state_dict`s move freely between `impl="torch"` and `impl="scratch"`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.errors import RnnlabError

KINDS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
"""Stacked gate blocks in the weight matrices (rows = GATES[kind] * hidden_size)."""

Weights = tuple[Tensor, Tensor, Tensor, Tensor]
"""One layer and direction: (weight_ih (G*H, In), weight_hh (G*H, H), bias_ih (G*H,), bias_hh)."""


def rnn_step(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """Elman RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh). gx, h: (B, H) -> (B, H)."""
    return torch.tanh(gx + F.linear(h, w_hh, b_hh))


def lstm_step(
    gx: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor
) -> tuple[Tensor, Tensor]:
    """LSTM: gates i, f, g, o from gx (B, 4H) + W_hh h + b_hh; returns (h', c') each (B, H).

    i = σ(.), f = σ(.), g = tanh(.), o = σ(.);  c' = f * c + i * g;  h' = o * tanh(c').
    """
    gates = gx + F.linear(h, w_hh, b_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    return h_new, c_new


def gru_step(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """GRU: gates r, z, n; gx (B, 3H), h (B, H) -> (B, H).

    r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r * h_n), h' = (1 - z) * n + z * h,
    where x_* come from gx and h_* from W_hh h + b_hh (the reset gate scales h_n, as torch).
    """
    gh = F.linear(h, w_hh, b_hh)  # (B, 3H)
    x_r, x_z, x_n = gx.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


@dataclass
class CellRun:
    """One layer and direction unrolled over time."""

    output: Tensor  # (B, T, H) hidden state at every step, in input time order
    h_n: Tensor  # (B, H) final hidden state
    c_n: Tensor | None  # (B, H) final cell state (LSTM), else None
    hidden: list[Tensor]  # T tensors (B, H): the nodes stacked into `output`
    cell: list[Tensor] | None  # T tensors (B, H) for LSTM, else None


def run_cells(
    kind: str,
    x: Tensor,
    weights: Weights,
    *,
    reverse: bool = False,
    lengths: Tensor | None = None,
) -> CellRun:
    """Unroll one direction of one layer over x (B, T, In) with the hand-written steps.

    reverse=True walks from T-1 down to 0 (torch's backward direction on an unpacked input).
    lengths (B,) gives packed-sequence semantics: the state is held on padding (so the forward
    final state is the one at length-1, and the backward direction starts at length-1), and the
    output is zero on padding, as pad_packed_sequence gives.
    """
    w_ih, w_hh, b_ih, b_hh = weights
    batch, steps, _ = x.shape
    gx = F.linear(x, w_ih, b_ih)  # (B, T, G*H): input projections for all steps at once
    h = x.new_zeros(batch, w_hh.shape[1])  # (B, H)
    c = torch.zeros_like(h) if kind == "lstm" else None
    mask = None
    if lengths is not None:
        positions = torch.arange(steps, device=x.device)
        mask = (positions[None, :] < lengths.to(x.device)[:, None]).unsqueeze(-1)  # (B, T, 1)
    hidden: list[Tensor] = [h] * steps
    cell: list[Tensor] = [h] * steps
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        if c is not None:  # LSTM
            h_new, c_new = lstm_step(gx[:, t], h, c, w_hh, b_hh)
            if mask is not None:
                c_new = torch.where(mask[:, t], c_new, c)
            c = cell[t] = c_new
        elif kind == "gru":
            h_new = gru_step(gx[:, t], h, w_hh, b_hh)
        else:
            h_new = rnn_step(gx[:, t], h, w_hh, b_hh)
        if mask is not None:
            h_new = torch.where(mask[:, t], h_new, h)  # hold the state on padding
        h = hidden[t] = h_new
    output = torch.stack(hidden, dim=1) if steps else x.new_zeros(batch, 0, h.shape[-1])
    if mask is not None:
        output = output * mask  # (B, T, H), zero on padding
    return CellRun(output, h, c, hidden, cell if c is not None else None)


def param_names(layer: int, reverse: bool) -> tuple[str, str, str, str]:
    """torch.nn names of one layer and direction, e.g. weight_ih_l0_reverse."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return f"weight_ih{suffix}", f"weight_hh{suffix}", f"bias_ih{suffix}", f"bias_hh{suffix}"


def layer_weights(module: nn.Module, layer: int, reverse: bool) -> Weights:
    """The weights of one layer and direction of an nn.RNN/LSTM/GRU or a ScratchRecurrent."""
    w_ih, w_hh, b_ih, b_hh = (getattr(module, name) for name in param_names(layer, reverse))
    return w_ih, w_hh, b_ih, b_hh


class ScratchRecurrent(nn.Module):
    """A drop-in for nn.RNN / nn.LSTM / nn.GRU (batch_first=True, bias=True) built from the
    hand-written cells: same parameter names, shapes, gate order and initialisation.

    forward(x (B, T, In), lengths=None) -> (output (B, T, D*H), h_n) with h_n (L*D, B, H), or
    (h_n, c_n) for LSTM. Without lengths it computes what torch does on a padded input; with
    lengths it computes what torch does on the packed input (zeros on padding in `output`).
    """

    def __init__(
        self,
        kind: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kind not in GATES:
            raise RnnlabError(f"unknown recurrent kind {kind!r}; use one of {', '.join(KINDS)}")
        self.kind = kind
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        rows = GATES[kind] * hidden_size
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                shapes = ((rows, in_size), (rows, hidden_size), (rows,), (rows,))
                for name, shape in zip(param_names(layer, direction == 1), shapes, strict=True):
                    self.register_parameter(name, nn.Parameter(torch.empty(shape)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias, as torch.nn."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def forward(
        self, x: Tensor, lengths: Tensor | None = None
    ) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        directions = 2 if self.bidirectional else 1
        layer_input = x  # (B, T, In)
        h_n: list[Tensor] = []
        c_n: list[Tensor] = []
        for layer in range(self.num_layers):
            if layer > 0:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
            outputs = []
            for direction in range(directions):
                weights = layer_weights(self, layer, direction == 1)
                run = run_cells(
                    self.kind, layer_input, weights, reverse=direction == 1, lengths=lengths
                )
                outputs.append(run.output)
                h_n.append(run.h_n)
                if run.c_n is not None:
                    c_n.append(run.c_n)
            layer_input = torch.cat(outputs, dim=-1)  # (B, T, D*H)
        hidden = torch.stack(h_n)  # (L*D, B, H)
        if self.kind == "lstm":
            return layer_input, (hidden, torch.stack(c_n))
        return layer_input, hidden

    def extra_repr(self) -> str:
        return (
            f"{self.kind}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}, dropout={self.dropout}"
        )
