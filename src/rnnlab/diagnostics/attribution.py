"""Token attributions: which words drove a prediction, and where in the text the evidence sits.

Method: Integrated Gradients (Sundararajan, Taly and Yan 2017) through Captum. For a text with
embedded tokens x (T, E) and a baseline b, the attribution of token t is

    a_t = sum_e (x_te - b_te) * integral_0^1 df(b + s (x - b)) / dx_te ds

where f is the log-odds of the explained class, log p - log(1 - p) (for two classes the logit
margin z_k - z_other), so a_t > 0 means token t makes that class more likely. Log-odds rather
than p or log p: they do not saturate as p nears 1. With log p, a model that already favours
the class on the baseline (p = 0.99) has almost nothing left to share out (log 1 - log 0.99 =
0.01), however decisive the words. The
integral is Captum's `n_steps`-point Gauss-Legendre rule. Completeness: the a_t sum to
f(x) - f(b) up to the integration error, which Captum reports as its convergence delta
(sum of attributions - (f(x) - f(b))); both are kept with every text.

Baseline: the padding embedding. Every token of the text is replaced by `<pad>` (id 0), whose
row of the embedding table is 0 at initialisation and never trained (`padding_idx=0`), at the
same length: "the same number of steps, with no words in them". Continuous inputs (synthetic
tasks) use the same rule, `model.embed` of all zeros.

Implementation: Captum's `IntegratedGradients` on the output of `model.embed`, through
`model.forward_embedded` (model(tokens, lengths) == model.forward_embedded(model.embed(tokens),
lengths)). That is exactly `LayerIntegratedGradients` on the embedding layer (a test checks
both agree), and it needs nothing else from a model, so every family in the model registry
works unchanged. The model is a private copy in gradient mode (train mode with every dropout
off: cuDNN refuses RNN backward in eval mode, captum issues 564, 328, 1159) with its parameters
frozen (only input gradients are taken). Texts go through in groups, sorted by length, each
group's n_steps points in as few forward/backward passes of `internal_batch_size` rows as
fit; padding after a text gets no attribution and does not change the text's (a test checks).

Limit, measured here: completeness can fail on trained models and long texts, because the
output jumps along the straight path. On the demo's LSTM (IMDB, 3 epochs, 85% test accuracy)
one 256-token review's log-odds fall by 10.6 between two points 5e-7 apart on the path (in
float64); for another (240 tokens) 50, 200 and 800 steps leave Captum's delta at -11.8,
-11.5 and -12.3, in float32 and float64 alike. 17 of 20 reviews of 200-400
tokens had a gap above 5% for that LSTM and the RNN, 11 of 20 for the GRU (an all-<unk>
baseline did no better for the RNN). Every text therefore keeps its gap and Captum's delta,
the tables count the "complete" texts (gap <= 5%), and `predict --explain` warns.

The diagnostic (`rnnlab diagnose attribution`) attributes N texts of at least L tokens for
every model and asks where the evidence sits: the share of |attribution| in each tenth of the
text, averaged over texts. A model that forgets what it read early puts most of it in the
last tenth.

result.json (`"kind": "attribution"`):
  dataset, split, texts (asked for), min_len, max_tokens, n_steps, target ("predicted" or
  "label"), show, label_names, seed, device, method, baseline,
  models: one object per model with label, kind, source, seconds,
    shares: 10 numbers, the mean over texts of each tenth's share of the text's |attribution|,
    texts: one object per text with row (index in the split), label (class id), target (the
      class explained), probability (p(target | text)), score (f(x): the log-odds of the target),
      baseline_score (f(baseline)), delta (Captum's convergence delta), tokens (the token
      strings the model read), scores (one attribution per token, 6 significant digits).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.config import check_positive
from rnnlab.data.text import word_tokenizer
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.gradients import gradient_mode, private_copy
from rnnlab.diagnostics.inputs import Inputs, Logger, ModelEntry
from rnnlab.diagnostics.result import (
    FigureSpec,
    Result,
    ShadedColumn,
    ShadedText,
    ShadedToken,
)
from rnnlab.diagnostics.texts import long_texts, make_batch
from rnnlab.errors import RnnlabError, check
from rnnlab.formatting import MISSING, pct, sci, sig
from rnnlab.models.families import colors
from rnnlab.plotting import new_figure
from rnnlab.tables import Table

BINS = 10
"""Parts of a text in "where the evidence sits": tenths."""
PAD_ID = 0
METHOD = "integrated gradients (Captum, Gauss-Legendre)"
BASELINE = "the <pad> embedding (id 0) at every position"
TOP = 5
"""Tokens listed for and against per model."""
COMPLETE = 0.05
"""A text's attributions are "complete" when they add up to f(x) - f(baseline) within 5%."""
Split = Literal["test", "val", "train"]


