"""Flushing subnormal floats to zero: every pool thread inside, the caller's setting restored
after, and training results unchanged beyond float rounding."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from rnnlab.config import DataConfig, TrainConfig
from rnnlab.data import load_splits
from rnnlab.models import create_model
from rnnlab.training import Callback, TrainState, fit
from rnnlab.training.device import (
    SMALLEST_NORMAL_FLOAT32,
    denormals_flushed,
    flush_denormal,
    flush_wanted,
    num_threads,
)

HAS_FLUSH_MODE = torch.set_flush_denormal(False)  # x86 with DAZ, or ARM: the mode exists
needs_flush_mode = pytest.mark.skipif(not HAS_FLUSH_MODE, reason="this CPU has no flush mode")


def subnormal_survivors(threads: int = 2) -> int:
    """How many of a large batch of subnormal products stay non-zero, computed by `threads`
    pool threads (each thread takes a part of the elementwise op)."""
    with num_threads(threads):
        values = torch.full((1 << 21,), SMALLEST_NORMAL_FLOAT32 / 4)
        return int(((values * 0.5) != 0).sum())


@needs_flush_mode
def test_inside_every_pool_thread_flushes_and_the_callers_setting_comes_back() -> None:
    torch.set_flush_denormal(False)
    subnormal_survivors()  # the pool exists before the flush is set, as in a notebook
    assert not denormals_flushed()
    assert subnormal_survivors() == 1 << 21
    with flush_denormal(True) as flushed:
        assert flushed is True
        assert denormals_flushed()
        assert subnormal_survivors() == 0  # the worker's half too, not only the caller's
    assert not denormals_flushed()
    assert subnormal_survivors() == 1 << 21


@needs_flush_mode
def test_off_inside_a_flushing_caller_and_back() -> None:
    torch.set_flush_denormal(True)
    try:
        with flush_denormal(False) as flushed:
            assert flushed is False
            assert subnormal_survivors() == 1 << 21
        assert denormals_flushed()
    finally:
        torch.set_flush_denormal(False)


def test_the_environment_variable_turns_it_off(monkeypatch: Any) -> None:
    assert flush_wanted(True) is True
    assert flush_wanted(False) is False
    for value in ("0", "off", "False", "no"):
        monkeypatch.setenv("RNNLAB_FLUSH_DENORMAL", value)
        assert flush_wanted(True) is False
    monkeypatch.setenv("RNNLAB_FLUSH_DENORMAL", "1")
    assert flush_wanted(True) is True


class SubnormalGradients(Callback):
    """Counts entries of dL/dx_t (the embedded inputs' gradient) that are subnormal."""

    def __init__(self) -> None:
        self.count = 0

    def on_fit_start(self, state: TrainState) -> None:
        def count(grad: torch.Tensor) -> None:
            size = grad.abs()
            self.count += int(((size > 0) & (size < SMALLEST_NORMAL_FLOAT32)).sum())

        def watch(module: Any, inputs: Any, output: torch.Tensor) -> None:
            if output.requires_grad:  # training steps, not the validation passes
                output.register_hook(count)  # (B, T, E)

        state.model.embedding.register_forward_hook(watch)  # type: ignore[union-attr]


@needs_flush_mode
def test_training_with_and_without_the_flush_agrees_to_float_rounding() -> None:
    """A vanilla RNN over 300 steps: without the flush its vanishing embedding gradients really
    are subnormal; with it they are zero, and the trained weights agree to rounding."""
    splits = load_splits(DataConfig(dataset="synthetic:parity", length=300, num_examples=160))
    weights, counters, results = [], [], []
    for flush in (False, True):
        torch.manual_seed(0)
        model = create_model(
            "rnn", vocab_size=splits.vocab_size, num_classes=2, embed_dim=8, hidden_dim=16
        )
        counter = SubnormalGradients()
        cfg = TrainConfig(epochs=2, batch_size=32, seed=0, progress=False, flush_denormal=flush)
        results.append(fit(model, splits, cfg, callbacks=[counter]))
        counters.append(counter.count)
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
    assert counters[0] > 0, "the unflushed run should meet subnormal gradients"
    assert counters[1] == 0
    assert [r.flush_denormal for r in results] == [False, True]
    assert results[1].to_dict()["flush_denormal"] is True
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert not denormals_flushed()
