"""Data-parallel training on one machine, side by side: 2 ranks x 1 thread (torch.distributed
over gloo, DistributedDataParallel: rnnlab's own sharding of the global batch) against
1 process x 2 threads, and 1 process x 1 thread for reference.

Every setting trains with rnnlab's real loop (`train_one_epoch`: length-bucketed padded batches,
fused Adam, clipping, subnormals flushed as `fit` does) on bundled IMDB training reviews cut to
--max-len, with the same global batch (--batch-size; each of the 2 ranks takes its slice of
every batch). Each round draws a fresh random sample of steps x batch-size reviews, the same for
every setting, builds each model afresh from the same seed, trains it for --warmup untimed
steps and then times one pass over the sample; the order of the settings rotates from round to
round. The ranks are started with torch.multiprocessing (a TCP store on localhost) once per
round and timed inside rank 0 between two barriers, so starting processes and loading data are
not counted. Reported: trained tokens/s (real tokens, padding not counted), the median over
rounds, and 2x1 / 1x2 as the median of the per-round ratios; the load average before and after
says how busy the machine was.

Usage: python benchmarks/bench_ddp.py [--models lstm,gru] [--batch-size 64] [--max-len 400]
       [--steps 10] [--warmup 2] [--repeats 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rnnlab.config import DataConfig, TrainConfig
from rnnlab.data import load_splits
from rnnlab.models import create_model
from rnnlab.training import distributed
from rnnlab.training.device import (
    describe_machine,
    flush_denormal,
    keep_freed_memory,
    machine_facts,
)
from rnnlab.training.trainer import make_optimizer, train_one_epoch

SETTINGS = ("1x2", "2x1", "1x1")
"""processes x threads."""


def train_pass(
    name: str, max_len: int, rows: np.ndarray, warm: np.ndarray, batch_size: int, wrap: bool
) -> tuple[int, float]:
    """(trained tokens, seconds) of one timed pass over `rows` after a warm-up over `warm`; in
    a job (`wrap`), the model trains inside DDP and the figures are the whole job's."""
    keep_freed_memory()
    splits = load_splits(DataConfig(dataset="imdb", max_len=max_len))
    cfg = TrainConfig(batch_size=batch_size, device="cpu", progress=False)
    torch.manual_seed(0)
    model = create_model(name, vocab_size=splits.vocab_size, num_classes=splits.num_classes)
    world = distributed.World.current() if wrap else None
    net = distributed.wrap(model, world)
    optimizer = make_optimizer(model, cfg)
    with flush_denormal(True):
        train_one_epoch(net, splits.train.subset(warm), optimizer, cfg, epoch=0)
        if wrap:
            dist.barrier()
        start = time.perf_counter()
        stats = train_one_epoch(net, splits.train.subset(rows), optimizer, cfg, epoch=1)
        if wrap:
            dist.barrier()
    return stats.tokens, time.perf_counter() - start


def _rank(rank: int, port: int, job: dict[str, Any], out: str) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )  # fmt: skip
    torch.set_num_threads(1)
    with distributed.session():
        tokens, seconds = train_pass(wrap=True, **job)
    if rank == 0:
        Path(out).write_text(json.dumps({"tokens": tokens, "seconds": seconds}))


def two_ranks(job: dict[str, Any]) -> tuple[int, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "rank0.json")
        mp.start_processes(_rank, args=(port, job, out), nprocs=2, start_method="spawn")
        result = json.loads(Path(out).read_text())
    return int(result["tokens"]), float(result["seconds"])


def one_process(job: dict[str, Any], threads: int) -> tuple[int, float]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return train_pass(wrap=False, **job)
    finally:
        torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="lstm,gru")
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--max-len", type=int, default=400)
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="rounds")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"machine: {describe_machine()}", flush=True)
    print(f"load average before: {os.getloadavg()}", flush=True)
    splits = load_splits(DataConfig(dataset="imdb", max_len=args.max_len))  # the cache, once
    results: list[dict[str, Any]] = []
    for name in args.models.split(","):
        figures: dict[str, list[float]] = {s: [] for s in SETTINGS}
        for repeat in range(args.repeats):
            rng = np.random.default_rng(repeat)
            n = (args.steps + args.warmup) * args.batch_size
            sample = rng.choice(len(splits.train), n, replace=False)
            job = {
                "name": name, "max_len": args.max_len, "batch_size": args.batch_size,
                "rows": sample[args.warmup * args.batch_size :],
                "warm": sample[: args.warmup * args.batch_size],
            }  # fmt: skip
            order = SETTINGS[repeat % 3 :] + SETTINGS[: repeat % 3]
            for setting in order:
                if setting == "2x1":
                    tokens, seconds = two_ranks(job)
                else:
                    tokens, seconds = one_process(job, threads=int(setting[-1]))
                figures[setting].append(tokens / seconds)
        ratios = [a / b for a, b in zip(figures["2x1"], figures["1x2"], strict=True)]
        row = {
            "model": name,
            **{f"tokens_per_s_{s}": statistics.median(v) for s, v in figures.items()},
            "ratio_2x1_to_1x2": statistics.median(ratios),
            "per_round": figures,
        }
        results.append(row)
        print(
            f"{name:5s} global batch {args.batch_size}: "
            + "  ".join(f"{s} {statistics.median(v):>9,.0f} tok/s" for s, v in figures.items())
            + f"  2x1 / 1x2 {row['ratio_2x1_to_1x2']:.2f}",
            flush=True,
        )
    load_after = os.getloadavg()
    print(f"load average after: {load_after}", flush=True)
    out = {
        "machine": machine_facts(),
        "batch_size": args.batch_size,
        "max_len": args.max_len,
        "steps": args.steps,
        "repeats": args.repeats,
        "load_after": load_after,
        "results": results,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