# ----- the computation -------------------------------------------------------------------------
def log_probabilities(logits: Tensor) -> Tensor:
    """(B, C) logits -> (B, K) log-probabilities: log_softmax, or for a single-logit binary
    head (C = 1) [log sigmoid(-z), log sigmoid(z)] (computed stably either way)."""
    if logits.shape[-1] == 1:
        z = logits[:, 0]
        return torch.stack([F.logsigmoid(-z), F.logsigmoid(z)], dim=-1)
    return torch.log_softmax(logits, dim=-1)


def log_odds(logits: Tensor) -> Tensor:
    """(B, C) logits -> (B, K) log-odds of every class, log p_k - log(1 - p_k), computed as
    log p_k - logsumexp_{j != k} log p_j (stable: no 1 - p). Two classes: +-(z_1 - z_0)."""
    lp = log_probabilities(logits)  # (B, K)
    own = torch.eye(lp.shape[-1], dtype=torch.bool, device=lp.device)  # (K, K)
    others = lp[:, None, :].masked_fill(own, float("-inf")).logsumexp(dim=-1)  # (B, K)
    return lp - others


@dataclass
class TokenAttributions:
    """Integrated Gradients of a batch of texts, on the CPU (float64)."""

    scores: np.ndarray  # (B, T) attribution per token, 0 past each text's length
    lengths: np.ndarray  # (B,)
    targets: np.ndarray  # (B,) the class explained
    log_probs: np.ndarray  # (B, K) log p(class | text)
    score: np.ndarray  # (B,) f(x): log-odds of the target, log p - log(1 - p)
    baseline_score: np.ndarray  # (B,) f(baseline)
    delta: np.ndarray  # (B,) Captum's convergence delta: sum(scores) - (f(x) - f(baseline))

    @property
    def gap(self) -> np.ndarray:
        """(B,) sum of attributions - (f(x) - f(baseline)), from our own forward passes."""
        return self.scores.sum(axis=1) - (self.score - self.baseline_score)


def _chunking(texts: int, n_steps: int, rows: int) -> int:
    """Captum's internal_batch_size for `texts` texts: the steps split into equal passes of
    at most `rows` (text, step) rows (one step per pass at least)."""
    passes = math.ceil(texts * n_steps / max(rows, texts))
    return texts * math.ceil(n_steps / passes)


