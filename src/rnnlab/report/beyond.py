"""The "Beyond recurrence" chapter: the bag of n-grams, the parallel scan and attention next to
the recurrent cells, in one table, and the notebooks' two untested claims answered from it.

Which model is recurrent, parallel or order-blind comes from the family registry
(rnnlab.models.family); every comparison is a finding under the seed rule (report.findings).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnlab.formatting import cell, is_num, num, pct, sci
from rnnlab.models.family import BAG, FAMILIES
from rnnlab.report.collect import Collection, TrainingRun
from rnnlab.report.findings import Finding, by_id, findings, pair_id
from rnnlab.report.page import Section
from rnnlab.report.sections import run_labels
from rnnlab.runs.compare import RULE
from rnnlab.stats import mean_std
from rnnlab.tables import Table


def results_of(c: Collection, kind: str) -> list[Any]:
    """The loaded results of one diagnostic kind."""
    return [r.result for r in c.results if r.kind == kind and r.result is not None]


def _verdict(finding: Finding | None, a: str, b: str) -> tuple[str, str]:
    """(outcome, words) of a against b from their compare finding (the seed rule): "better",
    "worse", "tie" (not settled with the seeds run) or "untested"."""
    if finding is None:
        return "untested", f"{a} and {b} were not tested on the same texts"
    if finding.winner is None:
        return "tie", finding.reading
    return ("better" if finding.winner == a else "worse"), finding.reading


def seed_accuracies(c: Collection) -> dict[tuple[Path, str], list[float]]:
    """(folder, model) -> the test accuracy of each of its seeds' runs."""
    out: dict[tuple[Path, str], list[float]] = {}
    for run in c.main_runs:
        if is_num(run.test.get("accuracy")):
            key = (run.path.parent.resolve(), run.model_name)
            out.setdefault(key, []).append(float(run.test["accuracy"]))
    return out


def timing_slopes(c: Collection) -> dict[str, float]:
    """Model label (the diagnosed run's folder name) -> the slope of its padded forward +
    backward time per batch against T (the timing diagnostic; subnormals flushed if measured)."""
    slopes: dict[str, float] = {}
    for timing in results_of(c, "timing"):
        for m in timing.models:
            flush = "on" if "on" in timing.flush_denormal else timing.flush_denormal[0]
            t = m.timing("padded", flush)
            if t is not None and t.forward_backward_fit.slope is not None:
                slopes[m.label] = t.forward_backward_fit.slope
    return slopes


