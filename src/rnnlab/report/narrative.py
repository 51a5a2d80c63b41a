"""Sentences computed from the saved numbers: every number in them comes from a result file.

Each function takes plain values (already read from JSON) and returns a list of sentences; the
numbers are formatted by rnnlab.formatting, as in the tables, so they read the same everywhere.
The diagnostics' own sentences live with their results (`Result.figures()` captions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rnnlab.formatting import count, factor, frac, is_num, names_list, num, pct, seconds, sig


# ----- training ----------------------------------------------------------------------------------
@dataclass
class ModelScore:
    name: str
    accuracy: float | None
    macro_f1: float | None
    seconds_per_epoch: float | None
    tokens_per_s: float | None
    majority_share: float | None = None
    """Test share of the most common class (what always guessing it would score)."""
    mse: float | None = None


def comparison(scores: Sequence[ModelScore]) -> list[str]:
    """Who is most accurate and who is fastest, with the numbers of the table."""
    out: list[str] = []
    ranked = sorted(
        ((s, float(s.accuracy)) for s in scores if is_num(s.accuracy)), key=lambda p: -p[1]
    )
    if ranked:
        best, best_acc = ranked[0]
        others = ", ".join(f"{s.name} {pct(a)}" for s, a in ranked[1:])
        f1 = f" (macro-F1 {frac(best.macro_f1)})" if is_num(best.macro_f1) else ""
        text = f"Highest test accuracy: {best.name} with {pct(best_acc)}{f1}"
        out.append(text + (f"; {others}." if others else "."))
        if is_num(best.majority_share):
            majority = float(best.majority_share)
            below = [s.name for s, a in ranked if a <= majority + 1e-9]
            line = f"Always answering the most common test label would score {pct(majority)}"
            if not below:
                line += "; every model beats that baseline."
            else:
                who = "it has" if len(below) == 1 else "they have"
                line += (
                    f"; {names_list(below)} did no better than that, so {who} not learned "
                    "the task yet (train longer or on more data)."
                )
            out.append(line)
        for s, acc in ranked:
            if is_num(s.macro_f1) and acc - float(s.macro_f1) > 0.1:
                out.append(
                    f"{s.name}'s macro-F1 ({frac(s.macro_f1)}) is well below its accuracy "
                    f"({frac(acc)}): it favours some classes over others."
                )
    errors = sorted((float(s.mse), s.name) for s in scores if is_num(s.mse))
    if errors:
        out.append("Lowest test MSE: " + ", ".join(f"{n} {sig(m)}" for m, n in errors) + ".")
    timed = sorted(
        (float(s.seconds_per_epoch), s.tokens_per_s, s.name)
        for s in scores
        if is_num(s.seconds_per_epoch)
    )
    if len(timed) >= 2:
        (fast_s, fast_tps, fast), (slow_s, _, slow) = timed[0], timed[-1]
        tps = f" ({count(fast_tps)} tokens/s)" if is_num(fast_tps) else ""
        out.append(
            f"Fastest: {fast} at {seconds(fast_s)} per epoch{tps}; slowest: {slow} at "
            f"{seconds(slow_s)} ({slow_s / max(fast_s, 1e-12):.1f}x as long). Timings share "
            "the machine with whatever else ran at the time."
        )
    return out


def curves(name: str, history: Sequence[Mapping[str, Any]], best_epoch: Any) -> list[str]:
    """What one run's learning curves show."""
    if not history:
        return [f"{name} recorded no finished epoch."]
    first, last = history[0], history[-1]
    n = len(history)
    out = []
    loss0, loss1 = first.get("train_loss"), last.get("train_loss")
    if n == 1:
        text = f"{name} trained for 1 epoch, so each curve is a single point"
        if is_num(loss1):
            text += f" (training loss {sig(loss1)}"
            if is_num(last.get("val_accuracy")):
                text += f", validation accuracy {pct(last['val_accuracy'])}"
            text += ")"
        out.append(text + "; train for more epochs to see a trend.")
        return out
    if is_num(loss0) and is_num(loss1):
        out.append(
            f"Over {n} epochs the training loss of {name} went from {sig(loss0)} to {sig(loss1)}."
        )
    if is_num(first.get("val_accuracy")) and is_num(last.get("val_accuracy")):
        out.append(
            f"Validation accuracy went from {pct(first['val_accuracy'])} to "
            f"{pct(last['val_accuracy'])}."
        )
    best = next((r for r in history if r.get("epoch") == best_epoch), None)
    if best is not None:
        val = best.get("val_accuracy")
        extra = f" (validation accuracy {pct(val)})" if is_num(val) else ""
        out.append(f"Best epoch: {best_epoch}{extra}; its weights are the ones saved and tested.")
    vl0, vl1 = first.get("val_loss"), last.get("val_loss")
    if (
        is_num(vl0)
        and is_num(vl1)
        and is_num(loss0)
        and is_num(loss1)
        and vl1 > vl0
        and loss1 < loss0
    ):
        out.append(
            "Training loss falls while validation loss rises: the model has begun to overfit."
        )
    return out


def compare_curves(names: Sequence[str]) -> list[str]:
    return [
        f"Learning curves of {names_list(list(names))} on one set of axes: solid lines are "
        "validation, dashed lines training.",
        "Where a dashed line keeps falling and its solid line turns up, that model overfits.",
    ]