def attribute(
    model: nn.Module,
    tokens: Tensor,
    lengths: Tensor,
    targets: Tensor | Sequence[int] | None = None,
    *,
    n_steps: int = 50,
    internal_batch_size: int = 500,
    device: torch.device | str | None = None,
) -> TokenAttributions:
    """Integrated Gradients of every token toward `targets` (None: each text's predicted class).

    tokens (B, T) int64 ids (or (B, T, F) features), padded on the right, and lengths (B,).
    Runs on a private copy of `model` on `device` (default: where its parameters are), so the
    caller's model, its mode and its gradients are untouched. Subnormal flushing and threads
    are the caller's (suite.run_one, api.explain set them).
    """
    # captum is a heavy import (it pulls in matplotlib); loaded on first use only
    from captum.attr import IntegratedGradients

    check_positive_int(n_steps, "n_steps")
    check_positive_int(internal_batch_size, "internal_batch_size")
    if device is None:
        device = next(model.parameters()).device
    target_device = torch.device(device)
    twin = private_copy(model, target_device)
    for param in twin.parameters():
        param.requires_grad_(False)
    lengths = lengths.detach().to("cpu", torch.int64)
    batch = tokens.shape[0]
    check(batch > 0, "no texts to attribute")
    check(bool((lengths > 0).all()), "a text has no tokens; give it at least one")

    def forward(x: Tensor, steps: Tensor) -> Tensor:
        return log_odds(twin.forward_embedded(x, steps))  # type: ignore[operator]  # (B, K)

    ig = IntegratedGradients(forward)
    scores = np.zeros(tuple(tokens.shape[:2]), dtype=np.float64)
    log_probs: list[np.ndarray] = [np.zeros(0)] * batch
    chosen = np.zeros(batch, dtype=np.int64)
    score, baseline_score, delta = (np.zeros(batch) for _ in range(3))
    given = None if targets is None else torch.as_tensor(targets, dtype=torch.int64).cpu()
    order = torch.argsort(lengths, descending=True, stable=True)
    group = min(batch, internal_batch_size)
    with gradient_mode(twin):
        for start in range(0, batch, group):
            rows = order[start : start + group]
            steps = lengths[rows]
            width = int(steps.max())
            ids = tokens[rows][:, :width].to(target_device)  # (G, W) or (G, W, F)
            x = twin.embed(ids).detach()  # type: ignore[operator]  # (G, W, E)
            pad = torch.full_like(ids, PAD_ID) if not ids.is_floating_point() else ids * 0
            base = twin.embed(pad).detach()  # type: ignore[operator]  # (G, W, E)
            with torch.no_grad():
                logits = twin.forward_embedded(x, steps)  # type: ignore[operator]  # (G, C)
                lp_x, f_x, f_b = log_probabilities(logits), log_odds(logits), forward(base, steps)
            aim = lp_x.argmax(dim=-1) if given is None else given[rows].to(target_device)
            attr, conv = ig.attribute(
                x, baselines=base, target=aim, additional_forward_args=(steps,),
                n_steps=n_steps, method="gausslegendre",
                internal_batch_size=_chunking(len(rows), n_steps, internal_batch_size),
                return_convergence_delta=True,
            )  # fmt: skip
            per_token = attr.detach().double().sum(dim=-1).cpu()  # (G, W)
            mask = torch.arange(width)[None, :] < steps[:, None]
            per_token = per_token * mask
            idx = rows.numpy()
            scores[idx, :width] = per_token.numpy()
            picked = aim.cpu()
            chosen[idx] = picked.numpy()
            gather = picked[:, None].to(lp_x.device)
            score[idx] = f_x.gather(1, gather)[:, 0].double().cpu().numpy()
            baseline_score[idx] = f_b.gather(1, gather)[:, 0].double().cpu().numpy()
            delta[idx] = conv.detach().double().cpu().numpy()
            for i, row in enumerate(idx):
                log_probs[row] = lp_x[i].detach().double().cpu().numpy()
    return TokenAttributions(
        scores, lengths.numpy(), chosen, np.stack(log_probs), score, baseline_score, delta
    )


def check_positive_int(value: Any, name: str) -> None:
    check(
        isinstance(value, int) and not isinstance(value, bool) and value > 0,
        f"{name} must be a positive integer (got {value!r})",
    )


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


def sig6(x: float) -> float:
    return float(f"{x:.6g}")


# ----- explaining new texts (rnnlab predict --explain) -----------------------------------------
def token_strings(encoder: Any, text: str, ids: Sequence[int]) -> list[str]:
    """The tokens of `text` as the encoder cut them (the words, where the model reads <unk>),
    falling back to the vocabulary's strings when the two do not line up."""
    words: list[str] | None = None
    normalized = encoder.normalizer(text)
    if encoder.vocab is not None:
        words = word_tokenizer(encoder.tokenizer)(normalized)
    elif encoder.hf_tokenizer is not None:
        words = list(encoder.hf_tokenizer.encode(normalized, add_special_tokens=False).tokens)
    if words is not None:
        words = list(encoder.truncate_ids(words))  # head or tail, as the ids were cut
    if words is None or len(words) != len(ids):
        itos = encoder.itos
        return [itos[int(i)] if 0 <= int(i) < len(itos) else str(int(i)) for i in ids]
    return words


