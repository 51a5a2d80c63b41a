"""Data-parallel training on PyTorch's own engine: torch.distributed and DistributedDataParallel,
started by torchrun (`torchrun --nproc-per-node N -m rnnlab train ...`) or by `rnnlab train
--nproc N ...`, which runs torchrun's own launcher (torch.distributed.run) in-process
(`rnnlab.training.launcher`).

What a rank does differently from one process, and where:

- `session` joins the process group torchrun describes in the environment (RANK, WORLD_SIZE,
  LOCAL_RANK, MASTER_ADDR, MASTER_PORT): gloo for CPU tensors, NCCL for CUDA ones, a timeout on
  every collective (RNNLAB_DIST_TIMEOUT seconds, default 600). Without WORLD_SIZE > 1 it is a
  no-op, and everything below is skipped: the one-process path is unchanged.
- The batches: a global batch is `cfg.batch_size` (the per-process --batch-size times the world
  size, written so in config.yaml); every rank builds the same global batches from (seed, epoch)
  and takes its slice of each (`rnnlab.data.batching.Shard`), so every rank takes the same
  number of steps and the ranks together see exactly what one process would.
- The loss: a rank's mean loss is weighted by its share of the global batch (`Batch.weight`),
  so DDP's average of the gradients is the gradient of the global batch mean; clipping and the
  optimizer then see the same global gradient on every rank, and the weights stay equal.
- Evaluation: the evaluation batches are dealt out whole (rank r takes batches r, r + N, ...),
  computed exactly as in one process, and the logits gathered on every rank, so the metrics
  (and early stopping, which reads them) are the single-process metrics, on every rank.
- Stopping: Ctrl-C and SIGTERM set a flag that is summed over the ranks with the step figures
  (`World.reduce_steps`), so all ranks stop after the same step and save as one process does.
- Writing: only rank 0 touches the run folder (rnnlab.api gates it) and prints.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import math
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from rnnlab.data.batching import Shard
from rnnlab.errors import RnnlabError
from rnnlab.training.device import resolve_device

T = TypeVar("T")

TIMEOUT_ENV = "RNNLAB_DIST_TIMEOUT"
"""Seconds a collective may wait for the other ranks before it fails (default 600)."""
DEFAULT_TIMEOUT_S = 600
LAUNCHER_ENV = "RNNLAB_LAUNCHER"
"""Set by `rnnlab train --nproc` for its ranks: the launcher names a rank that died."""


# ----- where this process stands -------------------------------------------------------------
def env_world_size() -> int:
    """WORLD_SIZE as torchrun set it (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def env_rank() -> int:
    """RANK as torchrun set it (0 without torchrun)."""
    return int(os.environ.get("RANK", "0") or 0)


def launched() -> bool:
    """Whether this process is one of several ranks that torchrun started."""
    return env_world_size() > 1


def under_launcher() -> bool:
    """Whether `rnnlab ... --nproc` started this rank (it reports a rank that died)."""
    return os.environ.get(LAUNCHER_ENV) == "1"


def timeout_s() -> float:
    """RNNLAB_DIST_TIMEOUT in seconds. A bad value is a SharedError: every rank reads the same
    environment, so rank 0 says it once (and `launch` checks it before starting any rank)."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise SharedError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds; e.g. 600") from None
    if not math.isfinite(value) or value <= 0:
        raise SharedError(f"{TIMEOUT_ENV} must be a positive number of seconds (got {raw})")
    return value


@dataclass(frozen=True)
class World:
    """This process's place in a data-parallel job."""

    rank: int
    size: int
    local_rank: int

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes the run folder and prints."""
        return self.rank == 0

    @classmethod
    def current(cls) -> World:
        """The initialized process group's view."""
        local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
        return cls(dist.get_rank(), dist.get_world_size(), local_rank)

    def train_shard(self) -> Shard:
        """This rank's slice of every global training batch."""
        return Shard(self.rank, self.size)

    def eval_shard(self) -> Shard:
        """Every size-th evaluation batch, whole, from this rank's."""
        return Shard(self.rank, self.size, whole_batches=True)

    def describe(self, device: torch.device) -> str:
        """`2 ranks (gloo)`: the gradients go over NCCL for a model on CUDA, else over gloo."""
        return f"{self.size} ranks ({backend_for(device)})"

    # -- collectives (every rank calls them at the same point) ----------------------------------
    def reduce_steps(
        self,
        losses: list[float],
        correct: list[int | None],
        sizes: list[int],
        tokens: list[int],
    ) -> tuple[list[float], list[int | None], list[int], list[int], bool]:
        """Sum the step figures of the ranks (one all-reduce for several steps): each step's
        global mean loss, correct count (None stays None: regression), examples and tokens, and
        whether any rank was asked to stop (Ctrl-C, SIGTERM). `losses` are the ranks' own
        batch means; a rank without a share of a step (size 0) adds nothing."""
        rows = [
            [loss * size if size else 0.0, float(c or 0), float(size), float(t)]
            for loss, c, size, t in zip(losses, correct, sizes, tokens, strict=True)
        ]
        rows.append([1.0 if stop_requested() else 0.0, 0.0, 0.0, 0.0])
        table = torch.tensor(rows, dtype=torch.float64)  # (steps + 1, 4) on the CPU: gloo
        dist.all_reduce(table)
        summed = table.tolist()
        stop = summed.pop()[0] > 0
        sizes = [int(row[2]) for row in summed]
        means = [row[0] / n if n else 0.0 for row, n in zip(summed, sizes, strict=True)]
        counts = [
            None if c is None else int(row[1]) for row, c in zip(summed, correct, strict=True)
        ]
        return means, counts, sizes, [int(row[3]) for row in summed], stop

    def any(self, flag: bool) -> bool:
        """True on every rank when it is True on any."""
        value = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def gather_rows(
        self, rows: torch.Tensor, indices: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every rank's (rows (n_r, C), their example indices (n_r,)), concatenated in rank
        order, on every rank (on the CPU). Exact: the values travel as they are."""
        parts: list[Any] = [None] * self.size
        dist.all_gather_object(parts, (rows.cpu().numpy(), indices.cpu().numpy()))
        kept = [(r, i) for r, i in parts if len(i)]
        if not kept:
            return torch.empty(0, 1), torch.zeros(0, dtype=torch.int64)
        values = np.concatenate([r for r, _ in kept])
        return torch.from_numpy(values), torch.from_numpy(np.concatenate([i for _, i in kept]))

    def broadcast(self, value: T) -> T:
        """Rank 0's `value` on every rank: a config, a checkpoint (torch.save'd to bytes on
        rank 0, as tensors loaded with weights_only=True do not pickle as they are)."""
        buffer = io.BytesIO()
        if self.main:
            torch.save(value, buffer)
        box = [buffer.getvalue()]
        dist.broadcast_object_list(box, src=0)
        if self.main:
            return value
        # rank 0 of this same job wrote it: its own objects (Path, RunConfig) come back whole
        return torch.load(io.BytesIO(box[0]), weights_only=False)


def backend_for(device: torch.device) -> str:
    """`nccl` for the tensors of a model on CUDA, `gloo` on the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def check_device(name: str, world: World | None) -> None:
    """Each rank takes its own GPU (cuda:LOCAL_RANK): an explicit cuda:N is refused in a job."""
    if world is None:
        return
    device = resolve_device(name)
    if device.type == "cuda" and device.index is not None:
        raise RnnlabError(
            f"--device {name} pins every rank to one GPU; with several processes each rank "
            "takes cuda:LOCAL_RANK: give --device cuda (or auto)"
        )
    if device.type == "cuda" and world.local_rank >= torch.cuda.device_count():
        raise RnnlabError(
            f"local rank {world.local_rank} has no GPU of its own: this machine has "
            f"{torch.cuda.device_count()}; start at most that many processes per machine"
        )
    if device.type == "mps":
        raise RnnlabError("data-parallel training runs on CPUs or CUDA GPUs, not MPS; use cpu")


@contextlib.contextmanager
def session() -> Iterator[World | None]:
    """Join the job torchrun started (None, and nothing done, in a single process).

    The process group carries CPU tensors over gloo and, on a machine with CUDA, CUDA tensors
    over NCCL (`cpu:gloo,cuda:nccl`), with this rank's current GPU cuda:LOCAL_RANK (so `cuda`
    means its own); every collective fails after RNNLAB_DIST_TIMEOUT seconds instead of waiting
    forever. A group the caller initialized is used as it is and left open.
    """
    if not launched():
        yield None
        return
    if dist.is_initialized():
        yield World.current()
        return
    cuda = torch.cuda.is_available() and dist.is_nccl_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
    if cuda and local_rank < torch.cuda.device_count():  # (CPU ranks may outnumber the GPUs)
        torch.cuda.set_device(local_rank)
    dist.init_process_group(
        "cpu:gloo,cuda:nccl" if cuda else "gloo",
        timeout=datetime.timedelta(seconds=timeout_s()),
    )
    try:
        yield World.current()
    finally:
        dist.destroy_process_group()


def global_batch(batch_size: int, world: World | None) -> int:
    """The global batch of `batch_size` examples per process: batch_size x world size."""
    return batch_size * (world.size if world is not None else 1)


# ----- the model -------------------------------------------------------------------------------
def wrap(model: torch.nn.Module, world: World | None) -> torch.nn.Module:
    """DistributedDataParallel around `model` (already on its device), or `model` itself in one
    process. DDP copies rank 0's weights to every rank here and averages the gradients during
    backward; buffers are copied from rank 0 once, here, and not at every step (rnnlab's models
    keep only constant ones)."""
    if world is None:
        return model
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model itself (its loss, predict, spec, embed), also from inside DDP."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def world_of(model: torch.nn.Module) -> World | None:
    """The job a DDP-wrapped model trains in (None for a plain model)."""
    return World.current() if isinstance(model, DistributedDataParallel) else None


def seed_epoch(world: World | None, seed: int, epoch: int) -> None:
    """Each rank draws its own dropout masks, a function of (seed, epoch, rank), so a resumed
    job with the same world size continues exactly; nothing changes in one process."""
    if world is not None:
        state = np.random.SeedSequence([seed, epoch, world.rank]).generate_state(2)
        torch.manual_seed(int(state[0]) << 32 | int(state[1]))


# ----- errors ----------------------------------------------------------------------------------
class SharedError(RnnlabError):
    """An error every rank of the job raises alike; rank 0 reports it, the others exit quietly."""


class PeerLost(SharedError):
    """The process group broke: another rank died, or a collective timed out."""


def on_main(world: World | None, work: Callable[[], T]) -> T:
    """`work()` on rank 0 and its result on every rank (in one process: just `work()`). An
    error there is raised on every rank (a SharedError elsewhere), so no rank waits for it."""
    if world is None:
        return work()
    outcome: tuple[str, Any] = ("ok", None)
    failure: BaseException | None = None
    if world.main:
        try:
            outcome = ("ok", work())
        except Exception as exc:  # every rank must learn of it, then rank 0 raises the original
            failure = exc
            message = str(exc) if isinstance(exc, RnnlabError) else f"{type(exc).__name__}: {exc}"
            outcome = ("error", message)
    outcome = world.broadcast(outcome)
    if failure is not None:
        raise failure
    if outcome[0] == "error":
        raise SharedError(outcome[1])
    return outcome[1]


_LOCATION = re.compile(r"^\[[^\]]*\]\s*")


def is_peer_loss(exc: BaseException) -> bool:
    """Whether `exc` comes from a broken process group (a dead peer, a timeout)."""
    text = str(exc)
    return isinstance(exc, dist.DistError) or any(w in text for w in ("gloo", "NCCL", "c10d"))


@contextlib.contextmanager
def peer_errors(world: World | None, hint: str = "") -> Iterator[None]:
    """Turn the process group's own errors (a multi-line RuntimeError) into one PeerLost line."""
    try:
        yield
    except RuntimeError as exc:
        if world is None or not is_peer_loss(exc):
            raise
        reason = _LOCATION.sub("", str(exc).strip().splitlines()[0]).split(". ")[0][:160]
        raise PeerLost(
            f"rank {world.rank} of {world.size} lost the other ranks ({reason}): another "
            f"process of the job ended or stalled{hint}"
        ) from None


# ----- Ctrl-C and SIGTERM: every rank stops after the same step --------------------------------
_stop = threading.Event()


def stop_requested() -> bool:
    """Whether this rank received Ctrl-C or SIGTERM inside `agreed_stop`."""
    return _stop.is_set()


def _request_stop(signum: int, frame: Any) -> None:
    _stop.set()


@contextlib.contextmanager
def agreed_stop(world: World | None) -> Iterator[None]:
    """In a job, Ctrl-C and SIGTERM only set a flag; the training loop sums it over the ranks
    after every few steps and all of them stop there (a rank stopping alone would leave the
    others waiting in an all-reduce). In one process (or off the main thread): no change."""
    main_thread = threading.current_thread() is threading.main_thread()
    if world is None or not main_thread or signal.getsignal(signal.SIGTERM) is _request_stop:
        yield
        return
    _stop.clear()
    before = {s: signal.signal(s, _request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
