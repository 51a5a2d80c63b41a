"""Embedding-gradient norm vs sequence length.

The same batch of texts (all at least max(lengths) tokens long) is cut to each length L; one
backward pass of the batch-mean loss (what a training step sees, before clipping) gives the
L2 norm of the gradient of the embedding matrix, of the recurrent weights, of the head and of
all parameters. With vanishing gradients the embedding gradient stops growing with L: the
extra early tokens receive (almost) nothing. Gradients run in train mode with dropout off.

result.json (`"kind": "embedding_grad"`):
  dataset, split, lengths (ascending), batch_size (texts used), rows (indices in the split),
  dtype, device, seed, loss ("batch mean"),
  models: one object per model with label, kind, source, and one number per length in
    embedding (||dL/dE||, null for continuous inputs), recurrent, head, total, loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from rnnlab.diagnostics.common import (
    Logger,
    ModelEntry,
    Result,
    Table,
    dataset_name,
    finite,
    gradient_mode,
    long_texts,
    make_batch,
    prepare,
    resolve_device,
)
from rnnlab.errors import check

DTYPES = {"float32": torch.float32, "float64": torch.float64}
PARTS = ("embedding", "recurrent", "head", "total")


def gradient_norms(
    model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor
) -> dict[str, float | None]:
    """L2 norms of dL/dθ per part (embedding, recurrent, head, total) and the loss, for one
    backward pass of the batch-mean loss. Parameter .grad is left untouched."""
    groups: dict[str, list[nn.Parameter]] = {
        "embedding": list(model.embedding.parameters()) if model.embedding is not None else [],  # type: ignore[union-attr]
        "recurrent": list(model.rnn.parameters()),  # type: ignore[union-attr]
        "head": list(model.head.parameters()),  # type: ignore[union-attr]
    }
    params = [p for group in groups.values() for p in group]
    with gradient_mode(model):
        frozen = [p for p in params if not p.requires_grad]
        for p in frozen:
            p.requires_grad_(True)
        try:
            logits = model(tokens, lengths)  # (B, C)
            loss = model.loss(logits, labels)  # type: ignore[operator]
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        finally:
            for p in frozen:
                p.requires_grad_(False)
    by_param = {id(p): g for p, g in zip(params, grads, strict=True)}
    out: dict[str, float | None] = {}
    total = 0.0
    for name, group in groups.items():
        squares = sum(
            float(by_param[id(p)].double().pow(2).sum())
            for p in group
            if by_param[id(p)] is not None
        )
        total += squares
        out[name] = finite(squares**0.5) if group else None
    out["total"] = finite(total**0.5)
    out["loss"] = finite(float(loss.detach()))
    return out


@dataclass
class ModelEmbeddingGrad:
    label: str
    kind: str
    source: str
    embedding: list[float | None]
    recurrent: list[float | None]
    head: list[float | None]
    total: list[float | None]
    loss: list[float | None]


@dataclass
class EmbeddingGradResult(Result):
    kind = "embedding_grad"

    dataset: str
    split: str
    lengths: list[int]
    batch_size: int
    rows: list[int]
    dtype: str
    device: str
    seed: int
    loss: str = "batch mean"
    models: list[ModelEmbeddingGrad] = field(default_factory=list)

    def tables(self) -> list[Table]:
        rows = []
        for m in self.models:
            growth = None
            if m.embedding[0] and m.embedding[-1] is not None:
                growth = m.embedding[-1] / m.embedding[0]
            rows.append(
                [
                    m.label,
                    *(_sci(v) for v in m.embedding),
                    "-" if growth is None else f"{growth:.2f}x",
                ]
            )
        columns = [
            "model",
            *(f"L={n}" for n in self.lengths),
            f"L={self.lengths[-1]}/L={self.lengths[0]}",
        ]
        title = f"||dL/dEmbedding|| on {self.batch_size} {self.dataset} {self.split} texts cut to L"
        notes = ["one backward pass of the batch-mean loss; the same texts at every L"]
        return [Table(title, columns, rows, notes)]

    def figures(self, folder: Path) -> list[Path]:
        from rnnlab.diagnostics import plots

        return plots.plot_embedding_grad(self, folder)


def _sci(value: float | None) -> str:
    return "-" if value is None else f"{value:.3e}"


def embedding_grad(
    entries: Sequence[ModelEntry],
    *,
    lengths: Sequence[int] = (50, 100, 200, 400),
    batch_size: int = 32,
    split: str = "test",
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: str = "float32",
    log: Logger | None = None,
) -> EmbeddingGradResult:
    """Gradient norms per model and truncation length, on one batch of long-enough texts."""
    lengths = sorted(set(int(n) for n in lengths))
    check(bool(lengths) and lengths[0] > 0, f"lengths must be positive (got {lengths})")
    check(batch_size > 0, f"batch_size must be positive (got {batch_size})")
    check(dtype in DTYPES, f"dtype must be float32 or float64, not {dtype!r}")
    check(bool(entries), "no models to diagnose")
    target = resolve_device(device) if isinstance(device, str) else device
    dataset = dataset_name(entries)
    result: EmbeddingGradResult | None = None
    for entry in entries:
        data = entry.splits.split(split)
        rows = long_texts(
            data, lengths[-1], batch_size, seed=seed, what=f"the {dataset} {split} split",
            option="--lengths",
        )  # fmt: skip
        if result is None:
            result = EmbeddingGradResult(
                dataset, split, lengths, len(rows), rows.tolist(), dtype, str(target), seed
            )
        model = prepare(entry.model, target, DTYPES[dtype])
        per_length: dict[str, list[float | None]] = {k: [] for k in (*PARTS, "loss")}
        for length in lengths:
            if log:
                log(f"embedding grad: {entry.label}, L={length}")
            batch = make_batch(data, rows, length).to(target)
            tokens = (
                batch.tokens.to(DTYPES[dtype]) if batch.tokens.is_floating_point() else batch.tokens
            )
            norms = gradient_norms(model, tokens, batch.lengths, batch.labels)
            for key, values in per_length.items():
                values.append(norms[key])
        result.models.append(
            ModelEmbeddingGrad(entry.label, entry.kind, entry.source, **per_length)
        )
    assert result is not None
    return result