@dataclass
class Explanation:
    """One text's prediction and the attribution of each of its tokens toward `target`."""

    text: str
    label: str
    """The predicted class."""
    probabilities: dict[str, float]
    target: str
    """The class the attributions point toward (the predicted one unless asked otherwise)."""
    tokens: list[str]
    """The tokens the model read (after truncation), as they appear in the text."""
    ids: list[int]
    scores: list[float]
    """Attribution of each token: > 0 makes `target` more likely, < 0 less."""
    score: float
    """f(x): the log-odds of `target`, log p - log(1 - p)."""
    baseline_score: float
    """f(baseline): the same for a text of as many <pad> tokens."""
    delta: float
    """Captum's convergence delta: sum(scores) - (f(x) - f(baseline)) by its own passes."""
    n_steps: int
    method: str = METHOD
    baseline: str = BASELINE

    @property
    def total(self) -> float:
        return float(sum(self.scores))

    @property
    def difference(self) -> float:
        """f(x) - f(baseline): what the attributions should add up to."""
        return self.score - self.baseline_score

    @property
    def gap(self) -> float:
        """The completeness gap: sum of attributions - (f(x) - f(baseline))."""
        return self.total - self.difference

    @property
    def relative_gap(self) -> float | None:
        """|gap| / |f(x) - f(baseline)| (None when the difference is 0)."""
        return abs(self.gap) / abs(self.difference) if self.difference != 0 else None

    def top(self, k: int = TOP, *, against: bool = False) -> list[tuple[str, float]]:
        """The k tokens with the largest attribution for `target` (or against it)."""
        sign = -1.0 if against else 1.0
        ranked = sorted(range(len(self.scores)), key=lambda i: -sign * self.scores[i])
        return [(self.tokens[i], self.scores[i]) for i in ranked[:k] if sign * self.scores[i] > 0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "probabilities": self.probabilities,
            "target": self.target,
            "tokens": [
                {"token": t, "id": i, "score": s}
                for t, i, s in zip(self.tokens, self.ids, self.scores, strict=True)
            ],
            "sum": self.total,
            "f_x": self.score,
            "f_baseline": self.baseline_score,
            "difference": self.difference,
            "gap": self.gap,
            "relative_gap": self.relative_gap,
            "delta": self.delta,
            "n_steps": self.n_steps,
            "method": self.method,
            "baseline": self.baseline,
            "f": "log-odds of target: log p - log(1 - p)",
        }


def explain_texts(
    model: nn.Module,
    encoder: Any,
    label_names: Sequence[str],
    texts: Sequence[str],
    *,
    target: str | None = None,
    n_steps: int = 50,
    internal_batch_size: int = 500,
    device: torch.device | str = "cpu",
) -> list[Explanation]:
    """Attributions of every token of every text toward its predicted class (or `target`).

    Texts are encoded as the model was trained (the encoder's truncation); checks of the texts
    themselves (empty ones) are the caller's (api.explain)."""
    check(
        encoder is not None,
        "this model has no text encoder (synthetic inputs); it cannot read text",
    )
    if target is not None and target not in label_names:
        raise RnnlabError(f"unknown class {target!r}; choose one of {', '.join(label_names)}")
    encoded = encoder.encode_many(list(texts))
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.int64)
    tokens = torch.zeros(len(encoded), int(lengths.max()), dtype=torch.int64)
    for i, ids in enumerate(encoded):
        tokens[i, : len(ids)] = torch.from_numpy(ids)
    aims = None if target is None else [list(label_names).index(target)] * len(encoded)
    found = attribute(
        model, tokens, lengths, aims, n_steps=n_steps,
        internal_batch_size=internal_batch_size, device=device,
    )  # fmt: skip
    out = []
    for i, (text, ids) in enumerate(zip(texts, encoded, strict=True)):
        probs = np.exp(found.log_probs[i])
        n = len(ids)
        out.append(
            Explanation(
                text=text,
                label=label_names[int(probs.argmax())],
                probabilities={name: float(p) for name, p in zip(label_names, probs, strict=True)},
                target=label_names[int(found.targets[i])],
                tokens=token_strings(encoder, text, ids.tolist()),
                ids=[int(v) for v in ids],
                scores=[float(v) for v in found.scores[i, :n]],
                score=float(found.score[i]),
                baseline_score=float(found.baseline_score[i]),
                delta=float(found.delta[i]),
                n_steps=n_steps,
            )
        )
    return out


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


@dataclass
class TextAttribution:
    row: int
    label: int
    target: int
    probability: float
    score: float
    baseline_score: float
    delta: float
    tokens: list[str]
    scores: list[float]

    @property
    def gap(self) -> float:
        return sum(self.scores) - (self.score - self.baseline_score)

    @property
    def relative_gap(self) -> float | None:
        difference = self.score - self.baseline_score
        return abs(self.gap) / abs(difference) if difference != 0 else None

    @property
    def complete(self) -> bool:
        """The attributions add up to f(x) - f(baseline) within COMPLETE (5%)."""
        gap = self.relative_gap
        return abs(self.gap) < 1e-6 if gap is None else gap <= COMPLETE


