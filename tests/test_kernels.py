"""The fused CPU GRU / RNN / LSTM kernels: exact against PyTorch's layers, and the fallbacks."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import _VF, Tensor

from rnnlab.errors import RnnlabError
from rnnlab.models import create_model, kernels

GATES = {"gru": 3, "rnn": 1, "lstm": 4}
KINDS = list(GATES)


@pytest.fixture(autouse=True)
def _built() -> None:
    """Wherever a C++ compiler exists the kernels must build; without one there is nothing to test
    (rnnlab then runs PyTorch's layers, which the rest of the suite covers)."""
    if kernels.applies("gru", torch.zeros(1)):
        return
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        pytest.skip("no C++ compiler on this machine: the kernels cannot be built")
    pytest.fail("the fused kernels did not build on this machine (see the note on stderr)")


def _weights(kind: str, inputs: int, hidden: int, dtype: torch.dtype, seed: int) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    rows = GATES[kind] * hidden
    shapes = [(rows, inputs), (rows, hidden), (rows,), (rows,)]
    return [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in shapes]


def _torch_layer(kind: str, x: Tensor, weights: list[Tensor]) -> Tensor:
    """PyTorch's own single-layer, batch-first run from a zero state: (B, T, H)."""
    h0 = x.new_zeros(1, x.shape[0], weights[1].shape[1])
    if kind == "lstm":
        return _VF.lstm(x, (h0, h0), weights, True, 1, 0.0, True, False, True)[0]
    run = _VF.gru if kind == "gru" else _VF.rnn_tanh
    return run(x, h0, weights, True, 1, 0.0, True, False, True)[0]


def _output_and_grads(
    fn: Callable[[], Tensor], x: Tensor, weights: list[Tensor]
) -> tuple[Tensor, list[Tensor]]:
    out = fn()
    probe = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    grads = torch.autograd.grad((out * probe).sum(), [x, *weights])
    return out.detach(), list(grads)


@settings(max_examples=36, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    batch=st.integers(1, 5),
    steps=st.integers(1, 9),
    inputs=st.integers(1, 6),
    hidden=st.integers(1, 9),
    seed=st.integers(0, 1000),
)
def test_float64_matches_pytorch_exactly(
    kind: str, batch: int, steps: int, inputs: int, hidden: int, seed: int
) -> None:
    weights = _weights(kind, inputs, hidden, torch.float64, seed)
    x = torch.randn(batch, steps, inputs, dtype=torch.float64, requires_grad=True)
    ours = _output_and_grads(lambda: kernels.run_direction(kind, x, tuple(weights)), x, weights)
    theirs = _output_and_grads(lambda: _torch_layer(kind, x, weights), x, weights)
    torch.testing.assert_close(ours[0], theirs[0], atol=1e-12, rtol=0)
    for name, mine, ref in zip(
        ["x", "w_ih", "w_hh", "b_ih", "b_hh"], ours[1], theirs[1], strict=True
    ):
        torch.testing.assert_close(mine, ref, atol=1e-11, rtol=0, msg=name)


@pytest.mark.parametrize("kind", KINDS)
def test_any_thread_count_splits_the_batch_into_the_same_result(kind: str) -> None:
    """Each thread runs its own block of batch rows; the blocks must tile the batch exactly."""
    weights = _weights(kind, 3, 5, torch.float64, seed=4)
    x = torch.randn(7, 6, 3, dtype=torch.float64, requires_grad=True)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            fn = lambda: kernels.run_direction(kind, x, tuple(weights))  # noqa: E731
            results.append(_output_and_grads(fn, x, weights))
    finally:
        torch.set_num_threads(before)
    for out, grads in results[1:]:
        torch.testing.assert_close(out, results[0][0], atol=1e-12, rtol=0)
        for mine, ref in zip(grads, results[0][1], strict=True):
            torch.testing.assert_close(mine, ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind: str) -> None:
    weights = _weights(kind, 3, 4, torch.float64, seed=1)
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, *w: kernels.run_direction(kind, x, w),
        (x, *weights),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("kind", KINDS)
def test_float32_agrees_with_pytorch_to_rounding(kind: str) -> None:
    """The float kernels use a rational tanh (a few ulp): outputs and gradients stay at 1e-5.

    Weights at PyTorch's init scale (1/sqrt(H)): a chaotic net would amplify any rounding.
    """
    scaled = [0.25 * w.detach().float() for w in _weights(kind, 7, 16, torch.float64, 2)]
    weights = [w.requires_grad_() for w in scaled]
    x = torch.randn(6, 40, 7, requires_grad=True)
    ours = _output_and_grads(lambda: kernels.run_direction(kind, x, tuple(weights)), x, weights)
    theirs = _output_and_grads(lambda: _torch_layer(kind, x, weights), x, weights)
    torch.testing.assert_close(ours[0], theirs[0], atol=1e-5, rtol=0)
    for mine, ref in zip(ours[1], theirs[1], strict=True):
        torch.testing.assert_close(mine, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_gradients_over_a_long_batch_are_as_accurate_as_pytorchs(kind: str) -> None:
    """A bias gradient sums batch x steps terms (here 12,800): against float64, every gradient
    stays within 2e-5 of its largest entry, as PyTorch's layers do (at most 4e-6 here); with
    two threads the LSTM kernel's plain running sum of the bias gradient was at 9e-5."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # one block of rows per thread, as in training
    try:
        _check_long_batch_gradients(kind)
    finally:
        torch.set_num_threads(before)


def _check_long_batch_gradients(kind: str) -> None:
    weights64 = [
        (0.25 * w.detach()).requires_grad_() for w in _weights(kind, 8, 32, torch.float64, 3)
    ]
    x64 = torch.randn(32, 400, 8, dtype=torch.float64, requires_grad=True)
    exact = _output_and_grads(lambda: _torch_layer(kind, x64, weights64), x64, weights64)[1]
    weights = [w.float().requires_grad_() for w in weights64]
    x = x64.detach().float().requires_grad_()
    ours = _output_and_grads(lambda: kernels.run_direction(kind, x, tuple(weights)), x, weights)
    theirs = _output_and_grads(lambda: _torch_layer(kind, x, weights), x, weights)
    for mine, ref, truth in zip(ours[1], theirs[1], exact, strict=True):
        scale = float(truth.abs().max())
        assert float((ref.double() - truth).abs().max()) <= 2e-5 * scale  # PyTorch's own
        assert float((mine.double() - truth).abs().max()) <= 2e-5 * scale


def _tanh_through_rnn(values: Tensor) -> Tensor:
    """tanh(values) as computed by the float RNN kernel (identity input weights, no recurrence)."""
    x = values.view(-1, 1, 1)  # (B, 1, 1): one step, one unit
    weights = (torch.ones(1, 1), torch.zeros(1, 1), torch.zeros(1), torch.zeros(1))
    with torch.no_grad():
        return kernels.run_direction("rnn", x, weights).view(-1)


def test_float_tanh_is_accurate_saturates_and_keeps_nan() -> None:
    grid = torch.linspace(-30, 30, 600_001)
    torch.testing.assert_close(_tanh_through_rnn(grid), torch.tanh(grid), atol=5e-7, rtol=0)
    special = _tanh_through_rnn(torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0]))
    assert torch.isnan(special[0])
    assert special[1:].tolist() == [1.0, -1.0, 0.0]


def test_lstm_without_an_input_gradient_still_gives_the_weight_gradients() -> None:
    """A first layer over frozen embeddings: x needs no gradient, the weights still do."""
    weights = _weights("lstm", 3, 4, torch.float64, seed=3)
    x = torch.randn(3, 5, 3, dtype=torch.float64)
    ours = kernels.run_direction("lstm", x, tuple(weights))
    theirs = _torch_layer("lstm", x, weights)
    mine_all = torch.autograd.grad(ours.sum(), weights)
    for mine, ref in zip(mine_all, torch.autograd.grad(theirs.sum(), weights), strict=True):
        torch.testing.assert_close(mine, ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_any_input_and_gradient_layout_gives_the_same_result(kind: str) -> None:
    """The layers take x (B, T, In) and d_out (B, T, H) as views of any layout: batch first,
    time major (a stacked layer's input is the previous layer's time-major output), or with a
    non-unit stride along the features."""
    weights = _weights(kind, 3, 4, torch.float64, seed=5)
    x = torch.randn(5, 7, 3, dtype=torch.float64)
    probe = torch.randn(5, 7, 4, dtype=torch.float64)

    def run(x: Tensor, probe: Tensor) -> list[Tensor]:
        x = x.detach().requires_grad_()
        out = kernels.run_direction(kind, x, tuple(weights))
        grads = torch.autograd.grad(out, [x, *weights], probe)
        return [out.detach(), *grads]

    reference = run(x, probe)
    time_major = x.transpose(0, 1).contiguous().transpose(0, 1)  # (B, T, In), strides of (T, B, In)
    feature_strided = torch.stack([probe, probe], dim=-1)[..., 0]  # stride 2 along H
    layouts = [
        run(time_major, probe),
        run(x, probe.transpose(0, 1).contiguous().transpose(0, 1)),
        run(x, feature_strided),
    ]
    for got in layouts:
        for mine, ref in zip(got, reference, strict=True):
            torch.testing.assert_close(mine, ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_the_step_gemm_fallback_gives_the_same_result(kind: str) -> None:
    """Where torch exports no BLAS sgemm_ / dgemm_, each step's GEMM runs as at::addmm: the
    same result as the direct BLAS call, float64 and float32."""
    for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        weights = _weights(kind, 3, 6, dtype, seed=7)
        x = torch.randn(4, 9, 3, dtype=dtype, requires_grad=True)

        def run(x: Tensor = x, weights: list[Tensor] = weights) -> Tensor:
            return kernels.run_direction(kind, x, tuple(weights))

        direct = _output_and_grads(run, x, weights)
        kernels._loaded().set_direct_blas(False)
        try:
            fallback = _output_and_grads(run, x, weights)
        finally:
            kernels._loaded().set_direct_blas(True)
        for mine, ref in zip([fallback[0], *fallback[1]], [direct[0], *direct[1]], strict=True):
            torch.testing.assert_close(mine, ref, atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize(
    ("name", "layers"),
    [
        ("gru", 1),
        ("rnn", 1),
        ("bigru-max", 1),
        ("lstm", 1),
        ("bilstm-max", 1),
        ("gru", 2),
        ("bilstm-max", 2),
    ],
)
def test_models_use_the_kernels_and_match_pytorch(
    name: str, layers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    model = create_model(
        name,
        vocab_size=50,
        num_classes=2,
        embed_dim=8,
        hidden_dim=12,
        num_layers=layers,
        dropout=0.0,  # the same masks on both runs: none
    ).train()
    tokens = torch.randint(1, 50, (4, 11))
    lengths = torch.tensor([11, 3, 7, 1])
    calls: list[str] = []
    original = kernels.run_direction
    monkeypatch.setattr(kernels, "run_direction", lambda *a: calls.append(a[0]) or original(*a))
    params = [p for p in model.parameters() if p.requires_grad]

    def logits_and_grads() -> tuple[Tensor, list[Tensor]]:
        logits = model(tokens, lengths)
        return logits.detach(), list(torch.autograd.grad(logits[:, 0].sum(), params))

    fast, fast_grads = logits_and_grads()
    assert calls and set(calls) == {model.spec.kind}
    monkeypatch.setenv("RNNLAB_CPU_KERNELS", "off")
    calls.clear()
    reference, reference_grads = logits_and_grads()
    assert calls == []
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=0)
    for mine, ref in zip(fast_grads, reference_grads, strict=True):
        torch.testing.assert_close(mine, ref, atol=1e-5, rtol=1e-4)


def test_other_dtypes_and_devices_keep_pytorch() -> None:
    assert all(kernels.applies(kind, torch.zeros(1)) for kind in KINDS)
    assert not kernels.applies("gru", torch.zeros(1, dtype=torch.bfloat16))
    assert not kernels.applies("lstm", torch.zeros(1, dtype=torch.float16))
    assert not kernels.applies("gru", torch.zeros(1, device="meta"))


def test_mode_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNLAB_CPU_KERNELS", "off")
    assert not kernels.applies("gru", torch.zeros(1))
    monkeypatch.setenv("RNNLAB_CPU_KERNELS", "fast")
    with pytest.raises(RnnlabError, match="RNNLAB_CPU_KERNELS must be auto, on or off"):
        kernels.mode()


@pytest.fixture
def failing_build(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine where the compiler is missing: the build raises, nothing is cached."""
    from torch.utils import cpp_extension

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Error building extension\ng++: command not found")

    monkeypatch.setattr(cpp_extension, "load", broken)
    kernels._extension.cache_clear()
    yield
    kernels._extension.cache_clear()


@pytest.mark.parametrize(
    ("capability", "isas"),
    [
        ("AVX512", ("avx512", "avx2", "base")),
        ("AVX2", ("avx2", "base")),
        ("DEFAULT", ("base",)),
        ("ZVECTOR", ("base",)),
    ],
)
def test_builds_follow_the_isa_torch_dispatches_to(
    capability: str, isas: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert kernels.cpu_isas() == isas
    assert kernels.isa_order() == isas  # widest first, then each narrower one as a fallback


def test_one_build_can_be_chosen_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """RNNLAB_KERNEL_ISA picks one of this CPU's builds (the known-answer tests run on each)."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setenv("RNNLAB_KERNEL_ISA", " Base ")
    assert kernels.isa_order() == ("base",)
    monkeypatch.setenv("RNNLAB_KERNEL_ISA", "avx512")  # not this CPU's
    with pytest.raises(RnnlabError, match="RNNLAB_KERNEL_ISA must be one of this CPU's builds"):
        kernels.isa_order()
    monkeypatch.setenv("RNNLAB_KERNEL_ISA", "")
    assert kernels.isa_order() == ("avx2", "base")


def test_each_build_is_its_own_extension_in_its_own_folder() -> None:
    names = {isa: kernels._flags(isa)[0] for isa in kernels.ISAS}
    assert len(set(names.values())) == len(kernels.ISAS)
    assert all(isa in name for isa, name in names.items())
    assert "-mavx512f" in kernels._flags("avx512")[1]
    assert "-mavx2" in kernels._flags("avx2")[1] and "-mavx512f" not in kernels._flags("avx2")[1]
    assert not any(flag.startswith("-mavx") for flag in kernels._flags("base")[1])


def test_a_wider_build_that_fails_falls_back_to_the_next_with_one_note(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An assembler too old for AVX-512, say: the avx2 build runs, and rnnlab says so once."""
    monkeypatch.setenv("RNNLAB_KERNELS_DIR", str(tmp_path))
    monkeypatch.setattr(kernels, "isa_order", lambda: ("avx512", "avx2", "base"))
    tried: list[str] = []
    working = kernels._extension()

    def build(isa: str) -> object:
        tried.append(isa)
        if isa == "avx512":
            raise RuntimeError("Error building extension\nError: no such instruction: vfmadd")
        return working

    monkeypatch.setattr(kernels, "build", build)
    kernels._extension.cache_clear()
    try:
        assert kernels._extension() is working
        assert kernels.applies("gru", torch.zeros(1))
    finally:
        kernels._extension.cache_clear()
    assert tried == ["avx512", "avx2"]
    err = capsys.readouterr().err
    assert err.count("the avx512 build of the fused CPU kernels failed") == 1
    assert "no such instruction" in err and "using the avx2 build" in err


def test_the_default_build_is_the_first_that_builds() -> None:
    assert kernels.loaded_isa() == kernels.isa_order()[0]


def test_a_rebuilt_extension_still_names_its_isa(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's JIT builder renames a module it builds twice in one process (name_v1, ...)."""
    renamed = ModuleType("rnnlab_recurrence_avx512_v2")
    monkeypatch.setattr(kernels, "_extension", lambda: renamed)
    assert kernels.loaded_isa() == "avx512"


def test_auto_falls_back_with_one_note(
    failing_build: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("RNNLAB_KERNELS_DIR", str(tmp_path))
    assert not kernels.applies("gru", torch.zeros(1))
    assert not kernels.applies("rnn", torch.zeros(1))
    err = capsys.readouterr().err
    assert err.count("fused CPU kernels unavailable (g++: command not found)") == 1
    model = create_model("gru", vocab_size=20, num_classes=2, embed_dim=4, hidden_dim=5)
    assert model(torch.tensor([[1, 2, 3]]), torch.tensor([3])).shape == (1, 2)


def test_on_mode_fails_with_one_line(
    failing_build: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RNNLAB_KERNELS_DIR", str(tmp_path))
    monkeypatch.setenv("RNNLAB_CPU_KERNELS", "on")
    with pytest.raises(RnnlabError) as info:
        kernels.applies("gru", torch.zeros(1))
    message = str(info.value)
    assert "\n" not in message
    assert "cannot build the fused CPU kernels (g++: command not found)" in message


def test_a_stale_build_lock_left_by_a_killed_process_is_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = tmp_path / "lock"
    lock.touch()
    assert not kernels.clear_stale_lock(tmp_path)  # a fresh lock: a build may be running
    (tmp_path / "ext.so").touch()
    old = time.time() - kernels.STALE_LOAD_S - 5
    os.utime(lock, (old, old))
    assert kernels.clear_stale_lock(tmp_path) and not lock.exists()
    assert "stale kernel build lock" in capsys.readouterr().err
    (tmp_path / "ext.so").unlink()
    lock.touch()
    os.utime(lock, (old, old))  # no build yet: a minute-old lock may be a build in progress
    assert not kernels.clear_stale_lock(tmp_path) and lock.exists()
