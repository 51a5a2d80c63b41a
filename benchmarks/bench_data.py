"""Data pipeline speed: bundled IMDB from raw CSV to encoded splits, from the cache, and padding.

Usage: python benchmarks/bench_data.py [--repeats 3] [--json out.json]
Targets (issue 2): raw -> encoded <= 5 s and cache -> splits <= 0.5 s on 2 cores;
bucketed batches of 64 carry <= 5% padding.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from rnnlab.config import DataConfig
from rnnlab.data import load_splits
from rnnlab.data.batching import BucketBatchSampler, padding_share


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cfg = DataConfig(dataset="imdb")
    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["RNNLAB_CACHE_DIR"] = tmp
            cold.append(timed(lambda: load_splits(cfg)))  # tokenize, fit vocab, encode, write cache
            warm.extend(timed(lambda: load_splits(cfg)) for _ in range(3))
            splits = load_splits(cfg)
    lengths = splits.train.lengths
    padding = {}
    for name, bucket in (("bucketed", True), ("plain", False)):
        shares = [
            padding_share(lengths, BucketBatchSampler(lengths, 64, bucket=bucket, seed=s).batches())
            for s in range(5)
        ]
        padding[name] = float(np.median(shares))
    result = {
        "raw_to_encoded_s_median": statistics.median(cold),
        "raw_to_encoded_s_all": cold,
        "cache_to_splits_s_median": statistics.median(warm),
        "padding_share_batch64": padding,
        "train_examples": len(splits.train),
        "train_tokens": int(lengths.sum()),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