@dataclass
class ModelAttribution:
    label: str
    kind: str
    source: str
    shares: list[float]
    texts: list[TextAttribution]
    seconds: float

    @property
    def complete(self) -> int:
        """Texts whose attributions add up to f(x) - f(baseline) within 5%."""
        return sum(t.complete for t in self.texts)

    def strongest(self, *, against: bool = False, k: int = TOP) -> list[tuple[str, float]]:
        sign = -1.0 if against else 1.0
        pairs = [(tok, s) for t in self.texts for tok, s in zip(t.tokens, t.scores, strict=True)]
        pairs.sort(key=lambda p: -sign * p[1])
        return [p for p in pairs[:k] if sign * p[1] > 0]


def reading(models: Sequence[ModelAttribution]) -> str:
    """ "rnn puts 71% of its evidence in the last tenth; lstm 24%" (an even spread: 10%)."""
    if not models:
        return ""
    first, *rest = models
    parts = [f"{first.label} puts {pct(first.shares[-1], 0)} of its evidence in the last tenth"]
    parts += [f"{m.label} {pct(m.shares[-1], 0)}" for m in rest]
    return "; ".join(parts) + f" (an even spread would put {pct(1 / BINS, 0)} in each tenth)."


def share_cell(x: float) -> str:
    """A share of the evidence: 71.2%; below 0.1% just that (an untrained RNN's first tenths
    hold 1e-15 of it)."""
    return pct(x) if x >= 0.001 else "<0.1%"


def _tenths() -> list[str]:
    return [f"{10 * i}-{10 * (i + 1)}%" for i in range(BINS)]