def beyond_section(c: Collection) -> Section | None:
    """'Beyond recurrence': the bag of n-grams, the parallel scan and attention next to the
    recurrent cells, in one table, and the notebooks' two untested claims answered from it."""
    runs = [r for r in c.model_runs if r.kind in FAMILIES]
    if not any(not FAMILIES[r.kind].serial for r in runs):  # a model beyond the serial cells
        return None
    labels = run_labels(runs)
    seeds = seed_accuracies(c)
    slopes = timing_slopes(c)
    ratios: dict[str, float | None] = {}
    steps: list[int] = []
    for flow in results_of(c, "gradient_flow"):
        steps = steps or list(flow.steps)
        for m in flow.models:
            ratios.setdefault(m.label, m.ratio_x)
    remember: dict[str, float | None] = {}
    longest = None
    for synthetic in results_of(c, "synthetic"):
        if synthetic.task != "remember-first" or not synthetic.lengths:
            continue
        longest = max(synthetic.lengths)
        for s in synthetic.summary:
            if s.length == longest:
                remember[s.model] = s.mean
    rows, by, acc = [], {}, {}
    for run in runs:
        name, diagnosed = labels[id(run)], run.path.name  # diagnostics ran on this (first) seed
        by[name] = run
        values = seeds.get((run.path.parent.resolve(), run.model_name)) or []
        acc[name] = mean_text(values)
        if diagnosed != name and diagnosed in slopes:
            slopes[name] = slopes.pop(diagnosed)
        if diagnosed != name and diagnosed in ratios:
            ratios[name] = ratios.pop(diagnosed)
        rows.append(
            [
                name,
                FAMILIES[run.kind].group,
                acc[name][1],
                cell(run.parameters.get("total"), "count"),
                cell(run.summary.get("train_tokens_per_s"), "count"),
                f"{1e3 * slopes[name]:.3f}" if name in slopes else "—",
                sci(ratios.get(name)) if name in ratios else "—",
                cell(remember.get(run.model_name)) if run.model_name in remember else "—",
            ]
        )
    early_late = f"t={steps[0]} / t={steps[-1]}" if steps else "early / late"
    table = Table(
        "Beyond recurrence: every family on the same data, training and diagnostics",
        ["model", "family", "test accuracy", "parameters", "trained tokens / s",
         "time vs T (ms per step)", f"||dL/dx|| {early_late}",
         f"remember-first, T={longest}" if longest else "remember-first"],
        rows,
        notes=[
            "time vs T: slope of the padded forward + backward time per batch against the "
            "sequence length (the timing diagnostic); ||dL/dx||: the gradient an early input "
            "gets as a share of a late one's (gradient flow, trained models); remember-first: "
            "test accuracy on the synthetic task at its longest length (chance 50%).",
        ],
        numeric=[False, False, True, True, True, True, True, True],
        row_ids=[f"beyond-{n}" for n in by],
    )  # fmt: skip
    pairs = by_id(findings(c))
    section = Section("beyond", "Beyond recurrence", tables=[table])
    section.lead = [
        "The notebooks end on two claims they never test: that a vanilla RNN beats "
        "bag-of-words (word order matters), and that what is left to fix is the serial loop "
        "(“What if we removed recurrence entirely?”). Here they meet a bag of n-grams, "
        "a recurrence that trains as a parallel scan (minGRU / minLSTM) and a small Transformer, "
        "on the same data, with the same training and diagnostics. A difference is called a "
        f"finding only when {RULE} (the paired McNemar test on the same test texts; test "
        "accuracy: mean ± std over the seeds; the diagnostics columns: each model's first "
        "seed's run).",
    ]
    section.lead += _order_claim(by, acc, pairs)
    section.lead += _serial_claim(by, acc, pairs, slopes, ratios, remember, longest)
    return section


Scores = dict[str, tuple[float | None, str]]
"""Model -> (mean test accuracy over its seeds, as text: '87.1% ± 0.4' or '87.1%')."""


def mean_text(values: Sequence[float]) -> tuple[float | None, str]:
    mean, std = mean_std(list(values))
    if mean is None:
        return None, "—"
    return mean, pct(mean) + (f" ± {100 * (std or 0.0):.1f}" if len(values) > 1 else "")


def _pair(pairs: dict[str, Finding], a: str, b: str) -> Finding | None:
    return pairs.get(pair_id(a, b))


def _order_claim(by: dict[str, TrainingRun], acc: Scores, pairs: dict[str, Finding]) -> list[str]:
    """Claim 1: 'unlike bag-of-words, performance is significantly higher' (the vanilla RNN)."""
    bows = [n for n, r in by.items() if FAMILIES[r.kind].group == BAG]
    rnns = [n for n, r in by.items() if r.kind == "rnn"]
    if not bows:
        return [
            "Claim 1 (the vanilla RNN beats bag-of-words) is not tested: no bag of n-grams ran."
        ]
    bow = bows[0]
    out = []
    if rnns:
        rnn = rnns[0]
        outcome, words = _verdict(_pair(pairs, rnn, bow), rnn, bow)
        first = f"Claim 1, “unlike bag-of-words, performance is significantly higher”: {rnn} " \
                f"{acc[rnn][1]} against {bow} {acc[bow][1]}; {words}."  # fmt: skip
        if outcome == "better":
            first += " The claim holds here: the vanilla RNN's reading of word order pays."
        elif outcome == "worse":
            first += (
                " The claim does not hold here: the bag of n-grams beats the vanilla RNN, which "
                "loses what it read early in a text before it reaches the end."
            )
        elif outcome == "tie":
            first += (
                " Not settled with the seeds run: the tests cannot tell them apart with every "
                "seed, so the claim is not supported here."
            )
        out.append(first)
    ordered = [n for n, r in by.items() if FAMILIES[r.kind].reads_order and acc[n][0] is not None]
    if ordered:
        best = max(ordered, key=lambda n: acc[n][0] or 0.0)
        outcome, words = _verdict(_pair(pairs, best, bow), best, bow)
        tail = {
            "better": "so word order beyond pairs of words does pay, for the best order-aware model.",
            "worse": "so on this data no model that reads word order beats a mean over words and "
            "word pairs.",
            "tie": "so on this data word order beyond pairs of words adds nothing that holds "
            "over the seeds.",
            "untested": "",
        }[outcome]
        out.append(
            f"The best model that reads word order, {best} ({acc[best][1]}), against {bow}: "
            f"{words}; {tail}".rstrip("; ")
        )
    return out


