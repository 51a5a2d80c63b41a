"""`make bench`: run every benchmark and print their JSON (record figures in docs/BENCHMARKS.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = ["bench_data.py", "bench_train.py"]

for name in BENCHMARKS:
    print(f"== {name}", flush=True)
    subprocess.run([sys.executable, str(HERE / name)], check=True)