@dataclass
class AttributionResult(Result):
    kind = "attribution"

    dataset: str
    split: str
    texts: int
    min_len: int
    max_tokens: int | None
    n_steps: int
    target: str
    show: int
    label_names: list[str]
    seed: int
    device: str
    method: str = METHOD
    baseline: str = BASELINE
    models: list[ModelAttribution] = field(default_factory=list)

    @property
    def reading(self) -> str:
        return reading(self.models)

    @property
    def completeness(self) -> str:
        """How many texts the attributions account for, per model, and why the rest fall short."""
        if not self.models:
            return ""
        counts = "; ".join(f"{m.label} {m.complete} of {len(m.texts)}" for m in self.models)
        text = (
            f"Attributions add up to f(x) - f(baseline) within {pct(COMPLETE, 0)} for {counts} "
            "texts."
        )
        if any(m.complete < len(m.texts) for m in self.models):
            text += (
                " Where they do not, the model's output changes abruptly somewhere on the "
                "straight line from the baseline to the text and a sum over n_steps points "
                "misses that step; those texts' attributions cover the smooth part of the path "
                "only."
            )
        return text

    def _name(self, label: int) -> str:
        return self.label_names[label] if 0 <= label < len(self.label_names) else str(label)

    def _what(self) -> str:
        used = len(self.models[0].texts) if self.models else 0
        span = f"at least {self.min_len} tokens"
        if self.max_tokens is not None:
            span += f", cut to their first {self.max_tokens}"
        return f"{used} {self.dataset} {self.split} texts of {span}"

    def tables(self) -> list[Table]:
        shares = Table(
            f"Where the evidence sits: share of |attribution| in each tenth of the text "
            f"({self._what()})",
            ["model", *_tenths()],
            [[m.label, *(share_cell(s) for s in m.shares)] for m in self.models],
            [self.reading],
            row_ids=[f"attribution-{m.label}" for m in self.models],
        )
        rows = []
        for m in self.models:
            gaps = [g for g in (t.relative_gap for t in m.texts) if g is not None]
            agree = sum(t.target == t.label for t in m.texts)
            rows.append(
                [
                    m.label,
                    str(len(m.texts)),
                    f"{agree}/{len(m.texts)}",
                    sig(float(np.mean([t.probability for t in m.texts]))),
                    f"{m.complete}/{len(m.texts)}",
                    pct(float(np.median(gaps))) if gaps else MISSING,
                    sci(max(abs(t.delta) for t in m.texts)),
                    f"{m.seconds:.1f}",
                ]
            )
        explained = "predicted class" if self.target == "predicted" else "true label"
        summary = Table(
            f"Integrated gradients toward each model's {explained} ({self.n_steps} steps, "
            f"baseline: {self.baseline})",
            ["model", "texts", "target = label", "mean p(target)", "complete",
             "median gap", "max |delta|", "seconds"],
            rows,
            [
                "gap: |sum of attributions - (f(x) - f(baseline))| / |f(x) - f(baseline)|, "
                "f = log-odds of the target, log p - log(1 - p); complete: texts with a gap of "
                f"at most {pct(COMPLETE, 0)}; delta: Captum's convergence delta (the same "
                "difference, from its own passes)",
                self.completeness,
            ],
        )  # fmt: skip
        top = Table(
            f"Strongest tokens over the {len(self.models[0].texts) if self.models else 0} texts",
            ["model", f"for the {explained}", "against"],
            [
                [m.label, _pairs(m.strongest()), _pairs(m.strongest(against=True))]
                for m in self.models
            ],
            numeric=[False, False, False],
        )
        return [shares, summary, top]

    def figures(self) -> list[FigureSpec]:
        caption = [
            self.reading,
            f"Share of each text's |attribution| that falls in each tenth of it, from the "
            f"first 10% of the tokens to the last, averaged over {self._what()}.",
            self.completeness,
        ]
        specs = [
            FigureSpec(
                "attribution_position.png", "Where the evidence sits", caption, self._draw_position
            )
        ]
        if self.models and self.models[0].texts:
            text = self.models[0].texts[0]
            specs.append(
                FigureSpec(
                    "attribution_text.png",
                    "Attribution along one text",
                    [
                        f"Attribution of every token of {self.split} text {text.row} (label "
                        f"{self._name(text.label)}, {len(text.tokens)} tokens) toward each "
                        f"model's {'predicted class' if self.target == 'predicted' else 'label'}"
                        ": above the line for it, below against it."
                    ],
                    self._draw_text,
                )
            )
        return specs

    def _draw_position(self) -> Any:
        palette = colors([m.label for m in self.models], [m.kind for m in self.models])
        fig, axes = new_figure(1, 1, f"where the evidence sits: {self._what()}", width=7.5)
        ax = axes[0][0]
        width = 0.8 / max(len(self.models), 1)
        centers = np.arange(BINS)
        for i, m in enumerate(self.models):
            ax.bar(
                centers + (i - (len(self.models) - 1) / 2) * width,
                [100 * s for s in m.shares], width, label=m.label, color=palette[m.label],
            )  # fmt: skip
        ax.axhline(100 / BINS, color="0.4", lw=0.8, ls="--", label="even spread")
        ax.set_xticks(centers, _tenths(), fontsize=8)
        ax.set_xlabel("position in the text (tenths, first to last)")
        ax.set_ylabel("share of |attribution| (%)")
        ax.legend(fontsize=8)
        return fig

    def _draw_text(self) -> Any:
        palette = colors([m.label for m in self.models], [m.kind for m in self.models])
        n = len(self.models)
        fig, axes = new_figure(n, 1, f"attribution along one {self.dataset} text", width=7.5,
                               height=1.8)  # fmt: skip
        for ax, m in zip(axes[:, 0], self.models, strict=True):
            text = m.texts[0]
            ax.bar(range(len(text.scores)), text.scores, width=1.0, color=palette[m.label])
            ax.axhline(0, color="0.3", lw=0.6)
            ax.set_title(
                f"{m.label}: toward {self._name(text.target)} (p={text.probability:.2f})",
                fontsize=9,
            )
        axes[-1][0].set_xlabel("token position")
        return fig

    def shaded_texts(self) -> list[ShadedText]:
        out = []
        count = min([self.show, *(len(m.texts) for m in self.models)]) if self.models else 0
        for i in range(count):
            first = self.models[0].texts[i]
            columns = []
            for m in self.models:
                t = m.texts[i]
                scale = max((abs(s) for s in t.scores), default=0.0) or 1.0
                columns.append(
                    ShadedColumn(
                        m.label,
                        f"toward {self._name(t.target)}, p={t.probability:.2f}",
                        [ShadedToken(tok, s / scale, s) for tok, s in zip(t.tokens, t.scores, strict=True)],
                    )
                )  # fmt: skip
            out.append(
                ShadedText(
                    f"{self.split} text {first.row}: label {self._name(first.label)}, "
                    f"{len(first.tokens)} tokens",
                    columns,
                )
            )
        return out


def _pairs(pairs: Sequence[tuple[str, float]]) -> str:
    return ", ".join(f"{tok} {s:+.3g}" for tok, s in pairs) or MISSING


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
