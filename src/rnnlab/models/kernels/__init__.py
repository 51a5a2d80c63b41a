"""Fused CPU recurrences for GRU, vanilla RNN and LSTM layers, and the fused scans of every
diagonal linear recurrence (minGRU, minLSTM, `models.scan.linear_scan`), compiled on first use.

PyTorch's CPU GRU and RNN run op by op with unvectorised tanh / sigmoid, at a quarter of the
machine's matmul speed; its LSTM runs oneDNN, whose layer took 1.15x rnnlab's LSTM kernel's
time with subnormals flushed, and twice it when another process shares the cores.
`recurrence.cpp` runs one layer direction as one GEMM plus one fused pass per time step, with a
hand-written backward, each thread on its own block of batch rows (docs/BENCHMARKS.md has the
figures; benchmarks/bench_kernels_ab.py measures them against PyTorch's layers). `scan.cpp`
holds the scans of h_t = a_t h_{t−1} + b_t, forward and reverse-scan backward, any strides:
the plain one (`models.scan.linear_scan`) and minGRU / minLSTM's with the gates inside
(`models.minrnn`). Both files make one extension, compiled with torch's JIT extension builder
(needs a C++ compiler and ninja) into $RNNLAB_KERNELS_DIR, else <cache>/kernels: one build per
instruction set (ISAS), the widest this CPU has first, falling back to a narrower one if that
fails to build.

RNNLAB_CPU_KERNELS: `auto` (default: use them if they build, else say so once and fall back to
PyTorch's layers and the parallel scans), `on` (fail if they cannot be built), `off` (never use
them).
RNNLAB_KERNEL_ISA: one build to use instead of the widest (`avx2` or `base` on an AVX-512 CPU,
`base` on an AVX2 one): the known-answer tests are checked on every build this way.
Results agree with PyTorch's layers to float rounding (tanh to a few ulp): tests/test_kernels.py.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from rnnlab.errors import RnnlabError
from rnnlab.models.cells import Weights
from rnnlab.paths import cache_dir

SOURCES = tuple(Path(__file__).with_name(name) for name in ("recurrence.cpp", "scan.cpp"))
"""One extension, two translation units (ninja compiles them side by side)."""
KINDS = ("gru", "rnn", "lstm", "mingru", "minlstm")
"""The families whose layers run on the kernels on the CPU (mingru, minlstm: their scan)."""
MODES = ("auto", "on", "off")


def mode() -> str:
    value = os.environ.get("RNNLAB_CPU_KERNELS", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise RnnlabError(
            f"RNNLAB_CPU_KERNELS must be auto, on or off (got {value!r}); unset it for auto"
        )
    return value


def kernels_dir() -> Path:
    """Where compiled kernels live: $RNNLAB_KERNELS_DIR, else <cache>/kernels, per torch."""
    root = Path(os.environ.get("RNNLAB_KERNELS_DIR", cache_dir() / "kernels"))
    return root / f"torch-{torch.__version__.replace('+', '-')}"


ISAS = ("avx512", "avx2", "base")
"""The builds, widest first. Each is its own extension (own name, own folder under kernels_dir),
so several can be cached side by side and even loaded in one process (benchmarks A/B them)."""

_ISA_FLAGS = {
    "avx512": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma"],
    "avx2": ["-mavx2", "-mfma"],
    "base": [],
}


def cpu_isas() -> tuple[str, ...]:
    """The builds this CPU can run, widest first, per the ISA PyTorch itself dispatches to
    (torch.backends.cpu.get_cpu_capability(): AVX512 means avx512f/bw/dq/vl are there)."""
    capability = torch.backends.cpu.get_cpu_capability().lower()
    if capability.startswith("avx512"):
        return ISAS
    if capability.startswith("avx2"):
        return ISAS[1:]
    return ISAS[2:]


def isa_order() -> tuple[str, ...]:
    """The builds to try, best first: the widest this CPU has, then the narrower ones, or only
    the one $RNNLAB_KERNEL_ISA names. On the project's AVX-512 Xeon the avx512 build ran the
    layers 0-3% faster than the avx2 one, with bit-identical results
    (benchmarks/bench_kernels_ab.py --what isa; docs/BENCHMARKS.md)."""
    here = cpu_isas()
    chosen = os.environ.get("RNNLAB_KERNEL_ISA", "").strip().lower()
    if not chosen:
        return here
    if chosen not in here:
        raise RnnlabError(
            f"RNNLAB_KERNEL_ISA must be one of this CPU's builds, {', '.join(here)} "
            f"(got {chosen!r}); unset it for the widest"
        )
    return (chosen,)


def _flags(isa: str) -> tuple[str, list[str], list[str]]:
    """Extension name, compiler and linker flags for one ISA and this torch build.

    OpenMP where torch's own thread pool is OpenMP (the extension then shares torch's libgomp);
    -fno-trapping-math lets the compiler vectorise the gate loops' clamps (torch builds with it
    too). The GEMMs are torch's (MKL / oneDNN) whatever the ISA: it only decides the gate loops.
    """
    openmp = "parallel backend: OpenMP" in torch.__config__.parallel_info()
    cflags = ["-O3", "-fno-trapping-math", *_ISA_FLAGS[isa]]
    name = f"rnnlab_recurrence_{isa}"
    return name, cflags + (["-fopenmp"] if openmp else []), ["-fopenmp"] if openmp else []


def _find_ninja() -> None:
    """Put the `ninja` wheel's binary on PATH when the environment was not activated."""
    if shutil.which("ninja") is None:
        try:
            import ninja  # optional: only where the environment was not activated

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError:  # the build then fails with a clear "ninja is required"
            pass


