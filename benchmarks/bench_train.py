"""Training speed: rnnlab's pipeline against the reference notebooks' pipeline, side by side.

reference: raw texts re-tokenized in every batch's collate, plain shuffled batches, packed LSTM.
rnnlab:    ids encoded once (cache), length-bucketed batches, padded LSTM gathered at length-1.
Both train the same preset (embed 100, hidden 128) with Adam on bundled IMDB, batch 64,
max_len 400, for the same number of batches; we report the median seconds per batch and
tokens/s, and the ratio measured in this one run.

Usage: python benchmarks/bench_train.py [--batches 40] [--model lstm] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from rnnlab.config import DataConfig
from rnnlab.data import load_splits
from rnnlab.data.batching import BucketBatchSampler, iterate_batches
from rnnlab.data.sources import load_raw
from rnnlab.data.text import regex_tokenize
from rnnlab.models import create_model


def step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, tokens, lengths, labels) -> None:  # type: ignore[no-untyped-def]
    optimizer.zero_grad()
    loss = model.loss(model(tokens, lengths), labels)  # type: ignore[operator]
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def run_rnnlab(model_name: str, batches: int, vocab_size: int) -> tuple[list[float], int]:
    splits = load_splits(DataConfig(dataset="imdb", max_len=400))
    torch.manual_seed(0)
    model = create_model(model_name, vocab_size=vocab_size, num_classes=2)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    times, tokens = [], 0
    for i, batch in enumerate(iterate_batches(splits.train, 64, seed=0)):
        if i == batches:
            break
        start = time.perf_counter()
        step(model, optimizer, batch.tokens, batch.lengths, batch.labels)
        times.append(time.perf_counter() - start)
        tokens += batch.num_tokens
    return times, tokens


def run_reference(model_name: str, batches: int, vocab_size: int) -> tuple[list[float], int]:
    """Collate re-tokenizes raw text every batch, batches are unbucketed, the LSTM is packed."""
    splits = load_splits(DataConfig(dataset="imdb", max_len=400))
    stoi = splits.encoder.vocab.stoi_
    texts, labels = load_raw("imdb").splits["all"]
    torch.manual_seed(0)
    model = create_model(model_name, vocab_size=vocab_size, num_classes=2, sequence_mode="packed")
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    sampler = BucketBatchSampler(np.ones(len(texts)), 64, bucket=False, seed=0)
    times, tokens = [], 0
    for i, idx in enumerate(sampler):
        if i == batches:
            break
        start = time.perf_counter()
        seqs = []
        for j in idx:  # the notebooks' collate: clean, tokenize, look up, truncate, pad
            words = regex_tokenize(texts[j].lower().replace("<br />", " "))[:400] or ["<unk>"]
            seqs.append(torch.tensor([stoi.get(w, 1) for w in words]))
        lengths = torch.tensor([len(s) for s in seqs])
        padded = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)
        step(model, optimizer, padded, lengths, torch.as_tensor(labels[idx]))
        times.append(time.perf_counter() - start)
        tokens += int(lengths.sum())
    return times, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--model", default="lstm")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vocab_size = load_splits(DataConfig(dataset="imdb")).vocab_size
    result: dict[str, dict[str, float]] = {}
    # alternate the two pipelines so machine noise hits both alike
    runs: dict[str, list[tuple[list[float], int]]] = {"reference": [], "rnnlab": []}
    for _ in range(2):
        runs["reference"].append(run_reference(args.model, args.batches, vocab_size))
        runs["rnnlab"].append(run_rnnlab(args.model, args.batches, vocab_size))
    for name, parts in runs.items():
        times = [t for ts, _ in parts for t in ts[2:]]  # skip warm-up batches
        tokens = sum(n for _, n in parts) / len(parts)
        result[name] = {
            "median_s_per_batch": statistics.median(times),
            "tokens_per_s": tokens / sum(sum(ts) for ts, _ in parts) * len(parts),
        }
    result["speedup_median_batch"] = {
        "x": result["reference"]["median_s_per_batch"] / result["rnnlab"]["median_s_per_batch"]
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
