"""Sections about the data, the models, training and the environment, from a Collection."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rnnlab.formatting import cell, is_num, mapping, num, pct
from rnnlab.layout import CONFIG, DATASET, RESULT, STUDY, SUMMARY
from rnnlab.report import narrative as say
from rnnlab.report import plots
from rnnlab.report.collect import Collection, TrainingRun
from rnnlab.report.findings import Finding, findings
from rnnlab.report.page import Block, Figure, Section, png_file_uri, png_uri
from rnnlab.runs import compare_table
from rnnlab.runs.compare import RULE
from rnnlab.stats import resolvable_difference
from rnnlab.tables import Table

MAX_EXAMPLES = 3
MAX_EXAMPLE_CHARS = 600


def run_labels(runs: Sequence[TrainingRun]) -> dict[int, str]:
    """A short unique name per run: the model name, or parent/folder when names repeat."""
    names = [r.model_name for r in runs]
    labels = {}
    for run in runs:
        if names.count(run.model_name) == 1:
            labels[id(run)] = run.model_name
        else:
            labels[id(run)] = f"{run.path.parent.name}/{run.path.name}"
    return labels


# ----- dataset -----------------------------------------------------------------------------------
def dataset_section(c: Collection) -> Section | None:
    section = Section("dataset", "The dataset")
    summaries = {str(d.get("dataset", "")): (path, d) for path, d in c.datasets}
    shown: set[str] = set()
    for name in c.text_datasets() or list(summaries):
        if name in shown:
            continue
        shown.add(name)
        if name in summaries:
            path, summary = summaries[name]
            _dataset_from_summary(section, c.rel(path / DATASET), summary)
        else:
            run = next((r for r in c.main_runs if r.dataset == name), None)
            if run is not None:
                _dataset_from_run(section, run, c.rel(run.path / SUMMARY))
    examples = example_texts(c)
    section.examples = examples[:MAX_EXAMPLES]
    if section.examples:
        section.notes.append(
            "The example texts are quoted as saved with the results, shown as plain text."
        )
    return None if section.empty else section


def _dataset_from_summary(section: Section, path: Any, d: dict[str, Any]) -> None:
    splits = d.get("splits") or {}
    sizes = {k: int(v.get("examples", 0)) for k, v in splits.items() if isinstance(v, dict)}
    test = splits.get("test") or {}
    unk = test.get("unk_share")
    labels = [str(x) for x in d.get("label_names") or []]
    name = str(d.get("dataset", "dataset"))
    section.lead += say.dataset(name, sizes, labels, d.get("vocab_size"), unk)
    columns = ["split", "texts", "mean tokens", "median", "95th pct", "max", "<unk> share"]
    columns += [f"“{label}”" for label in labels]
    rows = []
    for split, s in splits.items():
        counts = s.get("label_counts") or {}
        rows.append(
            [
                str(split),
                cell(s.get("examples"), "count"),
                f"{s['mean_tokens']:.1f}" if is_num(s.get("mean_tokens")) else "—",
                cell(s.get("median_tokens"), "count"),
                cell(s.get("p95_tokens"), "count"),
                cell(s.get("max_tokens"), "count"),
                pct(s["unk_share"], 2) if is_num(s.get("unk_share")) else "—",
                *(cell(counts.get(label), "count") for label in labels),
            ]
        )
    section.tables.append(
        Table(
            f"{name}: sizes, lengths (tokens, before truncation) and labels",
            columns,
            rows,
            numeric=[False, *([True] * (len(columns) - 1))],
            row_ids=[f"dataset-{r[0]}" for r in rows],
        )
    )
    section.facts += [
        ("dataset", name),
        ("source", str(d.get("source", "—"))),
        ("tokenizer", str(d.get("tokenizer", "—"))),
        ("max_len", str(d.get("max_len"))),
        ("duplicates dropped", cell(d.get("duplicates_dropped"), "count")),
    ]
    hist = d.get("length_histogram") or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    if len(edges) >= 2 and len(edges) == len(counts) + 1:
        train = splits.get("train") or {}
        section.figures.append(
            Figure(
                f"{name}: length of the training texts",
                png_uri(plots.length_histogram(edges, counts, max_len=d.get("max_len"))),
                say.length_histogram(
                    edges,
                    counts,
                    d.get("max_len"),
                    train.get("median_tokens"),
                    train.get("p95_tokens"),
                    train.get("truncated"),
                    d.get("truncate", "head"),
                ),
                alt="histogram of text lengths in tokens",
                source=str(path),
            )
        )


def _dataset_from_run(section: Section, run: TrainingRun, source: str) -> None:
    d = run.summary.get("dataset") or {}
    sizes = {k: int(v) for k, v in (d.get("sizes") or {}).items() if is_num(v)}
    labels = [str(x) for x in d.get("label_names") or []]
    section.lead += say.dataset(run.dataset, sizes, labels, d.get("vocab_size"), d.get("unk_share"))
    rows = [[split, cell(n, "count")] for split, n in sizes.items()]
    section.tables.append(
        Table(
            f"{run.dataset}: texts per split (from {source})",
            ["split", "texts"],
            rows,
            numeric=[False, True],
            row_ids=[f"dataset-{r[0]}" for r in rows],
        )
    )
    data_cfg = run.config.get("data") or {}
    section.facts += [
        ("dataset", run.dataset),
        ("source", str(d.get("source", data_cfg.get("source", "—")))),
        ("tokenizer", str(data_cfg.get("tokenizer", "—"))),
        ("max_len", str(d.get("max_len", data_cfg.get("max_len")))),
        ("limit", str(data_cfg.get("limit"))),
        ("training tokens", cell(d.get("train_tokens"), "count")),
    ]
    hist = d.get("length_histogram") or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    if len(edges) >= 2 and len(edges) == len(counts) + 1:
        section.figures.append(
            Figure(
                f"{run.dataset}: length of the training texts",
                png_uri(plots.length_histogram(edges, counts, max_len=d.get("max_len"))),
                say.length_histogram(edges, counts, d.get("max_len"), None, None),
                source=source,
            )
        )


def example_texts(c: Collection) -> list[tuple[str, str]]:
    """(label, text) pairs saved anywhere in the results: dataset.json, hidden-state results."""
    found: list[tuple[str, str]] = []
    sources: list[Any] = [d.get("examples") for _, d in c.datasets]
    for result in c.results:
        for key in ("examples", "texts", "reviews"):
            sources.append(result.data.get(key))
    for source in sources:
        for item in source if isinstance(source, list) else []:
            text, label = _text_of(item)
            if text and all(text != t for _, t in found):
                found.append((label, _shorten(text)))
    return found


def _text_of(item: Any) -> tuple[str, str]:
    if isinstance(item, str):
        return item, ""
    if isinstance(item, dict):
        text = item.get("text") or item.get("review") or ""
        label = item.get("label_name") or item.get("label") or item.get("sentiment") or ""
        return (str(text), str(label)) if isinstance(text, str) else ("", "")
    return "", ""


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_EXAMPLE_CHARS else text[:MAX_EXAMPLE_CHARS].rstrip() + " …"


# ----- models ------------------------------------------------------------------------------------
def models_section(c: Collection) -> Section | None:
    runs = c.model_runs
    if not runs:
        return None
    labels = run_labels(runs)
    rows, ids, narrative_rows = [], [], []
    for run in runs:
        p, s = run.parameters, run.spec
        rows.append(
            [
                labels[id(run)],
                run.kind or "—",
                cell(s.get("embed_dim"), "count"),
                cell(s.get("hidden_dim"), "count"),
                cell(s.get("num_layers"), "count"),
                "yes" if s.get("bidirectional") else "no",
                cell(p.get("embedding"), "count"),
                cell(p.get("recurrent"), "count"),
                cell(p.get("head"), "count"),
                cell(p.get("total"), "count"),
            ]
        )
        ids.append(f"params-{labels[id(run)]}")
        narrative_rows.append((labels[id(run)], run.kind, p))
    columns = ["model", "cell", "embed", "hidden", "layers", "bidir.", "embedding", "recurrent"]
    columns += ["head", "total"]
    table = Table(
        "Parameters per model",
        columns,
        rows,
        numeric=[False, False, True, True, True, False, True, True, True, True],
        row_ids=ids,
    )
    return Section("models", "The models", lead=say.parameters(narrative_rows), tables=[table])


# ----- how sure -----------------------------------------------------------------------------------
def seeds_text(seeds: Sequence[int]) -> str:
    """'3 (0, 1, 2)': how many seeds, then which."""
    return f"{len(seeds)} ({', '.join(map(str, seeds))})" if seeds else "—"


def certainty_section(c: Collection) -> Section | None:
    """Test-set size, seeds, the smallest difference the test set can resolve, and every
    finding of the results with its verdict over the seeds (`findings.findings`)."""
    runs = [r for r in c.main_runs if is_num(r.test.get("examples"))]
    if not runs:
        return None
    sizes = sorted({int(r.test["examples"]) for r in runs})
    n = sizes[0]
    accuracies = [float(r.test["accuracy"]) for r in runs if is_num(r.test.get("accuracy"))]
    level = sum(accuracies) / len(accuracies) if accuracies else 0.5
    smallest = resolvable_difference(n, level)
    seeds = sorted({int(r.summary["seed"]) for r in runs if is_num(r.summary.get("seed"))})
    sweep_seeds = sorted(
        {len(getattr(f.result, "seeds", [])) for f in c.results if getattr(f.result, "seeds", None)}
    )
    section = Section("certainty", "How sure are these numbers?")
    section.facts += [
        ("test texts", ", ".join(f"{k:,}" for k in sizes)),
        ("seeds of the compared models", seeds_text(seeds)),
    ]
    if sweep_seeds:
        section.facts.append(("seeds per sweep cell", ", ".join(map(str, sweep_seeds))))
    section.facts.append(
        ("smallest difference the test set resolves", f"about {pct(smallest)} of accuracy")
    )
    section.lead = [
        f"Every accuracy here is measured on {n:,} test texts: its 95% interval is about "
        f"±{pct(smallest / 2**0.5)} wide at {pct(level)}, and two models must differ by about "
        f"{pct(smallest)} before a test at 95% can tell them apart (two-proportion bound; the "
        "paired McNemar test used in the comparison resolves a little less when models agree).",
        f"A difference is called a finding only where it holds over the seeds: {RULE}. "
        "Otherwise it is not settled with that many seeds, and the per-seed "
        "values give the spread. Float rounding (another CPU, another "
        "thread count) moves a training run too, so a one-run difference can come and go "
        "from one machine to the next."
        + (" With one seed, seed-to-seed variation is not measured." if len(seeds) < 2 else ""),
    ]
    table = findings_table(findings(c))
    if table is not None:
        section.tables.append(table)
    return section


def findings_table(found: Sequence[Finding]) -> Table | None:
    """Every finding (the list study.json keeps) with its verdict over the seeds."""
    if not found:
        return None
    rows = [[f.id, f.verdict, f.winner or "—", f.reading] for f in found]
    return Table(
        "Findings, seed by seed (the list study.json keeps)",
        ["finding", "verdict", "winner / direction", "reading"],
        rows,
        [f"holds: {RULE}; not settled: otherwise"],
        numeric=[False] * 4,
        row_ids=[f"finding-{f.id}" for f in found],
    )


# ----- training ----------------------------------------------------------------------------------
def training_section(c: Collection) -> Section | None:
    runs = c.main_runs
    if not runs and not c.compares:
        return None
    section = Section("training", "Training and test results")
    labels = run_labels(runs)
    if runs:
        table, scores = _results_table(runs, labels)
        section.lead = say.comparison(_seed_means(c, scores) or scores)
        pairs = [f for f in findings(c) if f.id.startswith("compare:")]
        if pairs:
            section.lead.append(
                "Paired on the same test texts (McNemar's test; a difference is a finding only "
                f"when {RULE}): "
                + "; ".join(f.reading for f in pairs) + "."
            )  # fmt: skip
        for compare in c.compares:
            if compare.data.get("by_model"):  # several seeds: mean ± std and each seed's value
                section.tables.append(
                    compare_table(compare.rows, compare.data.get("paired") or [],
                                  compare.data["by_model"], compare.data.get("over_seeds") or [])
                )  # fmt: skip
        section.tables.append(table)
        mine = c.model_runs
        if len(mine) < len(runs):
            section.notes.append(
                "Per-class F1, the confusion matrices and the learning curves show each "
                "model's first seed's run; the tables above hold every seed."
            )
        mine_labels = run_labels(mine)
        f1_table = _per_class_table(mine, mine_labels)
        if f1_table is not None:
            section.tables.append(f1_table)
        _interval_figure(section, runs, labels)
        _confusion_figure(section, mine, mine_labels)
    for compare in c.compares:
        uri = png_file_uri(compare.curves) if compare.curves else None
        if uri and compare.curves:
            names = [str(r.get("model")) for r in compare.rows]
            section.figures.append(
                Figure(
                    f"Learning curves side by side ({compare.path.name})",
                    uri,
                    say.compare_curves(names),
                    source=c.rel(compare.curves),
                )
            )
    for run in c.model_runs:
        uri = png_file_uri(run.curves) if run.curves else None
        if uri and run.curves:
            section.figures.append(
                Figure(
                    f"Learning curves: {labels[id(run)]}",
                    uri,
                    say.curves(labels[id(run)], run.history, run.summary.get("best_epoch")),
                    source=c.rel(run.curves),
                )
            )
    if c.failed_runs:
        section.notes += [
            f"{r.path}: failed ({r.summary.get('error', 'no message')})" for r in c.failed_runs
        ]
    section.notes += c.skipped
    return section


def _seed_means(c: Collection, scores: Sequence[say.ModelScore]) -> list[say.ModelScore]:
    """With several seeds: one score per model, the means over its seeds (compare.json's
    by_model), so the ranking sentences speak of models, not of single runs."""
    majority = next((s.majority_share for s in scores if s.majority_share is not None), None)
    return [
        say.ModelScore(
            f"{row['model']} (mean of {len(row.get('seeds') or [])} seeds)",
            row.get("test_accuracy"), row.get("test_macro_f1"), row.get("seconds_per_epoch"),
            row.get("train_tokens_per_s"), majority, row.get("test_mse"),
        )
        for compare in c.compares
        for row in compare.data.get("by_model") or []
    ]  # fmt: skip


def _majority_share(test: dict[str, Any]) -> float | None:
    per_class = mapping(test.get("per_class"))
    supports = [n for v in per_class.values() if (n := num(mapping(v).get("support"))) is not None]
    total = sum(supports)
    return max(supports) / total if supports and total > 0 else None


def _results_table(
    runs: Sequence[TrainingRun], labels: dict[int, str]
) -> tuple[Table, list[say.ModelScore]]:
    regression = any(is_num(r.test.get("mse")) for r in runs)
    datasets = {r.dataset for r in runs}
    columns = ["model"] + (["dataset"] if len(datasets) > 1 else [])
    columns += ["test accuracy", "95% interval", "macro-F1"] + (["test MSE"] if regression else [])
    columns += ["s / epoch", "tokens / s", "epochs", "best epoch", "status"]
    rows, scores = [], []
    for run in runs:
        test, s = run.test, run.summary
        row = [labels[id(run)]] + ([run.dataset] if len(datasets) > 1 else [])
        interval = test.get("accuracy_interval")
        shown = f"{interval[0]:.3f}–{interval[1]:.3f}" if isinstance(interval, list) else "—"
        row += [cell(test.get("accuracy")), shown, cell(test.get("macro_f1"))]
        row += [cell(test.get("mse"), "num")] if regression else []
        row += [
            cell(s.get("seconds_per_epoch"), "seconds"),
            cell(s.get("train_tokens_per_s"), "count"),
            cell(s.get("epochs_run"), "count"),
            cell(s.get("best_epoch"), "count"),
            run.status,
        ]
        rows.append(row)
        scores.append(
            say.ModelScore(
                labels[id(run)],
                test.get("accuracy"),
                test.get("macro_f1"),
                s.get("seconds_per_epoch"),
                s.get("train_tokens_per_s"),
                _majority_share(test),
                test.get("mse"),
            )
        )
    numeric = [False] * (1 + (len(datasets) > 1)) + [True] * (
        len(columns) - 2 - (len(datasets) > 1)
    )
    numeric.append(False)
    table = Table(
        "Test results (best epoch's weights) and training speed",
        columns,
        rows,
        numeric=numeric,
        row_ids=[labels[id(r)] for r in runs],
    )
    return table, scores


def _per_class_table(runs: Sequence[TrainingRun], labels: dict[int, str]) -> Table | None:
    per_model: dict[str, dict[str, float]] = {}
    classes: list[str] = []
    for run in runs:
        per_class = run.test.get("per_class") or {}
        if not per_class:
            continue
        per_model[labels[id(run)]] = {
            str(k): f1
            for k, v in per_class.items()
            if (f1 := num(mapping(v).get("f1"))) is not None
        }
        classes += [str(k) for k in per_class if str(k) not in classes]
    if not per_model:
        return None
    rows = [[name, *(cell(f1s.get(k)) for k in classes)] for name, f1s in per_model.items()]
    return Table(
        "Per-class F1 on the test split",
        ["model", *classes],
        rows,
        notes=say.per_class_f1(per_model),
        numeric=[False, *([True] * len(classes))],
        row_ids=[f"f1-{name}" for name in per_model],
    )


def _interval_figure(section: Section, runs: Sequence[TrainingRun], labels: dict[int, str]) -> None:
    """Test accuracy of every run with its 95% Wilson interval, on one axis."""
    points: dict[str, tuple[float, float, float]] = {}
    for run in runs:
        interval = run.test.get("accuracy_interval") or []
        if is_num(run.test.get("accuracy")) and len(interval) == 2:
            low, high = map(float, interval)
            points[labels[id(run)]] = (float(run.test["accuracy"]), low, high)
    if len(points) < 2:
        return
    section.figures.append(
        Figure(
            "Test accuracy with 95% intervals",
            png_uri(plots.accuracy_intervals(points)),
            [
                "Each dot is a model's test accuracy, each bar its 95% Wilson interval on the "
                "same test texts. Bars that overlap do not by themselves mean a tie: the paired "
                "McNemar test above decides, on the texts both models saw."
            ],
            alt="test accuracy per model with 95% intervals",
        )
    )


def _confusion_figure(
    section: Section, runs: Sequence[TrainingRun], labels: dict[int, str]
) -> None:
    matrices: dict[str, tuple[list[str], list[list[int]]]] = {}
    sentences: list[str] = []
    for run in runs:
        confusion = run.test.get("confusion") or {}
        names, matrix = confusion.get("labels"), confusion.get("matrix")
        if not names or not matrix or len(matrix) != len(names):
            continue
        name = labels[id(run)]
        matrices[name] = ([str(x) for x in names], matrix)
        sentences += say.confusion(name, [str(x) for x in names], matrix)
    if not matrices:
        return
    lead = (
        "Rows are the true labels, columns the predictions; the diagonal holds the correct answers."
    )
    section.figures.append(
        Figure(
            "Confusion matrices on the test split",
            png_uri(plots.confusion_matrices(matrices)),
            [lead, *sentences],
            alt="confusion matrix per model",
        )
    )


# ----- accuracy by length (from the test metrics of the runs) ------------------------------------
def accuracy_by_length_figure(c: Collection) -> tuple[Figure, Table] | None:
    runs = [r for r in c.model_runs if r.test.get("accuracy_by_length")]
    if not runs:
        return None
    labels = run_labels(runs)
    series: dict[str, list[tuple[str, float, int]]] = {}
    for run in runs:
        points = []
        for bucket in run.test["accuracy_by_length"]:
            if not isinstance(bucket, dict) or not is_num(bucket.get("accuracy")):
                continue
            lo, hi = bucket.get("lo"), bucket.get("hi")
            name = f"{lo}–{hi}" if hi is not None else f"≥{lo}"
            points.append((name, float(bucket["accuracy"]), int(bucket.get("count") or 0)))
        if points:
            series[labels[id(run)]] = points
    if not series:
        return None
    png = plots.accuracy_by_length({n: [(b, a) for b, a, _ in p] for n, p in series.items()})
    buckets: list[str] = []
    for points in series.values():
        buckets += [b for b, _, _ in points if b not in buckets]
    rows = []
    for name, points in series.items():
        by = {b: (a, k) for b, a, k in points}
        rows.append(
            [name, *(f"{cell(by[b][0])} ({by[b][1]})" if b in by else "—" for b in buckets)]
        )
    table = Table(
        "Test accuracy per length bucket (texts in brackets)",
        ["model", *buckets],
        rows,
        numeric=[False, *([True] * len(buckets))],
        row_ids=[f"len-{n}" for n in series],
    )
    figure = Figure(
        "Test accuracy by text length (trained models)",
        png_uri(png),
        say.accuracy_by_length(series),
        alt="test accuracy per length bucket",
    )
    return figure, table


# ----- environment -------------------------------------------------------------------------------
RESULT_DATA_KEYS = {"models", "cells", "summary", "texts", "rows", "strategies", "reading"}


def result_settings(data: dict[str, Any]) -> dict[str, Any]:
    """The settings of a result (what reproduces it): everything but the measured data."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in RESULT_DATA_KEYS or key.startswith(("step_", "example_")):
            continue
        if isinstance(value, list) and len(value) > 32:
            continue
        out[key] = value
    return out


