"""What the run folder's integrity manifest costs (rnnlab.layout.manifest), side by side in one
process: hashing an 8.5 MB model.pt (sha256, blake2b, and the CRC-32 pass of a folder without a
manifest), loading the run for `predict` with and without its manifest, and the per-epoch
writes (checkpoint.pt and metrics.jsonl) through the manifest, with and without fsync, against
a plain atomic write as before the manifest.

    python benchmarks/bench_manifest.py [--repeats 9] [--out bench_manifest.json]

Not part of `make bench`'s smoke run: it trains one small run (a few seconds) and prints
medians in milliseconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from rnnlab import api
from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rnnlab.io import write_text_atomic
from rnnlab.layout import CHECKPOINT, MANIFEST, METRICS, MODEL
from rnnlab.layout.manifest import digest_file, write_files
from rnnlab.runs import load_run
from rnnlab.training.checkpoint import Checkpoint, _failed_checksum, save_torch, torch_bytes


def median_ms(*runs: Callable[[], object], repeats: int) -> list[float]:
    """The median time of each of `runs`, called in turn `repeats` times (so drift on a shared
    machine falls on all of them alike), in milliseconds."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, spent in zip(runs, times, strict=True):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return [round(1e3 * statistics.median(spent), 2) for spent in times]


def corpus(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(0)
    words = ["good", "great", "fun", "bad", "dull", "weak", "the", "film", "plot", "cast"]
    lines = ["text,label"]
    for i in range(rows):
        lines.append(f"{' '.join(rng.choice(words, 8))} token{i},{('neg', 'pos')[i % 2]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="bench-manifest-"))
    try:
        # 2,000 rows -> about 1,650 tokens; x 1,360 float32 embedding columns ~ 8.5 MB
        config = RunConfig(
            DataConfig(dataset=str(corpus(root / "texts.csv", 2000)), max_len=12),
            ModelConfig(name="gru", embed_dim=1360, hidden_dim=8),
            TrainConfig(epochs=1, batch_size=64, progress=False, patience=None, threads=1),
        )
        run = api.train(config, out=root, name="run", verbose=False).run_dir
        model = run / MODEL
        size_mb = model.stat().st_size / 2**20
        data = model.read_bytes()
        legacy = Path(shutil.copytree(run, root / "legacy"))
        (legacy / MANIFEST).unlink()
        obj = asdict(Checkpoint.load(run / CHECKPOINT))
        checkpoint = torch_bytes(obj)
        metrics = (run / METRICS).read_text() * 20  # 20 epochs' lines
        r = args.repeats
        figures: dict[str, float] = {
            "model_pt_mb": round(size_mb, 2),
            "checkpoint_pt_mb": round(len(checkpoint) / 2**20, 2),
        }
        hashes = median_ms(
            lambda: hashlib.sha256(data).hexdigest(),
            lambda: hashlib.blake2b(data).hexdigest(),
            lambda: digest_file(model),
            lambda: _failed_checksum(model),
            repeats=r,
        )
        names = ("sha256_model_ms", "blake2b_model_ms", "sha256_model_file_ms", "crc32_pass_ms")
        figures.update(zip(names, hashes, strict=True))
        loads = median_ms(lambda: load_run(run), lambda: load_run(legacy), repeats=r)
        figures.update(load_run_with_manifest_ms=loads[0], load_run_without_manifest_ms=loads[1])
        os.environ["RNNLAB_FSYNC"] = "1"
        writes = median_ms(
            lambda: save_torch(root / "plain" / CHECKPOINT, obj),
            lambda: write_files(run, {CHECKPOINT: torch_bytes(obj)}),
            lambda: write_text_atomic(root / "plain" / METRICS, metrics),
            lambda: write_files(run, {METRICS: metrics.encode()}),
            repeats=r,
        )
        os.environ["RNNLAB_FSYNC"] = "0"
        unsynced = median_ms(
            lambda: write_files(run, {CHECKPOINT: torch_bytes(obj)}),
            lambda: write_files(run, {METRICS: metrics.encode()}),
            repeats=r,
        )
        figures.update(
            checkpoint_plain_atomic_ms=writes[0],
            checkpoint_manifest_fsync_ms=writes[1],
            checkpoint_manifest_no_fsync_ms=unsynced[0],
            metrics_plain_atomic_ms=writes[2],
            metrics_manifest_fsync_ms=writes[3],
            metrics_manifest_no_fsync_ms=unsynced[1],
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for name, value in figures.items():
        print(f"{name:36s} {value:10.2f}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
