"""`rnnlab train --nproc N` (and `compare --nproc N`): torchrun's own launcher
(torch.distributed.run) in this process, starting N ranks of this machine, and one line for a
job that failed (the rank that died, the resume command). What a rank does is
`rnnlab.training.distributed`'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from rnnlab.errors import RnnlabError
from rnnlab.training.distributed import LAUNCHER_ENV, timeout_s

SHUTDOWN_S = 120
"""`--nproc`: seconds the ranks get to save after Ctrl-C or SIGTERM before torchrun kills them."""


def launch(nproc: int, argv: Sequence[str], *, run_dir: str | None = None) -> int:
    """Run `python -m rnnlab <argv>` on `nproc` processes of this machine through PyTorch's
    torchrun (torch.distributed.run: its elastic agent starts, watches and stops the ranks).

    Returns the job's exit code: 0, 2 (a rank reported an error itself), 130 (Ctrl-C or SIGTERM:
    the ranks stopped and rank 0 saved). A rank that was killed or crashed ends the job: torchrun
    stops the others, and this raises one RnnlabError naming that rank (with the resume command
    for `run_dir`).
    """
    # the launcher only: torchrun's elastic agent is not needed by the ranks
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    if nproc < 1:
        raise RnnlabError(f"--nproc must be at least 1 (got {nproc})")
    timeout_s()  # the ranks' setting: a bad one is said once, here, before any rank starts
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default for several ranks
    # torchrun's per-rank error files go to a folder of our own, removed afterwards (its
    # default, a fresh /tmp/torchelastic_* per job, is never cleaned up)
    with (
        tempfile.TemporaryDirectory(prefix="rnnlab-torchrun-") as logs,
        _quiet_torch_logs(),
        _environ(LAUNCHER_ENV, "1"),
    ):
        args = torchrun.parse_args(
            [
                f"--nproc-per-node={nproc}", "--max-restarts=0",
                f"--shutdown-timeout={SHUTDOWN_S}", f"--log-dir={logs}",
                "--module", "rnnlab", *argv,
            ]
        )  # fmt: skip
        try:
            torchrun.run(args)
        except ChildFailedError as exc:
            return _report(exc.failures, nproc, run_dir)
        except SignalException:  # Ctrl-C or SIGTERM: forwarded to the ranks, which saved
            return 130
    return 0


def _report(failures: dict[int, Any], nproc: int, run_dir: str | None) -> int:
    """The exit code of a failed job; a rank that died without reporting it raises one line."""
    agent_stops = (-signal.SIGTERM, -signal.SIGINT)
    crashed = {r: f for r, f in failures.items() if f.exitcode not in (2, 130, *agent_stops)}
    if not crashed and all(f.exitcode in agent_stops for f in failures.values()):
        crashed = dict(failures)  # stopped from outside, with nothing said
    if not crashed:
        return 2 if any(f.exitcode == 2 for f in failures.values()) else 130
    rank, failure = min(crashed.items(), key=lambda item: (item[1].timestamp, item[0]))
    how = (
        f"was killed by {failure.signal_name()}"
        if failure.exitcode < 0
        else f"exited with code {failure.exitcode}"
    )
    hint = (
        f"; {run_dir} keeps its last finished epoch: continue with `rnnlab train --resume "
        f"{run_dir}`"
        if run_dir
        else ""
    )
    raise RnnlabError(
        f"rank {rank} of {nproc} (pid {failure.pid}) {how}; torchrun stopped the job{hint}"
    )


@contextlib.contextmanager
def _quiet_torch_logs() -> Iterator[None]:
    """torchrun's agent logs warnings and a multi-line failure report; rnnlab says it in one."""
    loggers = [
        logging.getLogger(name)
        for name in list(logging.root.manager.loggerDict)
        if name.startswith("torch.distributed")
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
