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
    embedding (||dL/dE||, null for continuous inputs), recurrent (the sequence encoder: null for
    a bag of n-grams), head, total, loss.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from rnnlab.config import check_positive
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.gradients import gradient_mode, private_copy
from rnnlab.diagnostics.inputs import Inputs, Logger, ModelEntry
from rnnlab.diagnostics.result import FigureSpec, Result
from rnnlab.diagnostics.texts import long_texts, make_batch
from rnnlab.errors import check
from rnnlab.formatting import factor, finite, sci
from rnnlab.models.families import colors
from rnnlab.plotting import nan_for_none, new_figure
from rnnlab.tables import Table

DTYPES = {"float32": torch.float32, "float64": torch.float64}
PARTS = ("embedding", "recurrent", "head", "total")


@dataclass(frozen=True)
class Settings:
    lengths: tuple[int, ...] = (50, 100, 200, 400)
    """Truncation lengths L: the same texts (at least max(L) tokens long) cut to each."""
    batch_size: int = 32
    """Texts to read (fewer when fewer are that long)."""
    split: Literal["test", "val", "train"] = "test"
    """The split the texts come from."""
    dtype: Literal["float32", "float64"] = "float32"
    """Precision of the backward pass."""

    def __post_init__(self) -> None:
        check_positive(self, "lengths", "batch_size")
        object.__setattr__(self, "lengths", tuple(sorted(set(self.lengths))))
        check(self.dtype in DTYPES, f"--dtype must be float32 or float64, not {self.dtype!r}")


QUICK = Settings(lengths=(25, 50, 100, 200), batch_size=8)


def gradient_norms(
    model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor
) -> dict[str, float | None]:
    """L2 norms of dL/dθ per part (embedding, recurrent, head, total) and the loss, for one
    backward pass of the batch-mean loss. Parameter .grad is left untouched."""
    parts: dict[str, nn.Module | None] = model.parts()  # type: ignore[operator]
    groups: dict[str, list[nn.Parameter]] = {
        name: list(module.parameters()) if (module := parts[name]) is not None else []
        for name in ("embedding", "recurrent", "head")
    }  # "recurrent": the sequence encoder (none for a bag of n-grams)
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

    @property
    def part(self) -> str:
        """`embedding`, or `total` for continuous inputs (no embedding matrix)."""
        has_embedding = any(m.embedding and m.embedding[0] is not None for m in self.models)
        return "embedding" if has_embedding else "total"

    def growth(self, m: ModelEmbeddingGrad) -> float | None:
        values = getattr(m, self.part)
        return values[-1] / values[0] if values[0] and values[-1] is not None else None

    def tables(self) -> list[Table]:
        rows = []
        for m in self.models:
            growth = self.growth(m)
            values = getattr(m, self.part)
            rows.append(
                [m.label, *(sci(v) for v in values), "—" if growth is None else factor(growth)]
            )
        columns = ["model", *(f"L={n}" for n in self.lengths)]
        columns.append(f"L={self.lengths[-1]} / L={self.lengths[0]}")
        return [
            Table(
                f"Gradient norm of the {self.part} parameters by text length "
                f"({self.batch_size} {self.dataset} {self.split} texts)",
                columns, rows, ["one backward pass of the batch-mean loss; the same texts at every L"],
                [False, *([True] * (len(self.lengths) + 1))],
                row_ids=[f"embgrad-{m.label}" for m in self.models],
            )
        ]  # fmt: skip

    def figures(self) -> list[FigureSpec]:
        factors = [
            f"{m.label} {factor(g)}" for m in self.models if (g := self.growth(m)) is not None
        ]
        caption = []
        if factors and len(self.lengths) >= 2:
            what = (
                "||dL/dE|| (embedding)" if self.part == "embedding" else "the total gradient norm"
            )
            caption = [
                f"From texts cut to {self.lengths[0]} tokens to texts cut to {self.lengths[-1]}, "
                f"{what} changes by: " + ", ".join(factors) + " (same texts, one backward pass each).",
                "A factor near 1 means the extra early words add (almost) no gradient: they are "
                "too far from the loss for the signal to reach them.",
            ]  # fmt: skip
        return [
            FigureSpec(
                "embedding_grad.png",
                "Gradient norm vs the number of tokens kept",
                caption,
                self._draw,
            )
        ]

    def _draw(self) -> Any:
        palette = colors([m.label for m in self.models], [m.kind for m in self.models])
        fig, axes = new_figure(
            1, 2, f"gradient norm vs sequence length: {self.dataset} {self.split}"
        )
        for ax, key, name in (
            (axes[0][0], "embedding", "||dL/dEmbedding||"),
            (axes[0][1], "recurrent", "||dL/dW recurrent||"),
        ):
            for m in self.models:
                ax.plot(self.lengths, nan_for_none(getattr(m, key)), marker="o", label=m.label,
                        color=palette[m.label])  # fmt: skip
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(self.lengths, [str(n) for n in self.lengths])
            ax.set_xlabel("sequence length L (tokens kept)")
            ax.set_title(name, fontsize=10)
            ax.legend(fontsize=8)
        return fig


