"""`make bench`: run every benchmark and print their results (record figures in docs/BENCHMARKS.md).

`--smoke` runs each one for a few steps only (what CI does: it checks they run, not the speed).
`--out DIR` also writes each benchmark's JSON there.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = {
    "bench_data.py": ["--repeats", "1"],
    "bench_train.py": ["--steps", "1", "--repeats", "1", "--warmup", "0", "--max-len", "100"],
    "bench_efficiency.py": [
        "--models",
        "lstm",
        "--steps",
        "1",
        "--repeats",
        "1",
        "--max-len",
        "100",
    ],
    "bench_step_ops.py": ["--layer-steps", "20"],
    "bench_attribution.py": ["--texts", "2", "--tokens", "40", "--steps", "4", "--repeats", "1"],
    # the per-ISA A/B compiles every other kernel build (about a minute): `make bench` runs it
    "bench_kernels_ab.py": ["--what", "lstm,model", "--rounds", "1", "--steps", "20"],
    "bench_families.py": ["--steps", "1", "--repeats", "1", "--max-len", "50"],
    "bench_ddp.py": [
        "--models",
        "gru",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--repeats",
        "1",
        "--max-len",
        "50",
    ],
}

NOT_IN_SMOKE = ("bench_ddp.py",)
"""Left out of the suite's smoke run (two torch processes; tests/test_distributed trains the
same data-parallel path end to end)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few steps each, no timing value")
    parser.add_argument("--out", type=Path, help="folder for the JSON results")
    args = parser.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    for name, smoke_args in BENCHMARKS.items():
        if args.smoke and name in NOT_IN_SMOKE:
            continue
        print(f"== {name}", flush=True)
        command = [sys.executable, str(HERE / name), *(smoke_args if args.smoke else [])]
        if args.out:
            command += ["--json", str(args.out / name.replace(".py", ".json"))]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
