"""The token embedding table: nn.Embedding with a faster CPU backward.

PyTorch's CPU backward of an embedding lookup (`embedding_dense_backward`) sorts the ids first;
at batch 64 x 400 ids and 100 dimensions it took 4.6 ms of a 65 ms GRU training step, against
about 1 ms for one `index_add_` of the gradient rows into a zeroed table
(docs/BENCHMARKS.md). The forward, the module (hooks, state_dict keys `weight`) and the
gradient (row 0, <pad>, gets none) are nn.Embedding's; only the CPU backward differs, and
only by the order of the float sums.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _Lookup(torch.autograd.Function):
    """ids (...) -> weight[ids] (..., E); backward: one index_add_ of the gradient rows."""

    @staticmethod
    def forward(ctx: Any, ids: Tensor, weight: Tensor, padding_idx: int) -> Tensor:
        ctx.save_for_backward(ids)
        ctx.rows, ctx.padding_idx = weight.shape[0], padding_idx
        return F.embedding(ids, weight, padding_idx)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None]:
        (ids,) = ctx.saved_tensors
        grad_weight = grad.new_zeros(ctx.rows, grad.shape[-1])  # (V, E)
        grad_weight.index_add_(0, ids.reshape(-1), grad.reshape(-1, grad.shape[-1]))
        grad_weight[ctx.padding_idx] = 0  # <pad> gets no gradient, as in nn.Embedding
        return None, grad_weight, None


class TokenEmbedding(nn.Embedding):
    """A (vocab, dim) table of token ids, row `padding_idx` the padding (0 in rnnlab)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int = 0) -> None:
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx)

    def forward(self, ids: Tensor) -> Tensor:
        if self.weight.device.type != "cpu" or not self.weight.requires_grad:
            return super().forward(ids)
        assert self.padding_idx is not None
        return _Lookup.apply(ids, self.weight, self.padding_idx)
