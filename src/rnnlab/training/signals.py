"""Signals during training: SIGTERM stops like Ctrl-C, and writes that must finish wait for it.

SIGTERM is what `timeout`, docker, Kubernetes and Slurm send before they kill a job; turning it
into KeyboardInterrupt lets the loop end the same clean way (best weights kept, folder marked).
Both only act in the main thread (Python delivers signals there); elsewhere they change nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt for the duration, as Ctrl-C does."""
    if not _main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@contextmanager
def interrupts_deferred() -> Iterator[list[int]]:
    """Ctrl-C and SIGTERM received during the block are held until it ends, then raised as
    KeyboardInterrupt: a run's last files are written whole whatever the user presses."""
    received: list[int] = []
    if not _main_thread():
        yield received
        return
    before = {
        s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in STOP_SIGNALS
    }
    try:
        yield received
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
    if received:
        raise KeyboardInterrupt
