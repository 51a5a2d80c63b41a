"""Token attributions of the diagnostic: where in the text the evidence sits.

The method (Integrated Gradients on `model.embed`, the <pad> baseline, completeness and its
limits) is rnnlab.diagnostics.explain's.

The diagnostic (`rnnlab diagnose attribution`) attributes N texts of at least L tokens for
every model and asks where the evidence sits: the share of |attribution| in each tenth of the
text, averaged over texts. A model that forgets what it read early puts most of it in the
last tenth.

The result (result.json's schema, tables, figures) is
`rnnlab.diagnostics.attribution_result`'s.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from rnnlab.config import check_positive
from rnnlab.diagnostics.attribution_result import (
    BINS,
    AttributionResult,
    ModelAttribution,
    TextAttribution,
)
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.explain import attribute, sig6
from rnnlab.diagnostics.inputs import Inputs, Logger, ModelEntry
from rnnlab.diagnostics.texts import long_texts, make_batch
from rnnlab.errors import check

Split = Literal["test", "val", "train"]


# ----- where the evidence sits ---------------------------------------------------------------
def position_shares(scores: np.ndarray, lengths: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(bins,) mean over texts of each part's share of the text's |attribution|; token t of a
    text of n tokens falls in part floor(bins * t / n). Texts with no attribution at all are
    left out (all zeros when none has any)."""
    shares = []
    for row, n in zip(scores, lengths, strict=True):
        n = int(n)
        weight = np.abs(row[:n])
        total = weight.sum()
        if n == 0 or total <= 0 or not np.isfinite(total):
            continue
        part = (bins * np.arange(n)) // n
        shares.append(np.bincount(part, weights=weight / total, minlength=bins))
    return np.mean(shares, axis=0) if shares else np.zeros(bins)


# ----- the diagnostic --------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    texts: int = 20
    """Texts to attribute (fewer when fewer are long enough)."""
    min_len: int = 200
    """Only texts with at least this many tokens (10 or more: one per tenth)."""
    max_tokens: int | None = 400
    """Tokens kept per text, its first ones (none: whole texts)."""
    n_steps: int = 50
    """Points of the path integral from the baseline to the text (Gauss-Legendre)."""
    internal_batch_size: int = 500
    """(text, step) rows per forward/backward pass; lower it to save memory."""
    split: Split = "test"
    """The split the texts come from."""
    target: Literal["predicted", "label"] = "predicted"
    """The class the attributions point toward: each model's prediction or the true label."""
    show: int = 3
    """Texts the report shows token by token (the first ones)."""

    def __post_init__(self) -> None:
        check_positive(self, "texts", "min_len", "n_steps", "internal_batch_size")
        check(
            self.min_len >= BINS,
            f"--min-len must be at least {BINS} (one token per tenth), not {self.min_len}",
        )
        check(
            self.max_tokens is None or self.max_tokens >= BINS,
            f"--max-tokens must be at least {BINS} (one token per tenth), not {self.max_tokens}",
        )
        check(self.show >= 0, f"--show must be 0 or more, not {self.show}")


QUICK = Settings(texts=4, min_len=100, max_tokens=200, n_steps=24, show=2)


def _check_classifier(entry: ModelEntry) -> None:
    task = getattr(getattr(entry.model, "spec", None), "task", "classification")
    check(
        task == "classification" and entry.splits.task == "classification",
        f"{entry.label} is a regression model; attributions need a classifier",
    )


def _token_names(entry: ModelEntry) -> list[str] | None:
    encoder = entry.splits.encoder
    return list(encoder.itos) if encoder is not None else None


