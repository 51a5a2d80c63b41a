"""Signals during training: SIGTERM stops like Ctrl-C, and a second signal waits for the run's
last files.

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
def interrupt_once() -> Iterator[list[int]]:
    """The first Ctrl-C or SIGTERM raises KeyboardInterrupt (training stops, as usual); any
    further one is held until the block ends, then raised: what follows the first (testing the
    best weights, writing the run's last files) always finishes."""
    if not _main_thread():
        yield []
        return
    received: list[int] = []

    def handle(signum: int, frame: Any) -> None:
        received.append(signum)
        if len(received) == 1:
            raise KeyboardInterrupt

    before = {s: signal.signal(s, handle) for s in STOP_SIGNALS}
    try:
        yield received
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
    if len(received) > 1:
        raise KeyboardInterrupt
