"""What one recurrent time step costs on this machine, op by op (why small steps run below peak).

A padded GRU/LSTM step at the notebook sizes (batch 64, hidden 128) is one small matmul plus a
handful of elementwise ops on (64, 128) tensors; this times each such op in a tight loop and a
large matmul for comparison, on one thread and on the default thread count. It also times
torch's RNN / LSTM / GRU layers forward + backward on one (64, 230) batch, padded and packed,
and rnnlab's fused CPU kernels (rnnlab.models.kernels) on the same batch for the GRU, RNN and
LSTM.

Usage: python benchmarks/bench_step_ops.py [--batch-size 64] [--hidden 128] [--layer-steps 230]
       [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rnnlab.models import kernels
from rnnlab.models.cells import layer_weights


def microseconds(fn: Callable[[], object], repeats: int = 2000) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e6


def measure(batch: int, hidden: int) -> dict[str, float]:
    h, other, out = (
        torch.randn(batch, hidden),
        torch.randn(batch, hidden),
        torch.empty(batch, hidden),
    )
    w_gru, bias = torch.randn(hidden, 3 * hidden), torch.randn(3 * hidden)
    big_a, big_b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    step_flops = 2 * batch * hidden * 3 * hidden
    addmm_us = microseconds(lambda: torch.addmm(bias, h, w_gru))
    big_us = microseconds(lambda: torch.mm(big_a, big_b), repeats=5)
    return {
        "gru_step_addmm_us": addmm_us,
        "gru_step_addmm_gflops": step_flops / addmm_us / 1e3,
        "large_matmul_gflops": 2 * 2048**3 / big_us / 1e3,
        "mul_us": microseconds(lambda: torch.mul(h, other, out=out)),
        "sigmoid_us": microseconds(lambda: torch.sigmoid(h, out=out)),
        "tanh_us": microseconds(lambda: torch.tanh(h, out=out)),
        "slice_view_us": microseconds(lambda: w_gru[:, :hidden]),
    }


def layer_ms(batch: int, hidden: int, steps: int = 230) -> dict[str, float]:
    """Forward + backward of one (batch, steps) batch: torch's layers padded and packed, and
    rnnlab's fused kernels with the same weights (GRU, RNN, LSTM)."""
    x = torch.randn(batch, steps, 100, requires_grad=True)
    lengths = torch.randint(max(1, steps - 30), steps + 1, (batch,))
    lengths[0] = steps
    result = {}
    for kind in ("RNN", "LSTM", "GRU"):
        layer = getattr(torch.nn, kind)(100, hidden, batch_first=True)

        def padded(layer: torch.nn.Module = layer) -> None:
            layer(x)[0].sum().backward()

        def packed(layer: torch.nn.Module = layer) -> None:
            seq = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            layer(seq)[0].data.sum().backward()

        def fused(layer: torch.nn.Module = layer, kind: str = kind.lower()) -> None:
            weights = layer_weights(layer, 0, reverse=False)
            kernels.run_direction(kind, x, weights).sum().backward()

        result[f"{kind.lower()}_padded_ms"] = microseconds(padded, repeats=3) / 1e3
        result[f"{kind.lower()}_packed_ms"] = microseconds(packed, repeats=3) / 1e3
        if kernels.applies(kind.lower(), x):
            result[f"{kind.lower()}_fused_ms"] = microseconds(fused, repeats=3) / 1e3
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument(
        "--layer-steps", type=int, default=230, help="time steps of the layer batch"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    result = {}
    for threads in dict.fromkeys([1, default_threads]):
        torch.set_num_threads(threads)
        result[f"{threads}_threads"] = {
            **measure(args.batch_size, args.hidden),
            **layer_ms(args.batch_size, args.hidden, args.layer_steps),
        }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
