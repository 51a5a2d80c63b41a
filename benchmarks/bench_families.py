"""Training speed of the model families side by side: the `gru` preset against bow, mingru (on
the fused CPU scan, and on the log-space parallel scan, `mingru:scan=parallel`), minlstm and
transformer (issue 28's target: mingru >= 2.5x the gru's trained tokens/s; issue 15's: transformer
>= 2x, at batch 64 and max_len 400).

Every model trains with rnnlab's real loop (`train_one_epoch`: length-bucketed padded batches,
fused Adam, clipping, subnormals flushed as `fit` does) on bundled IMDB training reviews cut to
--max-len, all in this one process. Each round draws a fresh random sample of steps x batch-size
reviews, the same for every model, and trains every model on it, the order rotated from round to
round so that no model always runs first; a model keeps its weights and optimizer from round to
round (one untimed warm-up epoch first). Reported: trained tokens/s (real tokens, padding not
counted), the median over rounds, and each model's ratio to the gru as the median of the
per-round ratios (paired, so a burst of load from other jobs hits both sides of a ratio alike);
the load average before and after says how busy the machine was.

A model is a preset name, optionally with ModelSpec overrides after colons:
`mingru:scan=parallel`, `mingru:transition=signed`.

Usage: python benchmarks/bench_families.py [--models gru,bow,mingru,mingru:scan=parallel,...]
       [--batch-size 64] [--max-len 400] [--steps 10] [--repeats 5] [--threads N]
       [--device auto] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnlab.config import DataConfig, TrainConfig
from rnnlab.data import load_splits
from rnnlab.models import count_parameters, create_model
from rnnlab.training.device import (
    describe_machine,
    flush_denormal,
    keep_freed_memory,
    machine_facts,
    resolve_device,
)
from rnnlab.training.trainer import make_optimizer, train_one_epoch

BASELINE = "gru"
TARGETS = {"mingru": 2.5, "transformer": 2.0}
"""Speed targets, trained tokens/s as a multiple of the gru preset's: issue 28's for mingru (on
its default scan), issue 15's for the transformer (bow's 20x is withdrawn)."""
MODELS = "gru,bow,mingru,mingru:scan=parallel,minlstm,transformer"


def preset_and_overrides(model: str) -> tuple[str, dict[str, Any]]:
    """`mingru:scan=parallel` -> ("mingru", {"scan": "parallel"}): a preset and ModelSpec
    overrides (numbers as numbers)."""
    name, *pairs = model.split(":")
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=400)
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps per round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = list(dict.fromkeys(n.strip() for n in args.models.split(",") if n.strip()))
    if BASELINE not in names:
        names.insert(0, BASELINE)
    device = resolve_device(args.device)
    if device.type == "cpu":
        keep_freed_memory()  # as rnnlab's fit does
    load_before = os.getloadavg()
    print(
        f"machine: {describe_machine()}; training flush on; load {load_before[0]:.2f}", flush=True
    )
    splits = load_splits(DataConfig(dataset="imdb", max_len=args.max_len))
    cfg = TrainConfig(batch_size=args.batch_size, device=args.device, progress=False)
    models, optimizers = {}, {}
    for name in names:
        torch.manual_seed(0)
        preset, overrides = preset_and_overrides(name)
        models[name] = create_model(
            preset, vocab_size=splits.vocab_size, num_classes=splits.num_classes, **overrides
        ).to(device)
        optimizers[name] = make_optimizer(models[name], cfg)
    speeds: dict[str, list[float]] = {name: [] for name in names}
    with flush_denormal(True):
        warm = splits.train.subset(np.arange(2 * args.batch_size))
        for name in names:
            train_one_epoch(models[name], warm, optimizers[name], cfg, device=device)
        for round_ in range(args.repeats):
            rng = np.random.default_rng(round_)
            rows = rng.choice(len(splits.train), args.steps * args.batch_size, replace=False)
            subset = splits.train.subset(rows)
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                stats = train_one_epoch(models[name], subset, optimizers[name], cfg, device=device)
                speeds[name].append(stats.tokens_per_s)
            print(
                f"round {round_ + 1}: "
                + ", ".join(f"{n} {speeds[n][-1]:,.0f}" for n in names)
                + " tok/s",
                flush=True,
            )
    load_after = os.getloadavg()
    base = speeds[BASELINE]
    results: list[dict[str, Any]] = []
    for name in names:
        ratios = [s / b for s, b in zip(speeds[name], base, strict=True)]
        row = {
            "model": name,
            "parameters": count_parameters(models[name])["total"],
            "train_tokens_per_s": statistics.median(speeds[name]),
            "train_tokens_per_s_rounds": speeds[name],
            "ratio_to_gru": statistics.median(ratios),
            "ratio_to_gru_rounds": ratios,
            "target": TARGETS.get(name),
        }
        results.append(row)
        target = f" (target {row['target']:g}x)" if row["target"] else ""
        print(
            f"{name:22s} {row['train_tokens_per_s']:>12,.0f} tok/s  "
            f"x{row['ratio_to_gru']:.2f} the gru{target}",
            flush=True,
        )
    out = {
        "machine": machine_facts(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "max_len": args.max_len,
        "steps": args.steps,
        "repeats": args.repeats,
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
        "results": results,
    }
    print(f"load average after: {load_after[0]:.2f}")
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
