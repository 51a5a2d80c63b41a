"""A/B of rnnlab's CPU recurrence kernels in one process, alternating, medians (issue 13).

`isa`:   the same GRU, RNN and LSTM layer (forward + backward) on each kernel build this CPU can
         run (avx512, avx2, base: rnnlab.models.kernels.ISAS), all loaded side by side; also the
         largest difference of output and gradients between the builds. The GEMMs are torch's
         in every build; the ISA only decides the fused gate loops.
`lstm`:  one LSTM layer forward and backward, rnnlab's fused kernel (the default build) against
         PyTorch's nn.LSTM (oneDNN on CPU) with the same weights, padded batch.
`model`: one whole training step (embedding, layer, head, loss, backward, clipping, fused Adam)
         of a preset with rnnlab's kernels and with RNNLAB_CPU_KERNELS=off.

Every round runs each variant once, in an order that rotates from round to round, so a
neighbour's load hits all variants alike; we print the median, the median of the per-round
ratios to the first variant (paired), every per-round value in ms, and how many cores other
processes kept busy meanwhile (from /proc/stat). The gradient reaching the layer is the
classifier's: non-zero only at the last step (pooling `last`), so it vanishes back through time
as in training. Subnormals are flushed to zero (torch.set_flush_denormal, set before torch's
thread pool starts and checked on every thread) unless --no-flush; freed memory is kept for
reuse as rnnlab's fit does. The CPU model, its ISA and the flush setting are printed first.

Usage: python benchmarks/bench_kernels_ab.py [--what isa,lstm,model] [--rounds 25]
       [--steps 400,150] [--kinds gru,rnn,lstm] [--models lstm,gru] [--batch-size 64]
       [--embed 100] [--hidden 128] [--threads 2] [--no-flush] [--busy-neighbour] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from rnnlab.config import TrainConfig
from rnnlab.models import create_model, kernels
from rnnlab.models.cells import layer_weights
from rnnlab.training.device import keep_freed_memory
from rnnlab.training.trainer import make_optimizer

Timed = Callable[[], tuple[float, float]]  # one forward + backward -> (forward s, backward s)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _busy_cpu_s() -> float:
    """CPU seconds all processes have run so far (/proc/stat; 0 where there is none)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(f) for f in fields]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class Neighbours:
    """How many cores other processes kept busy while we measured (ours subtracted)."""

    def __init__(self) -> None:
        self.start = (time.perf_counter(), _busy_cpu_s(), sum(os.times()[:2]))

    def cores(self) -> float:
        wall, busy, ours = self.start
        wall = time.perf_counter() - wall
        others = (_busy_cpu_s() - busy) - (sum(os.times()[:2]) - ours)
        return round(max(0.0, others) / wall, 2)


