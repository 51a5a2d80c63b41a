"""Explaining a prediction: which tokens drove it, by Integrated Gradients.

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

Used by `rnnlab predict --explain` (`explain_texts`) and by the attribution diagnostic
(rnnlab.diagnostics.attribution).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.data.text import word_tokenizer
from rnnlab.diagnostics.gradients import gradient_mode, private_copy
from rnnlab.errors import RnnlabError, check

PAD_ID = 0
METHOD = "integrated gradients (Captum, Gauss-Legendre)"
BASELINE = "the <pad> embedding (id 0) at every position"
COMPLETE = 0.05
"""A text's attributions are "complete" when they add up to f(x) - f(baseline) within 5%."""
TOP = 5
"""Tokens listed for and against a class."""


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
