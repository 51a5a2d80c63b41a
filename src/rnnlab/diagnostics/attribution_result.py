"""The attribution diagnostic's result: per model, where the evidence sits (the share of
|attribution| in each tenth of the text) and every text's token attributions; its tables, its
figures and the texts the report shades token by token.

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnlab.diagnostics.explain import BASELINE, COMPLETE, METHOD, TOP
from rnnlab.diagnostics.result import (
    FigureSpec,
    Result,
    ShadedColumn,
    ShadedText,
    ShadedToken,
)
from rnnlab.formatting import MISSING, pct, sci, sig
from rnnlab.models.families import colors
from rnnlab.plotting import new_figure
from rnnlab.tables import Table

BINS = 10
"""Parts of a text in "where the evidence sits": tenths."""


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
