"""The diagonal linear recurrence (models.scan.linear_scan) and minGRU / minLSTM's fused gated
scan: the fused CPU kernel and the chunked parallel scan against the step-by-step reference,
values and gradients, any shapes and strides, with the kernels on and off."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from rnnlab.errors import RnnlabError
from rnnlab.models import ModelSpec, create_model, from_spec, kernels
from rnnlab.models.minrnn import (
    _FusedGatedScan,
    _FusedMinGRULayer,
    sequential_steps,
    signed_scan,
)
from rnnlab.models.scan import fold, linear_scan, reference_scan
from rnnlab.training.device import flush_denormal, num_threads

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
LAYOUTS = ("contiguous", "transposed", "sliced", "broadcast")


@pytest.fixture(autouse=True)
def _built() -> None:
    """The fused path needs the kernels (tests/test_kernels.py fails loudly where they do not
    build although a compiler exists); without them these tests still check the parallel scan."""
    kernels.scan_applies(torch.zeros(1))


def _laid_out(x: Tensor, layout: str) -> Tensor:
    """The same values as x (T, ...) in another memory layout."""
    if layout == "transposed" and x.dim() >= 2:  # batch major underneath
        return x.transpose(0, 1).contiguous().transpose(0, 1)
    if layout == "sliced":  # every other element of a wider tensor along the last dim
        wide = torch.stack([x, torch.full_like(x, float("nan"))], dim=-1)
        return wide[..., 0]
    return x


def _compare(
    got: Callable[[], Tensor], want: Callable[[], Tensor], inputs: list[Tensor], tol: float
) -> None:
    """Values and the gradients of a fixed weighted sum agree; everything finite."""
    out, expected = got(), want()
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, expected, atol=tol, rtol=tol)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    mine = torch.autograd.grad((out * weights).sum(), inputs)
    theirs = torch.autograd.grad((expected * weights).sum(), inputs)
    for a, b in zip(mine, theirs, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.integers(1, 40),
    trailing=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    layout=st.sampled_from(LAYOUTS),
    with_h0=st.booleans(),
    signed=st.booleans(),
    method=st.sampled_from(["auto", "parallel"]),
    kernels_on=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_linear_scan_is_the_recurrence_with_its_gradients(
    steps: int,
    trailing: list[int],
    dtype: torch.dtype,
    layout: str,
    with_h0: bool,
    signed: bool,
    method: str,
    kernels_on: bool,
    seed: int,
) -> None:
    """Any shape (T = 1, no trailing dims, size-1 dims), any layout (batch major, strided,
    a broadcast b), h0 given or not, a in [0, 1] or [−1, 1]; fused and parallel."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RNNLAB_CPU_KERNELS", "auto" if kernels_on else "off")
        _check_linear_scan(steps, trailing, dtype, layout, with_h0, signed, method, seed)


def _check_linear_scan(
    steps: int,
    trailing: list[int],
    dtype: torch.dtype,
    layout: str,
    with_h0: bool,
    signed: bool,
    method: str,
    seed: int,
) -> None:
    gen = torch.Generator().manual_seed(seed)
    shape = (steps, *trailing)
    a = torch.rand(shape, generator=gen, dtype=dtype)
    a = (2 * a - 1 if signed else a).requires_grad_()
    if layout == "broadcast" and trailing:  # b the same at every position of the first dim
        b_source = torch.randn(steps, 1, *trailing[1:], generator=gen, dtype=dtype)
        b_leaf = b_source.requires_grad_()
        b = b_leaf.expand(shape)
    else:
        b_leaf = torch.randn(shape, generator=gen, dtype=dtype).requires_grad_()
        b = _laid_out(b_leaf, layout)
    h0 = torch.randn(shape[1:], generator=gen, dtype=dtype).requires_grad_() if with_h0 else None
    inputs = [a, b_leaf, *([h0] if h0 is not None else [])]
    a_in = _laid_out(a, layout)
    _compare(
        lambda: linear_scan(a_in, b, h0, method=method),  # type: ignore[arg-type]
        lambda: reference_scan(a_in, b, h0),
        inputs,
        TOLERANCE[dtype],
    )


