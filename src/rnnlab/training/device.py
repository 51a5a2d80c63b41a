"""Device choice, seeding, determinism, thread count and float modes for a training run."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from rnnlab.errors import RnnlabError


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must be available."""
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise RnnlabError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RnnlabError("CUDA is not available on this machine; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise RnnlabError(f"there is no {name} (this machine has {count} GPUs); use cuda:0")
    elif device.type == "mps" and not _mps_available():
        raise RnnlabError("MPS is not available on this machine; use --device cpu or auto")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise RnnlabError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (for timings); nothing to do on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


EVAL_BATCH_CPU, EVAL_BATCH_GPU = 256, 1024


def eval_batch_size(device: torch.device) -> int:
    """Examples per evaluation batch: 256 on the CPU (and MPS), 1024 on CUDA, where a batch of
    256 leaves most of the GPU idle and memory is plentiful (no gradients are kept)."""
    return EVAL_BATCH_GPU if device.type == "cuda" else EVAL_BATCH_CPU


def use_amp(requested: bool, device: torch.device) -> bool:
    """bf16 autocast runs on CUDA only; elsewhere a request is ignored with a note on stderr."""
    if requested and device.type != "cuda":
        print(
            f"rnnlab: note: --amp needs a CUDA device; training in float32 on {device}",
            file=sys.stderr,
        )
        return False
    return requested


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA when `amp` (see `use_amp`); elsewhere nothing."""
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of `model`'s parameters (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
KEEP_UP_TO = 1 << 30  # bytes


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc malloc keep freed blocks of up to 1 GiB for reuse (once per process).

    By default glibc hands every block over ~32 MiB back to the OS on free, so each training
    step page-faults its activations in afresh (a quarter of the CPU time went to the kernel).
    Keeping them makes CPU training of the LSTM 1.5-1.75x faster and the GRU up to 1.3x
    (docs/BENCHMARKS.md) with unchanged results; the process keeps its peak memory.
    Linux/glibc only; RNNLAB_KEEP_FREED_MEMORY=0 leaves malloc alone. Returns whether the
    setting was applied.
    """
    if not sys.platform.startswith("linux") or os.environ.get("RNNLAB_KEEP_FREED_MEMORY") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(
            libc.mallopt(M_MMAP_THRESHOLD, KEEP_UP_TO)
            and libc.mallopt(M_TRIM_THRESHOLD, KEEP_UP_TO)
        )
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False


# ----- subnormal floats ------------------------------------------------------------------------
FLUSH_ENV = "RNNLAB_FLUSH_DENORMAL"
"""`0` (or off/false/no) turns the flush off everywhere, whatever a config says."""
SMALLEST_NORMAL_FLOAT32 = 1.1754944e-38


def flush_wanted(setting: bool = True) -> bool:
    """The resolved flush setting: the config's, unless $RNNLAB_FLUSH_DENORMAL turns it off."""
    value = os.environ.get(FLUSH_ENV, "").strip().lower()
    return setting and value not in ("0", "off", "false", "no")


def denormals_flushed() -> bool:
    """Whether the calling thread flushes subnormal floats to zero (measured, not remembered:
    PyTorch has no getter). A float32 subnormal times 1 is 0 under FTZ/DAZ, else itself."""
    return float(torch.tensor([SMALLEST_NORMAL_FLOAT32 / 8]) * 1.0) == 0.0


@functools.cache
def _openmp_parallel() -> Any:
    """libgomp's GOMP_parallel from the copy torch's own thread pool runs on, or None.

    MXCSR, the register holding the flush mode, is per thread, and torch.set_flush_denormal
    sets only the caller's: worker threads of an existing pool keep computing on subnormals.
    Running it once inside an OpenMP parallel region of the same runtime reaches every thread.
    """
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps if "libgomp" in line})
        parallel = ctypes.CDLL(paths[0]).GOMP_parallel
    except (OSError, IndexError, AttributeError):  # not Linux, or another OpenMP runtime
        return None
    parallel.restype = None
    parallel.argtypes = [_REGION, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    return parallel


_REGION = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def set_flush_denormal_all_threads(on: bool) -> bool:
    """torch.set_flush_denormal(on) on the calling thread and on every thread of torch's
    OpenMP pool; False where the CPU has no such mode (nothing is changed then)."""
    if not torch.set_flush_denormal(on):
        return False
    parallel = _openmp_parallel()
    if parallel is not None:
        region = _REGION(lambda _: torch.set_flush_denormal(on))  # runs once per pool thread
        parallel(region, None, torch.get_num_threads(), 0)
    return True


@contextmanager
def flush_denormal(enabled: bool = True) -> Iterator[bool]:
    """Flush subnormal floats to zero on the CPU for the duration, then restore the caller's
    setting (read on the calling thread, restored on it and on the pool's threads).

    Vanishing gradients underflow below float32's smallest normal number (1.2e-38), and Intel
    cores compute on such subnormals many times slower (a max_len-400 LSTM step: 540 ms
    without, 74 ms with). Results change only where a value was that small. Yields whether
    subnormals are flushed inside (False where the CPU has no flush mode).
    """
    before = denormals_flushed()
    if not enabled:
        if before:
            set_flush_denormal_all_threads(False)
        try:
            yield False
        finally:
            if before:
                set_flush_denormal_all_threads(True)
        return
    applied = set_flush_denormal_all_threads(True)
    try:
        yield applied
    finally:
        if applied:
            set_flush_denormal_all_threads(before)


@contextmanager
def num_threads(threads: int | None) -> Iterator[None]:
    """torch.set_num_threads(threads) for the duration (None changes nothing), then back."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----- a training run ---------------------------------------------------------------------------
@contextmanager
def runtime(*, seed: int, deterministic: bool, threads: int | None) -> Iterator[None]:
    """Seed, set determinism and the CPU thread count; restore the global flags afterwards."""
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    old_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    old_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        if deterministic:
            # cuBLAS needs this before its first deterministic call; harmless elsewhere.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        seed_everything(seed)
        with num_threads(threads):
            yield
    finally:
        torch.use_deterministic_algorithms(old_deterministic, warn_only=old_warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old_cudnn


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what the platform says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, Any]:
    """What speed figures depend on: CPU model, the ISA PyTorch dispatches to, threads, whether
    this thread flushes subnormals, torch's version. Every benchmark prints these."""
    return {
        "cpu": cpu_model(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "flush_denormal": denormals_flushed(),
        "torch": torch.__version__,
    }


def describe_machine() -> str:
    """`Intel(R) Xeon(R) Processor, ISA AVX512, 2 threads, subnormals flushed, torch 2.13.0`."""
    m = machine_facts()
    flush = "subnormals flushed" if m["flush_denormal"] else "subnormals not flushed"
    return f"{m['cpu']}, ISA {m['isa']}, {m['threads']} threads, {flush}, torch {m['torch']}"


def describe_device(device: torch.device) -> str:
    """`cpu (2 threads)`, `cuda:0 (NVIDIA H100)`, ... for summaries and logs."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)