def timed(
    run: Callable[[], Tensor], params: list[Tensor], build: ModuleType | None = None
) -> Timed:
    """forward + backward of `run` with the classifier's gradient (last step only), on the
    given kernel build (else the default one)."""

    def once() -> tuple[float, float]:
        for p in params:
            p.grad = None
        with kernels.using(build) if build is not None else contextlib.nullcontext():
            start = time.perf_counter()
            out = run()  # (B, T, H)
            middle = time.perf_counter()
            grad = torch.zeros_like(out)
            grad[:, -1] = torch.linspace(-1, 1, out.numel() // out.shape[1]).view(out[:, -1].shape)
            out.backward(grad)
        return middle - start, time.perf_counter() - middle

    return once


def alternate(variants: dict[str, Timed], rounds: int) -> dict[str, dict[str, Any]]:
    """Each round runs every variant once (order rotating); per-variant ms lists and medians."""
    names = list(variants)
    for fn in variants.values():  # warm up: allocator, oneDNN primitive cache, page faults
        for _ in range(3):
            fn()
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    neighbours = Neighbours()
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(variants[name]())
    result: dict[str, Any] = {"other_processes_cores": neighbours.cores()}
    first = [f + b for f, b in times[names[0]]]
    for name in names:
        fwd = [1e3 * f for f, _ in times[name]]
        bwd = [1e3 * b for _, b in times[name]]
        total = [f + b for f, b in zip(fwd, bwd, strict=True)]
        result[name] = {
            "forward_ms_median": statistics.median(fwd),
            "backward_ms_median": statistics.median(bwd),
            "total_ms_median": statistics.median(total),
            "total_ms": [round(t, 2) for t in total],
            # paired: this variant's time over the first one's in the same round
            "ratio_to_first_median": statistics.median(
                t / (1e3 * f) for t, f in zip(total, first, strict=True)
            ),
        }
    return result


def isa_ab(args: argparse.Namespace, steps: int) -> dict[str, Any]:
    builds = {}
    for isa in kernels.cpu_isas():
        try:
            builds[isa] = kernels.build(isa)
        except Exception as exc:  # a build this toolchain cannot make: say so, A/B the rest
            print(f"  {isa} build failed: {str(exc).splitlines()[0][:120]}")
    torch.manual_seed(0)
    x = torch.randn(args.batch_size, steps, args.embed, requires_grad=True)
    out: dict[str, Any] = {}
    for kind in args.kinds.split(","):
        layer = getattr(torch.nn, kind.upper())(args.embed, args.hidden, batch_first=True)
        params = [x, *layer.parameters()]
        weights = layer_weights(layer, 0, reverse=False)

        def run(kind: str = kind, weights: Any = weights) -> Tensor:
            return kernels.run_direction(kind, x, weights)

        variants = {isa: timed(run, params, ext) for isa, ext in builds.items()}
        out[kind] = alternate(variants, args.rounds)
        out[kind]["max_abs_diff_vs_first_build"] = builds_agree(run, builds, params)
    return out


def builds_agree(
    run: Callable[[], Tensor], builds: dict[str, ModuleType], params: list[Tensor]
) -> dict[str, float]:
    """The largest difference of output and gradients between each build and the first."""
    results = {}
    for isa, ext in builds.items():
        with kernels.using(ext):
            out = run()
            probe = torch.linspace(-1, 1, out.numel()).view_as(out)
            results[isa] = [out.detach(), *torch.autograd.grad((out * probe).sum(), params)]
    first = next(iter(results.values()))
    return {
        isa: max(float((a - b).abs().max()) for a, b in zip(got, first, strict=True))
        for isa, got in results.items()
    }


def lstm_ab(args: argparse.Namespace, steps: int) -> dict[str, Any]:
    torch.manual_seed(0)
    x = torch.randn(args.batch_size, steps, args.embed, requires_grad=True)
    layer = torch.nn.LSTM(args.embed, args.hidden, batch_first=True)
    params = [x, *layer.parameters()]
    weights = layer_weights(layer, 0, reverse=False)
    variants = {
        "onednn_nn_lstm": timed(lambda: layer(x)[0], params),
        "rnnlab_fused": timed(lambda: kernels.run_direction("lstm", x, weights), params),
    }
    return alternate(variants, args.rounds)


def model_ab(args: argparse.Namespace, steps: int) -> dict[str, Any]:
    """One training step of a whole model (embedding, layer, head, loss, backward, clipping,
    fused Adam) with rnnlab's kernels and with PyTorch's layers (RNNLAB_CPU_KERNELS=off), two
    models with the same initial weights, on the same batch of random token ids."""
    out: dict[str, Any] = {}
    tokens = torch.randint(2, 20_000, (args.batch_size, steps))
    lengths = torch.randint(max(1, steps - steps // 10), steps + 1, (args.batch_size,))
    labels = torch.randint(0, 2, (args.batch_size,))
    for name in args.models.split(","):
        variants = {}
        for label, env in (("pytorch_layers", "off"), ("rnnlab_kernels", "auto")):
            torch.manual_seed(0)
            model = create_model(
                name, vocab_size=20_000, num_classes=2, embed_dim=args.embed, hidden_dim=args.hidden
            ).train()
            optimizer = make_optimizer(model, TrainConfig())

            def step(model: torch.nn.Module = model, opt: Any = optimizer, env: str = env) -> float:
                os.environ["RNNLAB_CPU_KERNELS"] = env
                opt.zero_grad(set_to_none=True)
                loss = model.loss(model(tokens, lengths), labels)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                return loss.item()

            def timed_step(step: Callable[[], float] = step) -> tuple[float, float]:
                start = time.perf_counter()
                step()
                return time.perf_counter() - start, 0.0

            variants[label] = timed_step
        try:
            out[name] = alternate(variants, args.rounds)
        finally:
            os.environ.pop("RNNLAB_CPU_KERNELS", None)
    return out


def print_table(title: str, result: dict[str, Any]) -> None:
    print(f"  {title} (other processes kept {result['other_processes_cores']} cores busy)")
    first = next(
        name for name, row in result.items() if isinstance(row, dict) and "total_ms" in row
    )
    for name, row in result.items():
        if name == "max_abs_diff_vs_first_build":
            print(f"    largest difference of output and gradients from the first build: {row}")
        if not isinstance(row, dict) or "total_ms" not in row:
            continue
        split = (
            f"fwd {row['forward_ms_median']:7.2f}  bwd {row['backward_ms_median']:7.2f}  "
            if row["backward_ms_median"] > 0
            else ""
        )
        print(
            f"    {name:<16} {split}total {row['total_ms_median']:7.2f} ms (median), "
            f"x{row['ratio_to_first_median']:.3f} of {first} per round; "
            f"per round: {row['total_ms']}"
        )


def flushed_on_every_thread() -> bool:
    """Whether subnormals flush on all of torch's threads: a subnormal times 1 over a tensor
    large enough that torch splits it across its thread pool."""
    tiny = torch.full((1 << 22,), 1e-39)
    return bool((tiny * 1.0 == 0).all())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--what", default="isa,lstm,model", help="comma list: isa, lstm, model")
    parser.add_argument("--kinds", default="gru,rnn,lstm", help="layers for --what isa")
    parser.add_argument("--models", default="lstm,gru", help="presets for --what model")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--steps", default="400,150", help="comma list of sequence lengths T")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--embed", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-flush", action="store_true", help="keep subnormal floats")
    parser.add_argument(
        "--busy-neighbour",
        action="store_true",
        help="keep one core busy with a spinning process while measuring (a shared machine)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    spinner = None
    if args.busy_neighbour:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        run(args)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def run(args: argparse.Namespace) -> None:
    flush = not args.no_flush
    # MXCSR (the flush mode) is per thread: set it before torch's thread pool starts, so the
    # pool's threads inherit it, and check that they did.
    assert torch.set_flush_denormal(flush), "this CPU cannot flush subnormals (no DAZ/FTZ)"
    torch.set_num_threads(args.threads)
    if flushed_on_every_thread() != flush:
        raise SystemExit("the flush setting did not reach every thread of torch's pool")
    header = {
        "cpu": cpu_model(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "flush_denormal": flush,
        "threads": torch.get_num_threads(),
        "keep_freed_memory": keep_freed_memory(),  # as rnnlab's fit does
        "torch": torch.__version__,
        "default_kernel_build": kernels.isa_order()[0],
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "load_average_before": os.getloadavg(),
        "batch_size": args.batch_size,
        "embed": args.embed,
        "hidden": args.hidden,
        "rounds": args.rounds,
        "busy_neighbour": args.busy_neighbour,
    }
    print(json.dumps(header))
    result: dict[str, Any] = {"machine": header}
    for steps in (int(s) for s in args.steps.split(",")):
        for what in args.what.split(","):
            print(f"== {what}, T={steps}", flush=True)
            if what == "isa":
                figures = isa_ab(args, steps)
                for kind, rows in figures.items():
                    print_table(f"{kind} layer, kernel builds", rows)
            elif what == "lstm":
                figures = lstm_ab(args, steps)
                print_table("lstm layer", figures)
            elif what == "model":
                figures = model_ab(args, steps)
                for name, rows in figures.items():
                    print_table(f"{name} training step", rows)
            else:
                raise SystemExit(f"unknown --what {what!r}: use isa, lstm, model")
            result[f"{what}_T{steps}"] = figures
    result["machine"]["load_average_after"] = os.getloadavg()
    print(f"load average after: {os.getloadavg()}")
    torch.set_flush_denormal(False)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