def attribution(
    entries: Sequence[ModelEntry],
    settings: Settings | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Logger | None = None,
    **changes: Any,
) -> AttributionResult:
    """Token attributions of every model on the same texts and where their evidence sits;
    `changes` replace single settings (attribution(entries, texts=5))."""
    s = dataclasses.replace(settings or Settings(), **changes)
    check(bool(entries), "no models to diagnose")
    target = torch.device(device) if isinstance(device, str) else device
    result: AttributionResult | None = None
    for entry in entries:
        _check_classifier(entry)
        data = entry.splits.split(s.split)
        rows = long_texts(
            data, s.min_len, s.texts, seed=seed, what=f"the {entry.dataset} {s.split} split",
            option="--min-len",
        )  # fmt: skip
        batch = make_batch(data, rows, s.max_tokens)
        if result is None:
            result = AttributionResult(
                entry.dataset, s.split, s.texts, s.min_len, s.max_tokens, s.n_steps, s.target,
                s.show, list(entry.splits.label_names), seed, str(target),
            )  # fmt: skip
        if log:
            log(f"attribution: {entry.label} on {len(rows)} texts, {s.n_steps} steps")
        start = time.perf_counter()
        found = attribute(
            entry.model, batch.tokens, batch.lengths,
            batch.labels if s.target == "label" else None, n_steps=s.n_steps,
            internal_batch_size=s.internal_batch_size, device=target,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        itos = _token_names(entry)
        texts = []
        for i, row in enumerate(rows):
            n = int(found.lengths[i])
            ids = batch.tokens[i, :n]
            tokens = (
                [itos[int(v)] for v in ids] if itos is not None and ids.dim() == 1
                else [f"t{t}" for t in range(n)]
            )  # fmt: skip
            texts.append(
                TextAttribution(
                    row=int(row),
                    label=int(batch.labels[i]),
                    target=int(found.targets[i]),
                    probability=float(np.exp(found.log_probs[i, found.targets[i]])),
                    score=float(found.score[i]),
                    baseline_score=float(found.baseline_score[i]),
                    delta=float(found.delta[i]),
                    tokens=tokens,
                    scores=[sig6(v) for v in found.scores[i, :n]],
                )
            )
        shares = position_shares(found.scores, found.lengths)
        result.models.append(
            ModelAttribution(
                entry.label, entry.kind, entry.source, [float(v) for v in shares], texts, seconds
            )
        )
    assert result is not None
    return result


def run(settings: Settings, inputs: Inputs) -> AttributionResult:
    return attribution(
        inputs.entries(), settings, seed=inputs.seed, device=inputs.target, log=inputs.log
    )


def check_inputs(settings: Settings, inputs: Inputs) -> None:
    for entry in inputs.entries():
        _check_classifier(entry)
        data = entry.splits.split(settings.split)
        long_texts(
            data, settings.min_len, 1, what=f"the {entry.dataset} {settings.split} split",
            option="--min-len",
        )  # fmt: skip


def estimate(settings: Settings, models: int) -> float:
    """About 15 us per (token, step) for an LSTM of hidden size 128 on 2 cores, forward and
    backward (benchmarks/bench_attribution.py); RNN and GRU are cheaper."""
    tokens = settings.max_tokens or 2 * settings.min_len
    return models * settings.texts * tokens * settings.n_steps * 1.5e-5


DIAGNOSTIC = Diagnostic(
    name="attribution",
    command=("diagnose", "attribution"),
    help="which tokens drove each prediction (integrated gradients) and where in the text",
    title="Where the evidence sits: token attributions",
    how_to_read=(
        "Integrated gradients share each model's decision out over the tokens of a text: a "
        "token's attribution is how much it moves the log-odds of the predicted class, "
        "measured from a text of only padding (the attributions add up to that difference).",
        "The position figure shows which part of a text the evidence comes from: a model that "
        "forgets what it read early puts most of it in the last tenth. The reviews below are "
        "shaded token by token, one model per column: green for the predicted class, red "
        "against it, stronger for a larger share.",
    ),
    settings=Settings,
    quick=QUICK,
    result=AttributionResult,
    run=run,
    estimate=estimate,
    check=check_inputs,
)