@pytest.mark.parametrize("method", ["auto", "parallel"])
def test_linear_scan_gradcheck(method: str) -> None:
    gen = torch.Generator().manual_seed(1)
    a = (2 * torch.rand(6, 2, 3, generator=gen, dtype=torch.float64) - 1).requires_grad_()
    b = torch.randn(6, 2, 3, generator=gen, dtype=torch.float64).requires_grad_()
    h0 = torch.randn(2, 3, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, h: linear_scan(a, b, h, method=method), (a, b, h0))
    assert torch.autograd.gradcheck(lambda a, b: linear_scan(a, b, method=method), (a, b))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_scan_at_4000_steps_with_signed_transitions(dtype: torch.dtype) -> None:
    """T = 4000, a in [−1, 1] (|a| close to 1 included): fused and parallel stay finite and on
    the reference, values and gradients."""
    gen = torch.Generator().manual_seed(2)
    a = (1 - 2 * torch.rand(4000, 3, generator=gen, dtype=dtype) ** 4).requires_grad_()
    b = torch.randn(4000, 3, generator=gen, dtype=dtype).requires_grad_()
    expected = reference_scan(a, b)
    weights = torch.randn(expected.shape, generator=gen, dtype=dtype)
    want = torch.autograd.grad((expected * weights).sum(), [a, b])
    scale = float(
        expected.detach().abs().max()
    )  # the states reach tens: float32 keeps ~1e-6 of them
    tol = TOLERANCE[dtype] * max(1.0, scale)
    for method in ("auto", "parallel"):
        h = linear_scan(a, b, method=method)  # type: ignore[arg-type]
        assert torch.isfinite(h).all()
        torch.testing.assert_close(h, expected, atol=tol, rtol=tol)
        got = torch.autograd.grad((h * weights).sum(), [a, b])
        for mine, theirs in zip(got, want, strict=True):
            assert torch.isfinite(mine).all()
            torch.testing.assert_close(mine, theirs, atol=tol * 10, rtol=tol * 10)


def test_fold_merges_what_lies_together_and_copies_the_rest() -> None:
    x = torch.zeros(5, 2, 3, 4)
    assert fold([x])[0].shape == (5, 1, 24)  # contiguous: one block
    batch_major = x.permute(1, 0, 2, 3).contiguous().permute(1, 0, 2, 3)
    assert fold([batch_major])[0].stride() == (12, 60, 1)  # (T, 2, 12): rows of 12
    rotated = x.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)  # (2, 3) merge: 6 x 4
    assert fold([rotated])[0].stride() == (24, 1, 6)
    scrambled = x.permute(0, 2, 1, 3).contiguous().permute(0, 2, 1, 3)  # no two dims merge
    (copy,) = fold([scrambled])
    assert copy.shape == (5, 1, 24) and copy.is_contiguous()