def _build_failure(exc: Exception) -> str:
    """The telling line of a failed build ("c++: not found", the first compiler error)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    telling = [
        line
        for line in lines
        if re.search(r"error|not found|no such file|required", line, re.IGNORECASE)
        and not line.startswith(("Error building extension", "ninja: build stopped"))
    ]
    return (telling or lines or [type(exc).__name__])[0][:200]


STALE_BUILD_S = 900.0
"""A build lock older than this is stale: a build takes about a minute, 3 on a busy machine."""
STALE_LOAD_S = 60.0
"""With the extension already built, PyTorch's loader holds the lock for a moment only."""


def clear_stale_lock(folder: Path) -> bool:
    """Remove the build lock a killed process left in `folder` (PyTorch's loader takes it on
    every start, even with the extension built, and a later process would wait on it for ever).
    A lock is stale when older than STALE_BUILD_S, or than STALE_LOAD_S once a build exists."""
    lock = folder / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return False
    built = any(folder.glob("*.so"))
    if age < (STALE_LOAD_S if built else STALE_BUILD_S):
        return False
    lock.unlink(missing_ok=True)
    print(
        f"rnnlab: note: removed a stale kernel build lock ({lock}, {age:.0f} s old) that a "
        "killed process left",
        file=sys.stderr,
    )
    return True


def build(isa: str) -> ModuleType:
    """Compile (once per ISA, cached on disk) and load the kernels built for `isa`; raises
    when they cannot be built here."""
    from torch.utils import cpp_extension  # heavy (setuptools), wanted only to build kernels

    name, cflags, ldflags = _flags(isa)
    folder = kernels_dir() / name
    _find_ninja()
    folder.mkdir(parents=True, exist_ok=True)
    clear_stale_lock(folder)
    quiet = logging.getLogger("torch.utils.cpp_extension")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # torch warns at length about compilers it did not expect
    try:
        return cpp_extension.load(
            name,
            [str(source) for source in SOURCES],
            extra_cflags=cflags,
            extra_ldflags=ldflags,
            build_directory=str(folder),
            verbose=False,
        )
    finally:
        quiet.setLevel(level)


