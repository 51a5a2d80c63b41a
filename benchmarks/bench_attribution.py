"""Token attribution speed: integrated gradients of IMDB test texts for one model preset.

Usage: python benchmarks/bench_attribution.py [--model lstm] [--texts 20] [--tokens 400]
       [--steps 50] [--internal-batch-size 500] [--repeats 3] [--device cpu] [--threads N]
       [--json out.json]
Target (issue 16): 20 IMDB texts of 400 tokens, 50 steps, the lstm preset, <= 30 s on 2 CPU
cores. It times `rnnlab.diagnostics.attribution.attribution` (what `rnnlab diagnose
attribution` runs) on a freshly initialised preset sized for IMDB's vocabulary (the speed does
not depend on the weights: subnormal floats are flushed, as the diagnostics do), and reports
the median of the repeats after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rnnlab.config import DataConfig
from rnnlab.diagnostics.attribution import Settings, attribution
from rnnlab.diagnostics.inputs import fresh_models, whole_texts
from rnnlab.training.device import describe_machine, flush_denormal, num_threads, resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="lstm")
    parser.add_argument("--texts", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=400, help="texts of at least, cut to, N")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--internal-batch-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    settings = Settings(
        texts=args.texts, min_len=args.tokens, max_tokens=args.tokens, n_steps=args.steps,
        internal_batch_size=args.internal_batch_size,
    )  # fmt: skip
    device = resolve_device(args.device)
    splits = whole_texts(DataConfig(dataset="imdb"))
    (entry,) = fresh_models([args.model], splits)
    with num_threads(args.threads), flush_denormal(True):
        machine = describe_machine()
        print(machine, flush=True)
        attribution([entry], settings, device=device)  # warm-up (and kernels, if any)
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = attribution([entry], settings, device=device)
            seconds.append(time.perf_counter() - start)
    texts = result.models[0].texts
    gaps = [t.relative_gap for t in texts if t.relative_gap is not None]
    tokens = sum(len(t.tokens) for t in texts)
    median = statistics.median(seconds)
    figures = {
        "machine": machine,
        "device": str(device),
        "model": args.model,
        "texts": len(texts),
        "tokens": tokens,
        "n_steps": args.steps,
        "internal_batch_size": args.internal_batch_size,
        "seconds_median": median,
        "seconds_all": seconds,
        "us_per_token_step": 1e6 * median / max(tokens * args.steps, 1),
        "max_relative_gap": max(gaps) if gaps else None,
        "target_s": 30.0,
    }
    print(
        f"{args.model}: {len(texts)} texts x {args.tokens} tokens x {args.steps} steps in "
        f"{median:.2f} s (median of {args.repeats}; all: "
        f"{', '.join(f'{s:.2f}' for s in seconds)}), "
        f"{figures['us_per_token_step']:.1f} us per token and step"
    )
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