def confusion(name: str, labels: Sequence[str], matrix: Sequence[Sequence[float]]) -> list[str]:
    """One sentence per model on its confusion matrix."""
    total = sum(sum(row) for row in matrix)
    if total <= 0:
        return []
    column_sums = [sum(row[j] for row in matrix) for j in range(len(labels))]
    used = [j for j, c in enumerate(column_sums) if c > 0]
    correct = sum(matrix[i][i] for i in range(len(labels)))
    if len(used) == 1 and len(labels) > 1:
        return [
            f"{name} predicts only \u201c{labels[used[0]]}\u201d ({count(column_sums[used[0]])} "
            f"of {count(total)} test texts): it has not learned to separate the classes yet."
        ]
    errors = [
        (matrix[i][j], i, j)
        for i in range(len(labels))
        for j in range(len(labels))
        if i != j and matrix[i][j] > 0
    ]
    if not errors:
        return [f"{name} classifies all {count(total)} test texts correctly."]
    n, i, j = max(errors)
    support = sum(matrix[i])
    return [
        f"{name}: {count(correct)} of {count(total)} correct; its most common mistake is "
        f"\u201c{labels[i]}\u201d read as \u201c{labels[j]}\u201d ({count(n)} of "
        f"{count(support)} such texts)."
    ]


def per_class_f1(rows: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The weakest class over all models."""
    worst: tuple[float, str, str] | None = None
    for model, per_class in rows.items():
        for label, f1 in per_class.items():
            if is_num(f1) and (worst is None or f1 < worst[0]):
                worst = (float(f1), model, label)
    if worst is None:
        return []
    return [
        f"The weakest class is \u201c{worst[2]}\u201d for {worst[1]} (F1 {frac(worst[0])}); "
        "per-class F1 shows which labels a model confuses, which accuracy alone hides."
    ]


MIN_BUCKET = 10
"""Length buckets with fewer test texts are left out of the sentence (too noisy)."""


def accuracy_by_length(series: Mapping[str, Sequence[tuple[str, float, int]]]) -> list[str]:
    """Shortest vs longest length bucket per model: (bucket, accuracy, count) points."""
    parts = []
    for name, all_points in series.items():
        points = [p for p in all_points if p[2] >= MIN_BUCKET] or list(all_points)
        if len(points) >= 2:
            (b0, a0, _), (b1, a1, _) = points[0], points[-1]
            parts.append(f"{name} {pct(a0)} on {b0} tokens vs {pct(a1)} on {b1}")
    if not parts:
        return []
    return [
        "Test accuracy of the trained models per length bucket: " + "; ".join(parts) + ".",
        f"Buckets with fewer than {MIN_BUCKET} texts are left out of this sentence (too noisy); "
        "the table gives every bucket with its number of texts.",
    ]


# ----- dataset and models ------------------------------------------------------------------------
def dataset(
    name: str,
    sizes: Mapping[str, int],
    labels: Sequence[str],
    vocab_size: Any,
    unk_share: Any = None,
) -> list[str]:
    split_text = ", ".join(f"{count(n)} {split}" for split, n in sizes.items())
    out = [
        f"{name}: {split_text} texts with {len(labels)} labels ({names_list([str(x) for x in labels])})."
    ]
    if is_num(vocab_size) and vocab_size:
        out.append(f"The vocabulary holds {count(vocab_size)} entries, <pad> and <unk> included.")
    if is_num(unk_share):
        out.append(
            f"{pct(unk_share, 2)} of the test tokens are <unk> (words the vocabulary does not know)."
        )
    return out


def length_histogram(
    edges: Sequence[float],
    counts: Sequence[float],
    max_len: Any,
    median: Any,
    p95: Any,
    truncated: Any = None,
    truncate: Any = "head",
) -> list[str]:
    """`truncated`: how many training texts are longer than max_len, when the summary says;
    `truncate`: which part of them is kept (head or tail)."""
    out = ["Each bar counts the training texts of that many tokens (before truncation)."]
    lost = "beginning" if truncate == "tail" else "end"
    if is_num(median) and is_num(p95):
        out.append(f"Half the texts have at most {count(median)} tokens; 95% at most {count(p95)}.")
    total = sum(counts)
    if not (is_num(max_len) and max_len and total > 0):
        return out
    if is_num(truncated):
        out.append(
            f"{pct(truncated / total)} of them ({count(truncated)} of {count(total)}) are longer "
            f"than max_len = {count(max_len)} (right of the dashed line) and lose their {lost} to "
            "truncation."
        )
    elif len(edges) == len(counts) + 1:
        above = sum(c for c, lo in zip(counts, edges[:-1], strict=True) if lo >= max_len)
        out.append(
            f"At least {pct(above / total)} of them are longer than max_len = {count(max_len)} "
            f"(right of the dashed line) and lose their {lost} to truncation."
        )
    return out


def parameters(rows: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[str]:
    """(name, kind, parameters dict) per model."""
    out: list[str] = []
    with_total = [(n, k, p) for n, k, p in rows if is_num(p.get("total"))]
    if not with_total:
        return out
    name, _, p = with_total[0]
    emb = p.get("embedding")
    if is_num(emb) and p["total"]:
        out.append(
            f"In {name}, the embedding holds {count(emb)} of {count(p['total'])} parameters "
            f"({pct(emb / p['total'])}): the vocabulary, not the recurrent cell, dominates the size."
        )
    recurrent = {k: v for _, k, p in with_total if (v := num(p.get("recurrent")))}
    base = recurrent.get("rnn")
    if base:
        ratios = [f"{k.upper()} {factor(v / base)}" for k, v in recurrent.items() if k != "rnn"]
        if ratios:
            out.append(
                f"Recurrent weights relative to the vanilla RNN ({count(base)}): "
                + ", ".join(ratios)
                + " — an LSTM step computes 4 gate blocks, a GRU 3, an RNN 1."
            )
    return out


def mixed_datasets(names: Sequence[str]) -> str:
    return (
        f"These results come from different datasets ({names_list(list(names))}); numbers "
        "from different datasets are not comparable with each other."
    )