@functools.cache
def _extension() -> ModuleType | None:
    """The compiled module for the best ISA that builds here, or None (auto mode) when none does.

    A wider build that fails (an old assembler, say) falls back to the next one with a note.
    """
    order = isa_order()
    first = kernels_dir() / _flags(order[0])[0]
    if not any(first.glob("*.so")):
        print(
            f"rnnlab: compiling the fused CPU kernels (GRU, RNN, LSTM, scans) into {first} "
            "(once, about a minute)",
            file=sys.stderr,
            flush=True,
        )
    reasons: list[str] = []
    for isa in order:
        try:
            ext = build(isa)
        except Exception as exc:  # compiler, ninja or headers missing; a broken toolchain
            reasons.append(_build_failure(exc))
            continue
        if reasons:
            print(
                f"rnnlab: note: the {order[0]} build of the fused CPU kernels failed "
                f"({reasons[0]}); using the {isa} build",
                file=sys.stderr,
            )
        return ext
    reason = reasons[0]
    if mode() == "on":
        raise RnnlabError(
            f"cannot build the fused CPU kernels ({reason}); install a C++ compiler "
            "(g++) or set RNNLAB_CPU_KERNELS=auto"
        )
    print(
        f"rnnlab: note: fused CPU kernels unavailable ({reason}); using PyTorch's "
        "GRU/RNN/LSTM layers instead (slower). RNNLAB_CPU_KERNELS=off hides this note",
        file=sys.stderr,
    )
    return None


def loaded_isa() -> str | None:
    """Which build the models run on (None: PyTorch's layers)."""
    ext = _extension()
    if ext is None:
        return None
    # torch's JIT builder appends _v1, _v2, ... when one process builds a name twice differently
    found = re.fullmatch(r"rnnlab_recurrence_([a-z0-9]+?)(_v\d+)?", ext.__name__)
    return found.group(1) if found else None


def applies(kind: str, x: Tensor) -> bool:
    """Whether one direction of `kind` over x runs on the fused kernels."""
    return (
        kind in KINDS
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and mode() != "off"
        and _extension() is not None
    )


def scan_applies(x: Tensor) -> bool:
    """Whether a scan over x (any family's) runs on the fused kernels: float32 / float64 on the
    CPU, the kernels not switched off and built."""
    return applies("mingru", x)


def prepare(kind: str, device: torch.device) -> None:
    """Compile (or load) the kernels a `kind` model on `device` will use, before training starts,
    so a build failure under RNNLAB_CPU_KERNELS=on leaves nothing half-made."""
    applies(kind, torch.empty(0, device=device))


_chosen: list[ModuleType] = []  # set by `using` (benchmarks), else the default build


@contextlib.contextmanager
def using(ext: ModuleType) -> Iterator[None]:
    """Run the kernels of one given build (from `build(isa)`) inside the block, forward and
    backward: an A/B of builds in one process (benchmarks/bench_kernels_ab.py)."""
    _chosen.append(ext)
    try:
        yield
    finally:
        _chosen.pop()


def _loaded() -> ModuleType:
    """The compiled module; only called once `applies` has said it exists."""
    ext = _chosen[-1] if _chosen else _extension()
    assert ext is not None
    return ext


def loaded() -> ModuleType:
    """The compiled module (the `using` one inside that block); call `applies` or
    `scan_applies` first: this one assumes the kernels are there."""
    return _loaded()


# Each layer direction is one autograd Function, input projection included: x (B, T, In) ->
# out (B, T, H), a view of the kernel's time-major (T, B, H) output. The input projection runs
# time major, (T*B, In) @ W_ih^T, so each step's rows lie together for the kernel; the biases
# are added in the kernel's gate pass and their gradients summed there; and the states step
# t read are out[t - 1], one block, so the recurrent weight gradient is one GEMM, no copy.


def _input_projection(x: Tensor, w_ih: Tensor) -> tuple[Tensor, Tensor]:
    """x (B, T, In) -> x_tm (T*B, In), time major, and x W_ih^T (T, B, G*H), no bias."""
    batch, steps, inputs = x.shape
    x_tm = x.transpose(0, 1).reshape(steps * batch, inputs)  # free if x is a time-major view
    return x_tm, torch.mm(x_tm, w_ih.t()).view(steps, batch, -1)


def _input_projection_backward(
    ctx: Any, d_gi: Tensor, x_tm: Tensor, w_ih: Tensor
) -> tuple[Tensor | None, Tensor]:
    """d_x (B, T, In) and d_w_ih (G*H, In) from d_gi (T, B, G*H), the gradient of x W_ih^T."""
    steps, batch, _ = d_gi.shape
    d_flat = d_gi.view(steps * batch, -1)  # (T*B, G*H)
    d_x = None
    if ctx.needs_input_grad[0]:
        d_x = torch.mm(d_flat, w_ih).view(steps, batch, -1).transpose(0, 1)  # (B, T, In)
    d_w_ih = torch.mm(x_tm.t(), d_flat).t()  # (G*H, In); MKL is faster this way round
    return d_x, d_w_ih


