"""TokenEmbedding: nn.Embedding's forward and gradient, with its own CPU backward."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rnnlab.models.lookup import TokenEmbedding


def _pair(rows: int, dim: int, seed: int) -> tuple[nn.Embedding, TokenEmbedding]:
    torch.manual_seed(seed)
    reference = nn.Embedding(rows, dim, padding_idx=0).double()
    ours = TokenEmbedding(rows, dim).double()
    ours.load_state_dict(reference.state_dict())
    return reference, ours


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 30),
    dim=st.integers(1, 9),
    batch=st.integers(1, 5),
    steps=st.integers(1, 12),
    seed=st.integers(0, 1000),
)
def test_output_and_gradient_are_nn_embeddings(
    rows: int, dim: int, batch: int, steps: int, seed: int
) -> None:
    """Repeated ids, padding ids (0) and ids never drawn all get nn.Embedding's gradient."""
    reference, ours = _pair(rows, dim, seed)
    ids = torch.randint(0, rows, (batch, steps), generator=torch.Generator().manual_seed(seed))
    probe = torch.randn(batch, steps, dim, dtype=torch.float64)
    got, want = ours(ids), reference(ids)
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    (got * probe).sum().backward()
    (want * probe).sum().backward()
    assert ours.weight.grad is not None and reference.weight.grad is not None
    torch.testing.assert_close(ours.weight.grad, reference.weight.grad, atol=1e-12, rtol=0)
    assert ours.weight.grad[0].abs().max() == 0  # <pad> gets none


def test_a_time_major_gradient_and_deterministic_mode() -> None:
    """A non-contiguous incoming gradient (a time-major consumer) and torch's deterministic mode
    (rnnlab's --deterministic) give the same gradient."""
    reference, ours = _pair(20, 4, seed=1)
    ids = torch.randint(0, 20, (3, 7))
    probe = torch.randn(7, 3, 4, dtype=torch.float64).transpose(0, 1)  # (3, 7, 4), strided
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        ours(ids).backward(probe)
    finally:
        torch.use_deterministic_algorithms(previous)
    reference(ids).backward(probe)
    assert ours.weight.grad is not None and reference.weight.grad is not None
    torch.testing.assert_close(ours.weight.grad, reference.weight.grad, atol=1e-12, rtol=0)


def test_a_frozen_table_takes_no_gradient_and_keeps_hooks() -> None:
    _, ours = _pair(10, 3, seed=2)
    ours.weight.requires_grad_(False)
    seen: list[tuple[int, ...]] = []
    ours.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    out = ours(torch.tensor([[1, 2, 0]]))
    assert not out.requires_grad and seen == [(1, 3, 3)]
