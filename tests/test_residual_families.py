"""Mamba, Hawk and mLSTM (rnnlab.models.residual and its three blocks): the parallel form against
the sequential reference (values and every gradient), streaming, long texts, extreme inputs and
the FLOPs per token. Each family's own equations: tests/test_mamba.py, test_hawk.py,
test_mlstm.py; the registry contract tests (tests/test_models.py) cover the rest."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from rnnlab.errors import RnnlabError
from rnnlab.models import ModelSpec, create_model, from_spec

VOCAB = 30
FAMILIES = ["mamba", "hawk", "mlstm"]
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
TINY = {"embed_dim": 5, "hidden_dim": 4, "num_heads": 2, "state_dim": 3, "dropout": 0.0}


def tiny_model(name: str, dtype: torch.dtype = torch.float64, **changes: Any) -> Any:
    torch.manual_seed(0)
    model = create_model(name, vocab_size=VOCAB, num_classes=3, **{**TINY, **changes})
    return model.to(dtype).train()


def sequential_twin(model: Any) -> Any:
    """The same weights in the step-by-step mode."""
    twin = from_spec(ModelSpec.from_dict({**model.spec.to_dict(), "impl": "scratch"}))
    twin = twin.to(next(model.parameters()).dtype).train()
    twin.load_state_dict(model.state_dict())
    return twin


def batch(lengths: list[int], width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (B, width) and lengths (B,); a length 0 is a row of pure padding."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, VOCAB, (len(lengths), width), generator=gen)
    lengths_t = torch.tensor(lengths, dtype=torch.int64)
    return tokens.masked_fill(torch.arange(width)[None, :] >= lengths_t[:, None], 0), lengths_t


def encoder_parameters(model: Any) -> list[torch.Tensor]:
    """Every parameter forward_embedded uses (all but the embedding table)."""
    return [p for name, p in model.named_parameters() if not name.startswith("embedding")]


def assert_same_outputs_and_gradients(
    model: Any, twin: Any, x: torch.Tensor, lengths: torch.Tensor, tol: float
) -> None:
    """Logits and the gradients of every parameter and of the embedded input agree."""
    outputs, grads = [], []
    labels = torch.arange(x.shape[0]) % 3
    for net in (model, twin):
        inputs = x.detach().clone().requires_grad_(True)
        logits = net.forward_embedded(inputs, lengths)
        assert torch.isfinite(logits).all()
        outputs.append(logits)
        found = torch.autograd.grad(net.loss(logits, labels), [inputs, *encoder_parameters(net)])
        assert all(torch.isfinite(g).all() for g in found)
        grads.append(found)
    torch.testing.assert_close(outputs[0], outputs[1], atol=tol, rtol=tol)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(FAMILIES),
    lengths=st.lists(st.integers(0, 8), min_size=1, max_size=3),
    extra=st.integers(0, 2),
    layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    pooling=st.sampled_from(["last", "mean", "max"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    transition=st.sampled_from(["positive", "signed"]),
)
def test_parallel_form_equals_the_sequential_reference(
    name: str, lengths: list[int], extra: int, layers: int, bidirectional: bool, pooling: str,
    dtype: torch.dtype, transition: str,
) -> None:  # fmt: skip
    """Any lengths (length 1, rows of pure padding, padding columns), layers, directions and
    poolings: logits and every gradient, parallel vs step by step; trace gives the same logits
    and one state per step."""
    transition = transition if name == "mamba" else "positive"  # the others refuse `signed`
    model = tiny_model(name, dtype, num_layers=layers, bidirectional=bidirectional,
                       pooling=pooling, transition=transition)  # fmt: skip
    tokens, lengths_t = batch(lengths, max(max(lengths), 1) + extra)
    x = model.embed(tokens)
    tol = TOLERANCE[dtype]
    assert_same_outputs_and_gradients(model, sequential_twin(model), x, lengths_t, tol)
    logits, trace = model.trace(x, lengths_t)
    torch.testing.assert_close(logits, model.forward_embedded(x, lengths_t), atol=tol, rtol=tol)
    assert len(trace.hidden) == tokens.shape[1] and trace.cell is None


@pytest.mark.parametrize("name", FAMILIES)
def test_streaming_steps_give_the_outputs_of_the_whole_text(name: str) -> None:
    model = tiny_model(name, num_layers=2).eval()
    tokens, lengths = batch([7, 7], 7, seed=2)
    x = model.embed(tokens)
    with torch.no_grad():
        whole, _ = model._encode(x, lengths, sequential=False)  # (B, T, D)
        state = None
        for t in range(7):
            out, state = model.step(x[:, t], state)
            torch.testing.assert_close(out, whole[:, t], atol=1e-12, rtol=1e-12)
    with pytest.raises(RnnlabError, match="unidirectional"):
        tiny_model(name, bidirectional=True).step(x[:, 0])


LONG = {"embed_dim": 2, "hidden_dim": 2, "num_heads": 1, "state_dim": 2, "expand": 1}


@pytest.mark.parametrize("name", FAMILIES)
def test_the_parallel_form_of_a_long_text_is_finite(name: str) -> None:
    """T = 4000 in float32: finite values and gradients (exactness: the slow test below)."""
    model = tiny_model(name, torch.float32, **LONG)
    x = torch.randn(1, 4000, 2, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    logits = model.forward_embedded(x, torch.tensor([4000]))
    (grad_x,) = torch.autograd.grad(logits.square().sum(), [x])
    assert torch.isfinite(logits).all() and torch.isfinite(grad_x).all()


@pytest.mark.long
@pytest.mark.parametrize("name", FAMILIES)
def test_a_long_text_stays_exact(name: str) -> None:
    """T = 4000 (hidden 2): the parallel form equals the reference in float64, gradients too
    (slow: the reference loop takes 4 to 12 s per family on 2 cores)."""
    model = tiny_model(name, **LONG)
    x = torch.randn(1, 4000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([4000])
    assert_same_outputs_and_gradients(model, sequential_twin(model), x, lengths, 1e-10)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("scale", [1e4, 1e-12])
def test_extreme_inputs_give_no_nan_or_inf(name: str, scale: float) -> None:
    """Huge and vanishing embedded inputs, saturated gates: finite values and gradients."""
    model = tiny_model(name, torch.float32, num_layers=2)
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(30.0)  # saturate every gate and step size
    x = scale * torch.randn(2, 50, 5, generator=torch.Generator().manual_seed(0))
    x = x.requires_grad_(True)
    for net in (model, sequential_twin(model)):
        logits = net.forward_embedded(x, torch.tensor([50, 3]))
        (grad_x, *grads) = torch.autograd.grad(logits.square().sum(), [x, *encoder_parameters(net)])
        assert torch.isfinite(logits).all() and torch.isfinite(grad_x).all()
        assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize(("layers", "bidirectional", "embed"), [(1, False, 6), (2, True, 4)])
def test_flops_per_token_match_the_counted_matmuls(
    name: str, layers: int, bidirectional: bool, embed: int
) -> None:
    """ModelSpec.flops_per_token(T) x B x T == every matmul and convolution of the encoder's
    parallel forward pass, as torch's FlopCounterMode counts them."""
    model = tiny_model(name, torch.float32, num_layers=layers, bidirectional=bidirectional,
                       embed_dim=embed)  # fmt: skip
    batch_size, steps = 3, 7
    x = torch.randn(batch_size, steps, embed)
    with FlopCounterMode(display=False) as counter:
        model._encode(x, torch.full((batch_size,), steps), sequential=False)
    flops = model.spec.flops_per_token(steps)
    assert counter.get_total_flops() == flops * batch_size * steps