def _serial_claim(
    by: dict[str, TrainingRun],
    acc: Scores,
    pairs: dict[str, Finding],
    slopes: dict[str, float],
    ratios: dict[str, float | None],
    remember: dict[str, float | None],
    longest: int | None,
) -> list[str]:
    """Claim 2: the remaining limit is the serial loop; removing recurrence is the way out."""
    recurrent = [n for n, r in by.items() if FAMILIES[r.kind].serial]
    parallel = [n for n, r in by.items() if FAMILIES[r.kind].parallel]
    if not recurrent or not parallel:
        return [
            "Claim 2 (the serial loop is what is left to remove) is not tested: it needs a "
            "recurrent model and a parallel one ("
            + ", ".join(k for k, f in FAMILIES.items() if f.parallel)
            + ")."
        ]
    gated = [n for n in recurrent if FAMILIES[by[n].kind].gated] or recurrent
    base = max(gated, key=lambda n: acc[n][0] or 0.0)
    speed = {n: num(by[n].summary.get("train_tokens_per_s")) for n in by}
    device = str(by[base].summary.get("device", "this device"))
    parts, faster, steeper = [], [], []
    for name in parallel:
        if speed.get(name) and speed.get(base):
            ratio = speed[name] / speed[base]  # type: ignore[operator]
            faster.append(ratio > 1)
            slope = ""
            if name in slopes and base in slopes:
                steeper.append(slopes[name] > slopes[base])
                slope = (
                    f" (time per batch grows {1e3 * slopes[name]:.3f} ms per step of T; "
                    f"{base}: {1e3 * slopes[base]:.3f})"
                )
            _, words = _verdict(_pair(pairs, name, base), name, base)
            parts.append(
                f"{name} trains at {ratio:.2f}x {base}'s tokens/s{slope} and scores "
                f"{acc[name][1]} against {acc[base][1]} ({words})"
            )
    out = [
        f"Claim 2, “still sequential … what if we removed recurrence entirely?”, measured on "
        f"{device}: " + "; ".join(parts) + "."
    ] if parts else []  # fmt: skip
    if faster and all(faster):
        out.append("Removing the serial loop makes training faster here, as the claim expects.")
    elif faster and not any(faster):
        why = (
            " and their time grows at least as fast with the length: the step loop is not what "
            "costs the time on this device"
            if steeper and all(steeper)
            else ""
        )
        out.append(
            f"Here removing the serial loop does not make training faster: no parallel model "
            f"beats {base}'s tokens/s{why}. On this device the claim does not hold (a GPU, where "
            "one time step is too small to keep the device busy, is not measured here)."
        )
    elif faster:
        out.append("Only some of the parallel models train faster here than the recurrent one.")
    kept = [f"{n} {sci(ratios[n])}" for n in by if n in ratios and ratios[n] is not None]
    if kept:
        out.append(
            "What removing recurrence does for the gradient: an early input's gradient as a "
            "share of a late one's, " + ", ".join(kept) + " (1 means every position gets the "
            "same; a recurrent cell multiplies it by its decay at every step back)."
        )
    if remember and longest:
        shown = [f"{n} {cell(remember[n])}" for n in by if n in remember]
        out.append(
            f"Carrying one number to the end of a sequence of {longest} (remember-first, "
            "chance 50%): " + ", ".join(shown) + "."
        )
    return out
