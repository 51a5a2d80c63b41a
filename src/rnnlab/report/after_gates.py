"""The "After gates" chapter: the recurrent cells of the 1990s next to the families that brought
recurrence back after 2023 (gated linear recurrences that train as a scan), in one table, with
the memory each keeps and where that memory runs out.

A family's year and its state size per layer come from the family registry
(`Family.year`, `TextClassifier.state_size`); the measured columns from the saved results
(compare runs, timing, the synthetic tasks, memory capacity). The readings are the findings
(report.findings) of those results, so every one is decided by the seed rule.
"""

from __future__ import annotations

from typing import Any

from rnnlab.errors import RnnlabError
from rnnlab.formatting import cell, count, pct
from rnnlab.models import ModelSpec
from rnnlab.models.family import FAMILIES
from rnnlab.models.registry import get_preset, model_class
from rnnlab.report.beyond import mean_text, results_of, seed_accuracies, timing_slopes
from rnnlab.report.collect import Collection, TrainingRun
from rnnlab.report.findings import findings
from rnnlab.report.page import Section
from rnnlab.tables import Table

SINCE = 2023
"""Families from this year on are "after gates" (Mamba 2023; Hawk, mLSTM, minGRU 2024)."""


def after_gates_section(c: Collection) -> Section | None:
    """One row per model the study trained or measured for memory; None when neither a family
    after gates ran nor memory capacity was measured."""
    runs: dict[str, TrainingRun] = {}  # each model's first seed's run: the one diagnosed
    for r in c.main_runs:
        if r.kind in FAMILIES:
            runs.setdefault(r.model_name, r)
    capacity = results_of(c, "memory_capacity")
    recent = [r for r in runs.values() if (FAMILIES[r.kind].year or 0) >= SINCE]
    if not recent and not capacity:
        return None
    synthetic = {s.task: s for s in results_of(c, "synthetic")}
    recall = capacity[0] if capacity else None
    models = list(dict.fromkeys([*runs, *(recall.models if recall else [])]))
    accuracies = seed_accuracies(c)
    slopes = timing_slopes(c)
    rows = []
    for model in models:
        run = runs.get(model)
        kind = run.kind if run else _preset_kind(model)
        fam = FAMILIES.get(kind or "")
        values = accuracies.get((run.path.parent.resolve(), model), []) if run else []
        rows.append(
            [
                model,
                fam.display if fam else "—",
                str(fam.year) if fam and fam.year else "—",
                _state(run, model, recall),
                cell(run.summary.get("train_tokens_per_s"), "count") if run else "—",
                f"{1e3 * slopes[run.path.name]:.3f}" if run and run.path.name in slopes else "—",
                mean_text(values)[1],
                *(_longest(synthetic.get(task), model) for task in ("remember-first", "parity")),
                _most_pairs(recall, model),
            ]
        )
    hardest = f"N={max(recall.pairs)}" if recall and recall.pairs else "most pairs"
    table = Table(
        "After gates: every family's memory and speed on the same data",
        ["model", "family", "year", "state per layer", "trained tokens / s",
         "time vs T (ms per step)", "IMDB test accuracy", "remember-first, longest T",
         "parity, longest T", f"associative recall, {hardest}"],
        rows,
        notes=[
            "state per layer: the numbers carried from one step to the next per layer and "
            "direction at the settings trained (memory capacity: at its fixed state size; a "
            "Transformer keeps every token, so none is fixed). time vs T: the timing "
            "diagnostic's slope; IMDB: mean ± std over the compared seeds; the synthetic "
            "columns: mean test accuracy at the task's longest length; associative recall: "
            "the memory-capacity diagnostic at its most key-value pairs.",
        ],
        numeric=[False, False, True, True, True, True, True, True, True, True],
        row_ids=[f"after-gates-{m}" for m in models],
    )  # fmt: skip
    section = Section("after-gates", "After gates", tables=[table])
    section.lead = [
        "Since 2023 recurrence has come back as gated linear recurrences: a state of fixed size "
        "that is updated h_t = a_t ⊙ h_{t−1} + b_t with gates that read only the input, so "
        "training runs as a scan over the whole text (minGRU, Mamba's selective state space, "
        "Hawk's RG-LRU, xLSTM's matrix memory). They share the cells' fixed memory: every "
        "text must pass through a state of the size shown. Associative recall measures where "
        "that memory runs out; the Transformer, which keeps every token, is the reference.",
    ]
    section.lead += _readings(c, recall)
    return section


def _preset(model: str) -> dict[str, Any]:
    """The preset's settings ({} for a name that is no preset here)."""
    try:
        return dict(get_preset(model).settings)
    except RnnlabError:
        return {}


def _preset_kind(model: str) -> str | None:
    kind = _preset(model).get("kind")
    return str(kind) if kind is not None else None


def _state(run: TrainingRun | None, model: str, recall: Any) -> str:
    """The state size per layer of the run's spec, else of the memory-capacity cells' spec."""
    spec: ModelSpec | None = None
    if run is not None and run.spec:
        try:
            spec = ModelSpec.from_dict(run.spec)
        except (TypeError, ValueError, RnnlabError):
            spec = None
    elif recall is not None:
        settings = _preset(model)
        hidden = recall.settings.get("state_size")
        if settings.get("kind") in FAMILIES and isinstance(hidden, int):
            settings.update(hidden_dim=hidden, vocab_size=2, num_classes=2)
            try:
                spec = ModelSpec.from_dict(settings)
            except (TypeError, ValueError, RnnlabError):
                spec = None
    if spec is None or spec.kind not in FAMILIES:
        return "—"
    size = model_class(spec.kind).state_size(spec)
    return count(size) if size is not None else "not fixed"


def _longest(result: Any, model: str) -> str:
    if result is None or not result.lengths:
        return "—"
    longest = max(result.lengths)
    found = next((s for s in result.summary if s.model == model and s.length == longest), None)
    return f"{pct(found.mean)} (T={longest})" if found and found.mean is not None else "—"


def _most_pairs(result: Any, model: str) -> str:
    if result is None or not result.pairs:
        return "—"
    most = max(result.pairs)
    found = next((s for s in result.summary if s.model == model and s.pairs == most), None)
    return pct(found.accuracy_mean) if found and found.accuracy_mean is not None else "—"


def _readings(c: Collection, recall: Any) -> list[str]:
    """The chapter's findings: memory capacity's, and the synthetic tasks' at their longest
    length, each under the seed rule (holds / not settled)."""
    out = list(recall.reading) if recall is not None else []
    found = [f for f in findings(c) if f.id.startswith("memory_capacity:")]
    if found:
        out.append(
            "Findings (recall of at least 90% of the queries, every seed): "
            + "; ".join(f.reading for f in found)
            + "."
        )
    return out
