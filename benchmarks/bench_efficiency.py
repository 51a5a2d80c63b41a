"""How close training runs to the machine's limit, inference throughput and peak memory.

For each preset, in its own process (so peak memory is its own), on bundled IMDB at rnnlab's
defaults (max_len 400, the default batch size; both can be changed):
- training: rnnlab's real loop (`train_one_epoch`) over --steps batches; achieved GFLOP/s =
  trained tokens/s x 3 x the recurrent layers' forward matmul FLOPs per token
  (`ModelSpec.flops_per_token(max_len)`; backward ~2x forward). Padding is not counted.
- matmul: a plain (N, N) @ (N, N) `torch.mm` on the same device, timed alternately with the
  training blocks in the same process; the ratio training / matmul is the efficiency.
- inference: `predict_logits` over the validation split, tokens/s.
- peak memory: the process's peak RSS on CPU; `torch.cuda.max_memory_allocated` on CUDA.
- backward / forward: the median time of one batch's backward pass over its forward pass.
  Backward costs about twice the forward's FLOPs; a ratio above 4 is flagged as a likely
  subnormal-float or dispatch problem (it was 16 for the LSTM at max_len 400 on an Intel
  Xeon before rnnlab flushed subnormals to zero).
Subnormals are flushed to zero while training, as rnnlab's `fit` does (`--no-flush`: not).

Usage: python benchmarks/bench_efficiency.py [--models lstm,gru,rnn] [--batch-size N] [--max-len N]
       [--steps 20] [--repeats 3] [--device auto] [--threads N] [--no-flush] [--json FILE]
       RNNLAB_CPU_KERNELS=off python benchmarks/bench_efficiency.py --models gru,rnn
       measures the same with PyTorch's GRU / RNN layers instead of rnnlab's fused kernels.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnlab.config import DataConfig, TrainConfig
from rnnlab.data import load_splits
from rnnlab.data.batching import iterate_batches
from rnnlab.models import create_model
from rnnlab.training.device import (
    describe_machine,
    flush_denormal,
    keep_freed_memory,
    machine_facts,
    resolve_device,
    synchronize,
)
from rnnlab.training.evaluation import predict_logits
from rnnlab.training.trainer import make_optimizer, train_one_epoch


def matmul_gflops(device: torch.device, size: int, repeats: int = 5) -> float:
    """Median GFLOP/s of a (size, size) @ (size, size) float32 matmul."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.mm(a, b)  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


RATIO_FLAG = 4.0
"""backward / forward above this is flagged: backward should cost about twice the forward."""


def backward_forward_ratio(
    model: torch.nn.Module, splits: Any, batch_size: int, device: torch.device, batches: int = 5
) -> float:
    """Median over `batches` batches of (backward seconds) / (forward seconds), train mode."""
    ratios = []
    model.train()
    for i, batch in enumerate(iterate_batches(splits.train, batch_size, shuffle=True, seed=1)):
        if i >= batches:
            break
        batch = batch.to(device)
        synchronize(device)
        start = time.perf_counter()
        loss = model.loss(model(batch.tokens, batch.lengths), batch.labels)  # type: ignore[operator]
        synchronize(device)
        forward = time.perf_counter() - start
        start = time.perf_counter()
        loss.backward()
        synchronize(device)
        ratios.append((time.perf_counter() - start) / forward)
        model.zero_grad(set_to_none=True)
    return statistics.median(ratios)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """One preset: alternate matmul and training blocks, then inference and peak memory."""
    device = resolve_device(args.device)
    if device.type == "cpu" and not args.default_malloc:
        keep_freed_memory()  # as rnnlab's fit does
    splits = load_splits(DataConfig(dataset="imdb", max_len=args.max_len))
    cfg = TrainConfig(batch_size=args.batch_size, device=args.device, progress=False)
    torch.manual_seed(0)
    model = create_model(
        args.child, vocab_size=splits.vocab_size, num_classes=splits.num_classes
    ).to(device)
    optimizer = make_optimizer(model, cfg)
    train_flops_per_token = 3 * model.spec.flops_per_token(args.max_len)
    mm_size = 2048 if device.type == "cpu" else 8192
    warm = splits.train.subset(np.arange(2 * cfg.batch_size))
    with flush_denormal(not args.no_flush):
        train_one_epoch(model, warm, optimizer, cfg, device=device)
        mm, train = [], []
        for repeat in range(args.repeats):
            mm.append(matmul_gflops(device, mm_size))
            rows = np.random.default_rng(repeat).choice(
                len(splits.train), args.steps * cfg.batch_size, replace=False
            )
            subset = splits.train.subset(rows)
            stats = train_one_epoch(model, subset, optimizer, cfg, device=device)
            train.append(stats.tokens_per_s)
        ratio = backward_forward_ratio(model, splits, cfg.batch_size, device)
    infer = []
    val_tokens = int(splits.val.lengths.sum())
    for _ in range(args.repeats):
        synchronize(device)
        start = time.perf_counter()
        predict_logits(model, splits.val, device=device)
        synchronize(device)
        infer.append(val_tokens / (time.perf_counter() - start))
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    train_gflops = statistics.median(train) * train_flops_per_token / 1e9
    return {
        "model": args.child,
        "machine": machine_facts(),
        "flush_denormal": not args.no_flush,
        "backward_forward_ratio": ratio,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch_size": cfg.batch_size,
        "train_tokens_per_s": statistics.median(train),
        "train_gflops": train_gflops,
        "matmul_gflops": statistics.median(mm),
        "efficiency": train_gflops / statistics.median(mm),
        "efficiency_per_repeat": [
            t * train_flops_per_token / 1e9 / m for t, m in zip(train, mm, strict=True)
        ],
        "inference_tokens_per_s": statistics.median(infer),
        "peak_memory_mib": peak_mib,
        "peak_memory_kind": "cuda max_memory_allocated" if device.type == "cuda" else "RSS",
        "kept_freed_memory": device.type == "cpu" and not args.default_malloc,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="lstm,gru,rnn")
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--max-len", type=int, default=DataConfig().max_len)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-flush", action="store_true", help="train without the flush")
    parser.add_argument(
        "--default-malloc", action="store_true", help="leave glibc malloc as it is (comparison)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: measure one preset
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(measure(args)))
        return
    print(f"machine: {describe_machine()}; training flush {'off' if args.no_flush else 'on'}")
    results = []
    for name in args.models.split(","):
        command = [sys.executable, __file__, *sys.argv[1:], "--child", name]
        line = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        row = json.loads(line.strip().splitlines()[-1])
        results.append(row)
        print(
            f"{name:5s} batch {row['batch_size']}: train {row['train_tokens_per_s']:,.0f} tok/s "
            f"= {row['train_gflops']:.1f} GFLOP/s, matmul {row['matmul_gflops']:.1f} GFLOP/s "
            f"-> {row['efficiency']:.0%}; inference {row['inference_tokens_per_s']:,.0f} tok/s; "
            f"peak {row['peak_memory_kind']} {row['peak_memory_mib']:,.0f} MiB; backward/forward "
            f"{row['backward_forward_ratio']:.1f}"
            + (
                f"  <-- above {RATIO_FLAG:g}: likely subnormal floats or a slow dispatch"
                if row["backward_forward_ratio"] > RATIO_FLAG
                else ""
            ),
            flush=True,
        )
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