def environment_section(c: Collection) -> Section | None:
    runs = c.runs
    if not runs and not c.results and not c.studies:
        return None
    section = Section("environment", "Environment and reproduction")
    versions: dict[str, str] = {}
    for source in [r.summary.get("versions") for r in runs] + [
        r.data.get("versions") for r in c.results
    ]:
        for k, v in mapping(source).items():
            versions.setdefault(str(k), str(v))
    section.facts += [(k, v) for k, v in versions.items()]
    if runs:
        rows = []
        for run in runs:
            s = run.summary
            train_cfg = run.config.get("train") or {}
            data_cfg = run.config.get("data") or {}
            rows.append(
                [
                    c.rel(run.path),
                    str(s.get("seed", train_cfg.get("seed", "—"))),
                    str(data_cfg.get("seed", "—")),
                    str(s.get("device", "—")),
                    str(s.get("threads", "—")),
                    str(s.get("deterministic", "—")),
                    str(s.get("finished", "—")),
                ]
            )
        section.tables.append(
            Table(
                "Runs: seeds, device and time",
                [
                    "run folder",
                    "train seed",
                    "data seed",
                    "device",
                    "threads",
                    "determ.",
                    "finished",
                ],
                rows,
            )
        )
        section.blocks += [
            Block(c.rel(run.path / CONFIG), run.config_text) for run in runs if run.config_text
        ]
    for path, study in c.studies:
        section.blocks.append(Block(c.rel(path / STUDY), json.dumps(study, indent=2)))
    for result in c.results:
        settings = result_settings(result.data)
        if settings:
            block = json.dumps(settings, indent=2, default=str)
            section.blocks.append(Block(f"{c.rel(result.path / RESULT)} (settings)", block))
    section.lead.append(
        "Each run's config.yaml below, with these library versions and seeds, reproduces it: "
        "`rnnlab train --config config.yaml`."
    )
    return section