def embedding_grad(
    entries: Sequence[ModelEntry],
    settings: Settings | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Logger | None = None,
    **changes: Any,
) -> EmbeddingGradResult:
    """Gradient norms per model and truncation length, on one batch of long-enough texts."""
    s = dataclasses.replace(settings or Settings(), **changes)
    check(bool(entries), "no models to diagnose")
    target = torch.device(device) if isinstance(device, str) else device
    lengths = list(s.lengths)
    dataset = entries[0].dataset
    result: EmbeddingGradResult | None = None
    for entry in entries:
        data = entry.splits.split(s.split)
        rows = long_texts(
            data, lengths[-1], s.batch_size, seed=seed, what=f"the {dataset} {s.split} split",
            option="--lengths",
        )  # fmt: skip
        if result is None:
            result = EmbeddingGradResult(
                dataset, s.split, lengths, len(rows), rows.tolist(), s.dtype, str(target), seed
            )
        model = private_copy(entry.model, target, DTYPES[s.dtype])
        per_length: dict[str, list[float | None]] = {k: [] for k in (*PARTS, "loss")}
        for length in lengths:
            if log:
                log(f"embedding grad: {entry.label}, L={length}")
            batch = make_batch(data, rows, length).to(target)
            tokens = batch.tokens
            if tokens.is_floating_point():
                tokens = tokens.to(DTYPES[s.dtype])
            norms = gradient_norms(model, tokens, batch.lengths, batch.labels)
            for key, values in per_length.items():
                values.append(norms[key])
        result.models.append(
            ModelEmbeddingGrad(entry.label, entry.kind, entry.source, **per_length)
        )
    assert result is not None
    return result


def run(settings: Settings, inputs: Inputs) -> EmbeddingGradResult:
    return embedding_grad(
        inputs.entries(), settings, seed=inputs.seed, device=inputs.target, log=inputs.log
    )


def check_texts(settings: Settings, inputs: Inputs) -> None:
    for entry in inputs.entries():
        data = entry.splits.split(settings.split)
        long_texts(
            data, max(settings.lengths), 1, what=f"the {entry.dataset} {settings.split} split",
            option="--lengths",
        )  # fmt: skip


def estimate(settings: Settings, models: int) -> float:
    return models * settings.batch_size * sum(settings.lengths) * 2e-5


DIAGNOSTIC = Diagnostic(
    name="embedding-grad",
    command=("diagnose", "embedding-grad"),
    help="embedding-gradient norm vs sequence length",
    title="Embedding gradient vs text length",
    how_to_read=(
        "The norm of the gradient on the word embeddings, against the length of the text.",
        "If it falls as texts get longer, the words of long texts barely change the "
        "embeddings: the model learns mostly from short texts.",
    ),
    settings=Settings,
    quick=QUICK,
    result=EmbeddingGradResult,
    run=run,
    estimate=estimate,
    check=check_texts,
)
