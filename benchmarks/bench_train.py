"""Training speed: rnnlab against the reference notebooks' pipeline, side by side.

baseline: benchmarks/notebook_baseline.py (raw text re-tokenized in every batch's collate,
          plain shuffled batches, packed RNN/LSTM/GRU, one logit + BCE).
rnnlab:   its real training loop (`rnnlab.training.train_one_epoch`): ids encoded once (cache),
          length-bucketed padded batches gathered at length-1.
ablation: rnnlab's loop with `sequence_mode="packed"` (encoded once and bucketed, but packed),
          to split the gain between the data pipeline and the padded recurrent path;
          and on the CPU, rnnlab with PyTorch's GRU / RNN layers instead of its fused kernels
          (RNNLAB_CPU_KERNELS=off), and likewise PyTorch's LSTM (oneDNN) for the LSTM.
Subnormal floats: rnnlab flushes them to zero on the CPU while it trains (as `fit` does; the
baseline does not, as the notebooks did not). A second ablation runs the baseline with the
flush, to show how much of the gain the flush alone gives on this CPU; `--no-flush` measures
rnnlab without it.
All train the same sizes (embed 100, hidden 128, one layer) with Adam 1e-3 and clipping on
bundled IMDB training reviews truncated to --max-len, for the same number of optimisation steps
at the same batch size. Each repeat runs the baseline, rnnlab and the ablation on a fresh random
sample of steps x batch-size reviews (the same seed for all); we report trained tokens/s (real
tokens, padding not counted) as the median over repeats and the ratio of the medians.

Usage: python benchmarks/bench_train.py [--models rnn,lstm,gru] [--batch-sizes 64] [--steps 10]
       [--repeats 3] [--max-len 400] [--warmup 2] [--device auto] [--threads N] [--no-flush]
       [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
from notebook_baseline import NotebookClassifier, NotebookPipeline, train_step  # this folder

from rnnlab.config import DataConfig, TrainConfig
from rnnlab.data import load_splits
from rnnlab.data.encoded import EncodedSplits
from rnnlab.data.pipeline import split_raw
from rnnlab.data.sources import load_raw
from rnnlab.models import create_model
from rnnlab.training.device import (
    describe_machine,
    flush_denormal,
    keep_freed_memory,
    machine_facts,
    resolve_device,
    synchronize,
)
from rnnlab.training.trainer import make_optimizer, train_one_epoch


def time_baseline(
    pipeline: NotebookPipeline,
    model_name: str,
    vocab_size: int,
    rows: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> float:
    """Trained tokens/s of the notebook pipeline over `rows` (one step per batch)."""
    torch.manual_seed(0)
    model = NotebookClassifier(model_name, vocab_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    tokens = 0
    synchronize(device)
    start = time.perf_counter()
    for begin in range(0, len(rows), batch_size):
        padded, lengths, labels = pipeline.collate(rows[begin : begin + batch_size])
        train_step(model, optimizer, (padded.to(device), lengths, labels.to(device)))
        tokens += int(lengths.sum())
    synchronize(device)
    return tokens / (time.perf_counter() - start)


def time_rnnlab(
    splits: EncodedSplits,
    model_name: str,
    rows: np.ndarray,
    cfg: TrainConfig,
    device: torch.device,
    sequence_mode: str = "padded",
) -> float:
    """Trained tokens/s of rnnlab's own training loop over the examples at `rows` (with the
    flush setting `fit` would use: FLUSH, set by main)."""
    torch.manual_seed(0)
    model = create_model(
        model_name,
        vocab_size=splits.vocab_size,
        num_classes=splits.num_classes,
        sequence_mode=sequence_mode,
    ).to(device)
    optimizer = make_optimizer(model, cfg)
    synchronize(device)
    with flush_denormal(FLUSH):
        stats = train_one_epoch(model, splits.train.subset(rows), optimizer, cfg, device=device)
    return stats.tokens_per_s


FLUSH = True


def time_baseline_flushed(*args: Any) -> float:
    """The notebook pipeline with subnormals flushed (an ablation; the notebooks did not)."""
    with flush_denormal(True):
        return time_baseline(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="rnn,lstm,gru")
    parser.add_argument("--batch-sizes", default=f"64,{TrainConfig().batch_size}")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-len", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches before each model")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--no-flush", action="store_true", help="rnnlab without the flush")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    global FLUSH
    FLUSH = not args.no_flush
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {describe_machine()}; rnnlab flush {'on' if FLUSH else 'off'}", flush=True)
    device = resolve_device(args.device)
    if device.type == "cpu":
        keep_freed_memory()  # as rnnlab's fit does; the baseline in this process gains from it too
    data_cfg = DataConfig(dataset="imdb", max_len=args.max_len)
    splits = load_splits(data_cfg)
    texts, labels, _ = split_raw(load_raw("imdb"), data_cfg)
    pipeline = NotebookPipeline(
        texts["train"], labels["train"], splits.encoder.vocab.stoi_, args.max_len
    )
    batch_sizes = list(dict.fromkeys(int(b) for b in args.batch_sizes.split(",")))
    results: list[dict[str, Any]] = []
    for batch_size in batch_sizes:
        cfg = TrainConfig(batch_size=batch_size, device=args.device, progress=False)
        for name in args.models.split(","):
            if args.warmup:  # both paths once, untimed (allocator, kernels, caches)
                warm = np.arange(args.warmup * batch_size)
                time_baseline(pipeline, name, splits.vocab_size, warm, batch_size, device)
                time_rnnlab(splits, name, warm, cfg, device)
            base, base_flushed, ours, packed, layers = [], [], [], [], []
            compare_layers = device.type == "cpu" and name in ("rnn", "gru", "lstm")
            for repeat in range(args.repeats):
                rng = np.random.default_rng(repeat)
                n = args.steps * batch_size
                base_rows = rng.choice(len(pipeline.texts), n, replace=False)
                our_rows = rng.choice(len(splits.train), n, replace=False)
                base_args = (pipeline, name, splits.vocab_size, base_rows, batch_size, device)
                base.append(time_baseline(*base_args))
                if device.type == "cpu":
                    base_flushed.append(time_baseline_flushed(*base_args))
                ours.append(time_rnnlab(splits, name, our_rows, cfg, device))
                packed.append(time_rnnlab(splits, name, our_rows, cfg, device, "packed"))
                if compare_layers:  # rnnlab.models.kernels reads the variable on every call
                    with mock.patch.dict(os.environ, {"RNNLAB_CPU_KERNELS": "off"}):
                        layers.append(time_rnnlab(splits, name, our_rows, cfg, device))
            row = {
                "model": name,
                "batch_size": batch_size,
                "baseline_tokens_per_s": statistics.median(base),
                "baseline_flushed_tokens_per_s": (
                    statistics.median(base_flushed) if base_flushed else None
                ),
                "rnnlab_tokens_per_s": statistics.median(ours),
                "speedup": statistics.median(ours) / statistics.median(base),
                "rnnlab_packed_tokens_per_s": statistics.median(packed),
                "speedups_per_repeat": [o / b for o, b in zip(ours, base, strict=True)],
                "rnnlab_torch_layers_tokens_per_s": statistics.median(layers) if layers else None,
            }
            results.append(row)
            print(
                f"{name:5s} batch {batch_size:4d}: baseline {row['baseline_tokens_per_s']:>10,.0f}"
                + (f" (flushed {statistics.median(base_flushed):,.0f})" if base_flushed else "")
                + f" tok/s  rnnlab {row['rnnlab_tokens_per_s']:>10,.0f} tok/s  "
                f"speedup {row['speedup']:.1f}x  (rnnlab packed "
                f"{row['rnnlab_packed_tokens_per_s']:,.0f} tok/s"
                + (f", PyTorch layers {statistics.median(layers):,.0f} tok/s)" if layers else ")"),
                flush=True,
            )
    out = {
        "machine": machine_facts(),
        "rnnlab_flush_denormal": FLUSH,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "repeats": args.repeats,
        "max_len": args.max_len,
        "results": results,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