def test_the_flops_of_the_presets() -> None:
    """The default sizes (D 128, embed 100) by the papers' layer shapes, per token at T = 400."""

    def spec(kind: str) -> ModelSpec:
        return create_model(kind, vocab_size=9, num_classes=2).spec

    project = 2 * 100 * 128
    e, n, r = 256, 16, 8  # expand 2, d_state 16, ⌈128 / 16⌉
    mamba = 2 * (128 * 2 * e + 4 * e + e * (r + 2 * n) + r * e + e * n + e * 128)
    assert spec("mamba").flops_per_token(400) == project + mamba
    assert spec("hawk").flops_per_token(400) == project + 2 * (5 * 128 * 128 + 4 * 128)
    mlstm = 2 * 128 * (4 * 128 + 8) + 2 * 128 * 128 + 4 * 400 * 128
    assert spec("mlstm").flops_per_token(400) == project + mlstm
    assert spec("gru").flops_per_token(400) == spec("gru").recurrent_flops_per_token


@pytest.mark.parametrize("name", FAMILIES)
def test_settings_the_families_do_not_run_are_refused(name: str) -> None:
    with pytest.raises(RnnlabError, match=f"sequence_mode packed does not apply to {name}"):
        create_model(name, vocab_size=VOCAB, num_classes=2, sequence_mode="packed")
    with pytest.raises(RnnlabError, match="transition must be positive or signed"):
        create_model(name, vocab_size=VOCAB, num_classes=2, transition="[0,2]")
    if name != "mamba":
        with pytest.raises(RnnlabError, match=f"transition signed does not apply to {name}"):
            create_model(name, vocab_size=VOCAB, num_classes=2, transition="signed")