def _unit_stride(d_out: Tensor) -> Tensor:
    """d_out (B, T, H) as the kernels read it: any batch / time strides, unit stride along H."""
    return d_out if d_out.stride(-1) == 1 else d_out.contiguous()


class _GRULayer(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor
    ) -> Tensor:
        x_tm, gates = _input_projection(x, w_ih)  # gates (T, B, 3H)
        w_hh = w_hh.contiguous()
        out, y_n = _loaded().gru_forward(gates, w_hh, b_ih.contiguous(), b_hh.contiguous())
        ctx.save_for_backward(x_tm, w_ih, w_hh, out, gates, y_n)  # gates now r, z, n
        return out.transpose(0, 1)  # (B, T, H)

    @staticmethod
    def backward(ctx: Any, d_out: Tensor) -> tuple[Tensor | None, Tensor, Tensor, Tensor, Tensor]:
        x_tm, w_ih, w_hh, out, gates, y_n = ctx.saved_tensors
        d_gi, d_w_hh, d_b_ih, d_b_hh = _loaded().gru_backward(
            _unit_stride(d_out), w_hh, out, gates, y_n
        )
        d_x, d_w_ih = _input_projection_backward(ctx, d_gi, x_tm, w_ih)
        return d_x, d_w_ih, d_w_hh, d_b_ih, d_b_hh


class _RNNLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, w_ih: Tensor, w_hh: Tensor, bias: Tensor) -> Tensor:
        x_tm, gi = _input_projection(x, w_ih)  # gi (T, B, H)
        w_hh = w_hh.contiguous()
        out = _loaded().rnn_forward(gi, w_hh, bias.contiguous())  # bias = b_ih + b_hh
        ctx.save_for_backward(x_tm, w_ih, w_hh, out)
        return out.transpose(0, 1)  # (B, T, H)

    @staticmethod
    def backward(ctx: Any, d_out: Tensor) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
        x_tm, w_ih, w_hh, out = ctx.saved_tensors
        d_gi, d_w_hh, d_bias = _loaded().rnn_backward(_unit_stride(d_out), w_hh, out)
        d_x, d_w_ih = _input_projection_backward(ctx, d_gi, x_tm, w_ih)
        return d_x, d_w_ih, d_w_hh, d_bias


class _LSTMLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, w_ih: Tensor, w_hh: Tensor, bias: Tensor) -> Tensor:
        x_tm, gates = _input_projection(x, w_ih)  # gates (T, B, 4H)
        w_hh = w_hh.contiguous()
        out, cell = _loaded().lstm_forward(gates, w_hh, bias.contiguous())  # bias = b_ih + b_hh
        ctx.save_for_backward(x_tm, w_ih, w_hh, out, gates, cell)  # gates now i, f, g, o
        return out.transpose(0, 1)  # (B, T, H)

    @staticmethod
    def backward(ctx: Any, d_out: Tensor) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
        x_tm, w_ih, w_hh, out, gates, cell = ctx.saved_tensors
        d_gi, d_w_hh, d_bias = _loaded().lstm_backward(_unit_stride(d_out), w_hh, out, gates, cell)
        d_x, d_w_ih = _input_projection_backward(ctx, d_gi, x_tm, w_ih)
        return d_x, d_w_ih, d_w_hh, d_bias


def run_direction(kind: str, x: Tensor, weights: Weights) -> Tensor:
    """One layer direction forward in time from a zero state: x (B, T, In) -> (B, T, H)."""
    w_ih, w_hh, b_ih, b_hh = weights
    if kind == "gru":
        return _GRULayer.apply(x, w_ih, w_hh, b_ih, b_hh)
    if kind == "lstm":
        return _LSTMLayer.apply(x, w_ih, w_hh, b_ih + b_hh)
    return _RNNLayer.apply(x, w_ih, w_hh, b_ih + b_hh)
