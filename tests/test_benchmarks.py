"""Smoke test of `make bench`: every benchmark runs a few steps and writes sane JSON.

No speed thresholds here (benchmarks are not unit tests); figures go in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmarks_smoke_run_and_report_positive_figures(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run_all.py"),
            "--smoke",
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    data = json.loads((tmp_path / "bench_data.json").read_text())
    assert data["raw_to_encoded_s_median"] > 0 and data["cache_to_splits_s_median"] > 0
    assert 0 <= data["padding_share_batch64"]["bucketed"] < data["padding_share_batch64"]["plain"]

    train = json.loads((tmp_path / "bench_train.json").read_text())
    assert {row["model"] for row in train["results"]} == {"rnn", "lstm", "gru"}
    for row in train["results"]:
        assert row["baseline_tokens_per_s"] > 0 and row["rnnlab_tokens_per_s"] > 0
        assert row["speedup"] == pytest.approx(
            row["rnnlab_tokens_per_s"] / row["baseline_tokens_per_s"]
        )

    efficiency = json.loads((tmp_path / "bench_efficiency.json").read_text())
    assert [row["model"] for row in efficiency] == ["lstm"]
    for row in efficiency:
        assert row["matmul_gflops"] > 0 and 0 < row["efficiency"] < 1.5
        assert row["inference_tokens_per_s"] > 0 and row["peak_memory_mib"] > 0

    families = json.loads((tmp_path / "bench_families.json").read_text())
    assert [row["model"] for row in families["results"]] == [
        "gru", "bow", "mingru", "mingru:scan=parallel", "minlstm", "transformer"
    ]  # fmt: skip
    for row in families["results"]:
        assert row["train_tokens_per_s"] > 0 and row["ratio_to_gru"] > 0

    ops = json.loads((tmp_path / "bench_step_ops.json").read_text())
    for figures in ops.values():
        assert figures["gru_step_addmm_us"] > 0 and figures["large_matmul_gflops"] > 0
