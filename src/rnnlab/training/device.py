"""Device choice, seeding, determinism and thread count for a training run."""

from __future__ import annotations

import ctypes
import functools
import os
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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


def use_amp(requested: bool, device: torch.device) -> bool:
    """bf16 autocast runs on CUDA only; elsewhere a request is ignored with a note on stderr."""
    if requested and device.type != "cuda":
        print(
            f"rnnlab: note: --amp needs a CUDA device; training in float32 on {device}",
            file=sys.stderr,
        )
        return False
    return requested


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


@contextmanager
def runtime(*, seed: int, deterministic: bool, threads: int | None) -> Iterator[None]:
    """Seed, set determinism and the CPU thread count; restore the global flags afterwards."""
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    old_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    old_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        if deterministic:
            # cuBLAS needs this before its first deterministic call; harmless elsewhere.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        seed_everything(seed)
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic, warn_only=old_warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old_cudnn


def describe_device(device: torch.device) -> str:
    """`cpu (2 threads)`, `cuda:0 (NVIDIA H100)`, ... for summaries and logs."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)
