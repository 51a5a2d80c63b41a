"""What a model will need in memory, computed from its spec before anything is allocated."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from rnnlab.errors import RnnlabError
from rnnlab.models.classifier import ModelSpec
from rnnlab.models.families import from_spec, model_class

GIB = 1 << 30
MEMORY_SHARE = 0.5
"""Default limit: this share of the memory free on the device (RAM, or GPU memory on CUDA)."""
FLOAT_BYTES = 4
SAVED_PER_HIDDEN = 8
"""Floats autograd keeps per hidden unit, step and layer direction (gates, states, outputs);
an LSTM keeps about 7 (4 gates, c, tanh(c), h), a GRU 5: 8 leaves room for the kernels' own."""
ACTIVATION_MARGIN = 2.0
"""Temporaries during the backward pass (gradients of the saved activations)."""
LONG_TEXT = 2_000
"""Tokens assumed per text when max_len is None (whole reviews: IMDB's longest is ~2,500)."""


def parameter_shapes(spec: ModelSpec) -> dict[str, torch.Size]:
    """Every parameter and buffer's shape, from a model built on the meta device (no memory)."""
    with torch.device("meta"):
        model = from_spec(spec)
    return {name: tensor.shape for name, tensor in model.state_dict().items()}


def parameter_count(spec: ModelSpec) -> int:
    with torch.device("meta"):
        model = from_spec(spec)
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class MemoryEstimate:
    parameters: int
    """Bytes of the weights."""
    optimizer: int
    """Bytes of the gradients and Adam's two moments (0 for inference)."""
    activations: int
    """Bytes one batch's forward and backward keep alive."""
    batch_size: int
    max_len: int

    @property
    def total(self) -> int:
        return self.parameters + self.optimizer + self.activations

    def describe(self) -> str:
        parts = [f"parameters {_gib(self.parameters)}"]
        if self.optimizer:
            parts.append(f"gradients and optimizer {_gib(self.optimizer)}")
        parts.append(
            f"activations {_gib(self.activations)} for a batch of {self.batch_size} x "
            f"{self.max_len} tokens"
        )
        return f"about {_gib(self.total)} ({', '.join(parts)})"


def _gib(size: float) -> str:
    return f"{size / GIB:,.2f} GiB"


def estimate_memory(
    spec: ModelSpec, *, batch_size: int, max_len: int | None, training: bool = True
) -> MemoryEstimate:
    """Weights, optimizer state and activations of `spec` at this batch shape, in bytes."""
    params = parameter_count(spec) * FLOAT_BYTES
    steps = max_len or LONG_TEXT
    directions = 2 if spec.bidirectional else 1
    features = spec.input_dim or spec.embed_dim
    per_token = features + spec.num_layers * directions * (
        features + SAVED_PER_HIDDEN * spec.hidden_dim
    )
    family = getattr(model_class(spec.kind), "activation_floats_per_token", None)
    if family is not None:  # families other than rnn / lstm / gru say what they keep
        per_token = family(spec, steps)
    activations = int(batch_size * steps * per_token * FLOAT_BYTES * ACTIVATION_MARGIN)
    if not training:
        activations //= SAVED_PER_HIDDEN  # inference keeps one step's states, not all of them
    return MemoryEstimate(params, 3 * params if training else 0, activations, batch_size, steps)


def free_memory(device: torch.device) -> int | None:
    """Bytes free on `device` now: GPU memory on CUDA, else the RAM the OS can give (Linux's
    MemAvailable, else physical pages); None when it cannot be told."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(
    estimate: MemoryEstimate,
    device: torch.device,
    limit_gb: float | None,
    *,
    fix: str = "--hidden-dim, --embed-dim, --batch-size or --max-len",
) -> None:
    """Refuse, in one line with the estimate, a model that would not fit the memory limit:
    `limit_gb` (--memory-limit-gb), else MEMORY_SHARE of the device's free memory."""
    if limit_gb is not None:
        limit, where = int(limit_gb * GIB), f"--memory-limit-gb {limit_gb:g}"
    else:
        free = free_memory(device)
        if free is None:
            return
        limit = int(free * MEMORY_SHARE)
        place = "GPU memory" if device.type == "cuda" else "RAM"
        where = f"{MEMORY_SHARE:.0%} of the free {place}"
    if estimate.total > limit:
        needed = max(1, -(-estimate.total * 12 // 10 // GIB))
        raise RnnlabError(
            f"the model needs {estimate.describe()}, more than the limit of {_gib(limit)} "
            f"({where}); make it smaller ({fix}) or raise the limit, e.g. --memory-limit-gb {needed}"
        )