def test_linear_scan_refuses_mismatched_inputs() -> None:
    with pytest.raises(RnnlabError, match="differ"):
        linear_scan(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(RnnlabError, match="must match"):
        linear_scan(torch.zeros(3, 2), torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(RnnlabError, match="h0 must be"):
        linear_scan(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(RnnlabError, match="method"):
        linear_scan(torch.zeros(3, 2), torch.zeros(3, 2), method="fast")  # type: ignore[arg-type]
    assert linear_scan(torch.zeros(0, 2), torch.zeros(0, 2)).shape == (0, 2)


# -- minGRU / minLSTM: the gated scan -----------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    steps=st.integers(1, 40),
    batch=st.integers(1, 4),
    hidden=st.integers(1, 9),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    scale=st.sampled_from([0.1, 1.0, 5.0, 30.0]),
    batch_major=st.booleans(),
    signed=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_fused_gated_scan_is_the_recurrence_with_its_gradients(
    steps: int,
    batch: int,
    hidden: int,
    dtype: torch.dtype,
    scale: float,
    batch_major: bool,
    signed: bool,
    seed: int,
) -> None:
    """h_t = a_t h_{t−1} + σ(k_t) g(v_t), gates in the kernel, against the equations step by
    step, for saturated gates too (scale 30), in both layouts and both transition ranges."""
    if not kernels.scan_applies(torch.zeros(1, dtype=dtype)):
        pytest.skip("the fused kernels are not built here")
    gen = torch.Generator().manual_seed(seed)
    gates = (
        scale * torch.randn(batch, steps, 2 * hidden, generator=gen, dtype=dtype)
    ).requires_grad_()
    laid = gates if batch_major else gates.transpose(0, 1).contiguous().transpose(0, 1)
    tol = TOLERANCE[dtype] * max(1.0, scale)
    _compare(
        lambda: _FusedGatedScan.apply(laid.transpose(0, 1), signed),  # (T, B, H)
        lambda: torch.stack(sequential_steps("mingru", laid, signed=signed)),
        [gates],
        tol,
    )


@pytest.mark.parametrize("signed", [False, True])
def test_fused_mingru_layer_split_across_threads(signed: bool) -> None:
    """The whole fused layer (projection, scan, the bias gradient summed in the kernel) on 2
    threads whose blocks split a row (B H = 3 x 50 = 150 recurrences, 75 each), in float64,
    against the projection and the equations by plain autograd."""
    if not kernels.scan_applies(torch.zeros(1)):
        pytest.skip("the fused kernels are not built here")
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(3, 30, 7, generator=gen, dtype=torch.float64).requires_grad_()
    weight = torch.randn(100, 7, generator=gen, dtype=torch.float64).requires_grad_()
    bias = torch.randn(100, generator=gen, dtype=torch.float64).requires_grad_()
    with num_threads(2):
        _compare(
            lambda: _FusedMinGRULayer.apply(x, weight, bias, signed),
            lambda: torch.stack(
                sequential_steps("mingru", F.linear(x, weight, bias), signed=signed), dim=1
            ),
            [x, weight, bias],
            1e-10,
        )


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_gated_scan_saturated_gates_give_no_nan_or_inf(
    signed: bool, dtype: torch.dtype
) -> None:
    """|k| up to 1e4 (σ(k) at 0 and 1), huge and very negative candidates, with subnormals
    flushed as training does: finite values and gradients, and the keep weight still 1 where
    z underflows (h carries over unchanged)."""
    if not kernels.scan_applies(torch.zeros(1)):
        pytest.skip("the fused kernels are not built here")
    k = torch.tensor([-1e4, 1e4, 0.0, 80.0, -80.0, 0.0, -200.0], dtype=dtype)
    v = torch.tensor([-1e4, 1e3, 0.0, -100.0, 5.0, 1.0, 3.0], dtype=dtype)
    gates = torch.stack([k, v], dim=-1)[:, None, :].expand(7, 3, 2).clone().requires_grad_()
    with flush_denormal(True):
        h = _FusedGatedScan.apply(gates, signed)  # (T, 3, 1)
        h.sum().backward()
    assert torch.isfinite(h).all() and torch.isfinite(gates.grad).all()  # type: ignore[arg-type]
    eps = torch.finfo(dtype).eps  # k = −200: z ~ 1e-87, the state kept to the last ulp or two
    torch.testing.assert_close(h[6], h[5], rtol=2 * eps, atol=0)


@pytest.mark.parametrize("signed", [False, True])
def test_fused_gated_scan_gradcheck(signed: bool) -> None:
    if not kernels.scan_applies(torch.zeros(1)):
        pytest.skip("the fused kernels are not built here")
    gates = torch.randn(5, 2, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    gates.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: _FusedGatedScan.apply(x, signed), (gates,))


def test_signed_scan_without_the_kernel_is_the_recurrence() -> None:
    gen = torch.Generator().manual_seed(4)
    k = torch.randn(4000, 2, 3, generator=gen, dtype=torch.float64)
    v = torch.randn(4000, 2, 3, generator=gen, dtype=torch.float64)
    expected = sequential_steps("mingru", torch.cat([k, v], -1).transpose(0, 1), signed=True)
    torch.testing.assert_close(signed_scan(k, v), torch.stack(expected), atol=1e-10, rtol=1e-10)


# -- the models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mingru", "minlstm", "bimingru-max"])
@pytest.mark.parametrize("transition", ["positive", "signed"])
@pytest.mark.parametrize("path", ["fused", "parallel", "kernels off"])
def test_min_models_equal_their_sequential_mode_on_every_path(
    name: str, transition: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logits and every parameter gradient, fast path against step by step (float64), for
    lengths 1 and 0 among longer rows: the fused scan, the parallel one (log space for
    positive transitions, linear space for signed ones) and the one used with the kernels off."""
    monkeypatch.setenv("RNNLAB_CPU_KERNELS", "off" if path == "kernels off" else "auto")
    torch.manual_seed(0)
    model = create_model(
        name, vocab_size=30, num_classes=3, embed_dim=5, hidden_dim=6, dropout=0.0,
        transition=transition, scan="parallel" if path == "parallel" else "auto",
    ).double()  # fmt: skip
    twin = from_spec(ModelSpec.from_dict({**model.spec.to_dict(), "impl": "scratch"})).double()
    twin.load_state_dict(model.state_dict())
    tokens = torch.randint(1, 30, (4, 23), generator=torch.Generator().manual_seed(5))
    lengths, labels = torch.tensor([23, 11, 1, 0]), torch.tensor([0, 1, 2, 0])
    results = []
    for net in (model, twin):
        logits = net(tokens, lengths)
        grads = torch.autograd.grad(net.loss(logits, labels), list(net.parameters()))
        results.append((logits, grads))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-10, rtol=1e-10)
    for mine, theirs in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-10, rtol=1e-10)


def test_signed_transition_follows_its_equation() -> None:
    """One minGRU step by hand with the keep weight 1 − z mapped to 2(1 − z) − 1, and a state
    that does change sign (which a [0, 1] transition with a positive candidate never does)."""
    torch.manual_seed(0)
    model = create_model(
        "mingru", vocab_size=30, num_classes=2, embed_dim=4, hidden_dim=3, transition="signed"
    ).double()
    layer = model.rnn["l0"]
    x = torch.randn(2, 6, 4, dtype=torch.float64)
    with torch.no_grad():
        layer.bias[:3] = 8.0  # z ~ 1: the keep weight ~ −1, the state flips at every step
    _, trace = model.trace(x, torch.tensor([6, 6]))
    h = torch.zeros(2, 3, dtype=torch.float64)
    for t in range(6):
        k, v = layer(x[:, t]).chunk(2, dim=-1)
        z = torch.sigmoid(k)
        candidate = torch.where(v >= 0, v + 0.5, torch.sigmoid(v))
        h = (2 * (1 - z) - 1) * h + z * candidate
        torch.testing.assert_close(trace.hidden[t], h, atol=1e-12, rtol=1e-12)
    assert bool((torch.stack(trace.hidden) < 0).any())


def test_transition_is_refused_where_it_means_nothing() -> None:
    with pytest.raises(RnnlabError, match="transition signed does not apply to gru"):
        create_model("gru", vocab_size=30, num_classes=2, transition="signed")
    with pytest.raises(RnnlabError, match="transition must be positive or signed"):
        create_model("mingru", vocab_size=30, num_classes=2, transition="[-1,1]")
    with pytest.raises(RnnlabError, match="scan must be auto or parallel"):
        create_model("mingru", vocab_size=30, num_classes=2, scan="fused")
