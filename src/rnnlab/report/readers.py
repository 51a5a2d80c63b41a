"""Read one result.json per diagnostic kind into tables and computed captions.

Every reader is tolerant: a key it does not find means a sentence or table less, never an error,
because result formats grow over time. Numbers in the sentences come from result.json only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rnnlab.report.collect import ResultFolder
from rnnlab.report.narrative import factor, is_num, mapping, pct, share, sig
from rnnlab.report.page import Figure, Table


@dataclass
class Reading:
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    """Figures drawn by the report itself (when the result has numbers but no PNG)."""
    captions: dict[str, list[str]] = field(default_factory=dict)
    """PNG file name, a word of it, or "*" for any -> sentences under it."""
    titles: dict[str, str] = field(default_factory=dict)
    """PNG file name, a word of it, or "*" -> the figure's title."""
    notes: list[str] = field(default_factory=list)
    figure_order: list[str] = field(default_factory=list)
    """Words of PNG names, in the order their figures should appear."""


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _nums(value: Any) -> list[float | None]:
    if not isinstance(value, list):
        return []
    return [float(v) if is_num(v) else None for v in value]


def _sci(value: Any) -> str:
    return f"{value:.2e}" if is_num(value) else "—"


def _label(model: dict[str, Any]) -> str:
    return str(model.get("label") or model.get("name") or model.get("kind") or "model")


# ----- gradient flow -----------------------------------------------------------------------------
def gradient_flow(result: ResultFolder) -> Reading:
    """result.json of rnnlab.diagnostics.gradient_flow (kind "gradient_flow")."""
    d = result.data
    models = _dicts(d.get("models"))
    steps = [int(t) for t in d.get("steps") or [] if is_num(t)]
    out = Reading(
        figure_order=["linear", "log"],
        titles={
            "linear": "Gradient norm at every time step (linear scale)",
            "log": "Gradient norm at every time step (log scale)",
        },
    )
    if not models or len(steps) < 2:
        return out
    early, late = steps[0], steps[-1]
    keeps = [f"{_label(m)} keeps {share(m['ratio_x'])}" for m in models if is_num(m.get("ratio_x"))]
    sentences = []
    if keeps:
        sentences.append(
            f"Gradient at step t={early} as a share of the gradient at t={late} "
            f"(||dL/dx_t||, {d.get('batch_size', '?')} texts cut to T={d.get('seq_len', '?')}): "
            + "; ".join(keeps)
            + "."
        )
    readings = [
        f"{_label(m)} {m['reading_x']}" for m in models if isinstance(m.get("reading_x"), str)
    ]
    thresholds = mapping(d.get("thresholds"))
    if readings and is_num(thresholds.get("severe")) and is_num(thresholds.get("vanishing")):
        sentences.append(
            f"In words (share below {share(thresholds['severe'])}: severe vanishing, below "
            f"{share(thresholds['vanishing'])}: vanishing): " + ", ".join(readings) + "."
        )
    elif readings:
        sentences.append("In words: " + ", ".join(readings) + ".")
    out.captions["*"] = sentences
    decades = [
        f"{_label(m)} {sig(m['decades_x'], 2)}" for m in models if is_num(m.get("decades_x"))
    ]
    if decades:
        out.captions["log"] = [
            "The same norms on a log scale: a straight line means the gradient shrinks by the "
            "same factor at every step back in time.",
            "Slope of log10 of the norm per 100 steps, from a straight-line fit (2 means the "
            "gradient 100 steps earlier is about 100 times smaller): " + ", ".join(decades) + ".",
        ]
    columns = [
        "model",
        *(f"t={t}" for t in steps),
        f"t={early} / t={late}",
        "reading",
        "decades / 100 steps",
    ]
    rows = []
    for m in models:
        at = list(m.get("x_at_steps") or [])
        rows.append(
            [
                _label(m),
                *(_sci(at[i]) if i < len(at) else "—" for i in range(len(steps))),
                _sci(m.get("ratio_x")),
                str(m.get("reading_x", "—")),
                sig(m["decades_x"], 2) if is_num(m.get("decades_x")) else "—",
            ]
        )
    out.tables.append(
        Table(
            f"||dL/dx_t|| at chosen steps ({d.get('dataset', '')} {d.get('split', '')}, "
            f"{d.get('dtype', '')})",
            columns,
            rows,
            numeric=[False, *([True] * (len(steps) + 1)), False, True],
            row_ids=[f"grad-{_label(m)}" for m in models],
        )
    )
    return out


# ----- embedding gradient vs length -------------------------------------------------------------
def embedding_gradient(result: ResultFolder) -> Reading:
    """result.json of rnnlab.diagnostics.embedding_grad (kind "embedding_grad")."""
    d = result.data
    lengths = [int(v) for v in d.get("lengths") or [] if is_num(v)]
    models = _dicts(d.get("models"))
    out = Reading(titles={"*": "Gradient norm vs the number of tokens kept"})
    if len(lengths) < 2 or not models:
        return out
    part = "embedding" if any(_nums(m.get("embedding"))[:1] != [None] for m in models) else "total"
    factors = []
    for m in models:
        values = _nums(m.get(part))
        if len(values) == len(lengths) and values[0] and values[-1] is not None:
            factors.append(f"{_label(m)} {factor(values[-1] / values[0])}")
    if factors:
        what = "||dL/dE|| (embedding)" if part == "embedding" else "the total gradient norm"
        out.captions["*"] = [
            f"From texts cut to {lengths[0]} tokens to texts cut to {lengths[-1]}, {what} "
            f"changes by: " + ", ".join(factors) + " (same texts, one backward pass each).",
            "A factor near 1 means the extra early words add (almost) no gradient: they are "
            "too far from the loss for the signal to reach them.",
        ]
    rows = [
        [_label(m), *(_sci(v) for v in _nums(m.get(part)))]
        for m in models
        if len(_nums(m.get(part))) == len(lengths)
    ]
    if rows:
        out.tables.append(
            Table(
                f"Gradient norm of the {part} parameters by text length "
                f"({d.get('batch_size', '?')} {d.get('dataset', '')} texts)",
                ["model", *(f"L={n}" for n in lengths)],
                rows,
                numeric=[False, *([True] * len(lengths))],
                row_ids=[f"embgrad-{r[0]}" for r in rows],
            )
        )
    return out


# ----- hidden states -----------------------------------------------------------------------------
def _stat(stats: Any, key: str) -> float | None:
    value = stats.get(key) if isinstance(stats, dict) else None
    return float(value) if is_num(value) else None


def hidden_states(result: ResultFolder) -> Reading:
    """result.json of rnnlab.diagnostics.hidden_states (kind "hidden_states")."""
    d = result.data
    models = _dicts(d.get("models"))
    texts = _dicts(d.get("texts"))
    out = Reading(
        figure_order=["hidden", "cell"],
        titles={
            "hidden": "Hidden-state norm ||h_t|| over time",
            "cell": "LSTM cell-state norm ||c_t|| over time",
        },
    )
    if not models:
        return out
    h_means = [
        f"{_label(m)} {sig(v)}" for m in models if (v := _stat(m.get("h_stats"), "norm_mean"))
    ]
    h_vars = [
        f"{_label(m)} {sig(v)}"
        for m in models
        if (v := _stat(m.get("h_stats"), "var_mean")) is not None
    ]
    lead = []
    if texts:
        lengths = [int(t["length"]) for t in texts if is_num(t.get("length"))]
        span = f", {min(lengths)}–{max(lengths)} steps" if lengths else ""
        lead.append(f"{len(texts)} {d.get('dataset', '')} {d.get('split', '')} texts{span}.")
    if h_means:
        lead.append("Mean ||h_t|| over steps and texts: " + ", ".join(h_means) + ".")
    if h_vars:
        lead.append(
            "How much ||h_t|| moves over time (variance over steps, mean over texts): "
            + ", ".join(h_vars)
            + "."
        )
    contrasts = []
    for m in models:
        by_label = mapping(m.get("by_label"))
        pairs = [(str(k), _stat((v or {}).get("h"), "norm_mean")) for k, v in by_label.items()]
        pairs = [(k, v) for k, v in pairs if v is not None]
        if len(pairs) >= 2:
            contrasts.append(
                f"{_label(m)}: " + ", ".join(f"{k} {sig(v)}" for k, v in pairs)  # type: ignore[arg-type]
            )
    if contrasts:
        lead.append("Mean ||h_t|| per class — " + "; ".join(contrasts) + ".")
    out.captions["hidden"] = lead

    def value(stats: Any, key: str) -> str:
        v = _stat(stats, key)
        return sig(v) if v is not None else "—"

    out.tables.append(
        Table(
            "State norms: mean over steps and texts, and variance over steps (mean over texts)",
            ["model", "mean ||h_t||", "var ||h_t||", "mean ||c_t||", "var ||c_t||"],
            [
                [_label(m)]
                + [
                    value(m.get(f"{x}_stats"), k)
                    for x in ("h", "c")
                    for k in ("norm_mean", "var_mean")
                ]
                for m in models
            ],
            numeric=[False, True, True, True, True],
            row_ids=[f"states-{_label(m)}" for m in models],
        )
    )
    cells = [
        (m, _stat(m.get("c_stats"), "norm_mean"), _stat(m.get("c_stats"), "var_mean"))
        for m in models
    ]
    cell_text = [
        f"{_label(m)}: mean ||c_t|| {sig(mean)}, variance over time {sig(var)}"
        for m, mean, var in cells
        if mean is not None and var is not None
    ]
    if cell_text:
        out.captions["cell"] = [
            "The LSTM cell state ||c_t|| on the same texts; unlike h_t = o_t * tanh(c_t) it is "
            "not squashed, so it can grow to carry information.",
            "; ".join(cell_text) + ".",
        ]
    return out


# ----- sweeps: length and hidden size -------------------------------------------------------------
def _summary_table(
    d: dict[str, Any], key: str, title: str, prefix: str
) -> tuple[Table | None, dict[str, list[tuple[int, float]]]]:
    """A (model x setting) table of mean test accuracy from `summary`, and the series."""
    summary = _dicts(d.get("summary"))
    settings = sorted({int(r[key]) for r in summary if is_num(r.get(key))})
    series: dict[str, list[tuple[int, float]]] = {}
    for r in summary:
        if is_num(r.get(key)) and is_num(r.get("accuracy_mean")):
            series.setdefault(str(r.get("model")), []).append(
                (int(r[key]), float(r["accuracy_mean"]))
            )
    if not series:
        return None, {}
    rows = []
    for model, points in series.items():
        by = dict(points)
        rows.append([model, *(f"{by[v]:.4f}" if v in by else "—" for v in settings)])
    table = Table(
        title,
        ["model", *(f"{prefix}={v}" for v in settings)],
        rows,
        numeric=[False, *([True] * len(settings))],
        row_ids=[f"{prefix}-{m}" for m in series],
    )
    return table, {m: sorted(p) for m, p in series.items()}


def _trend(series: dict[str, list[tuple[int, float]]], name: str) -> list[str]:
    parts = []
    for model, points in series.items():
        if len(points) >= 2:
            (v0, a0), (v1, a1) = points[0], points[-1]
            best_v, best_a = max(points, key=lambda p: p[1])
            parts.append(
                f"{model} {pct(a0)} at {name}={v0} and {pct(a1)} at {name}={v1} "
                f"(best {pct(best_a)} at {best_v})"
            )
    return ["Mean test accuracy: " + "; ".join(parts) + "."] if parts else []


def length_sweep(result: ResultFolder) -> Reading:
    """result.json of rnnlab.diagnostics.length_sweep (kind "length_sweep")."""
    d = result.data
    st = mapping(d.get("settings"))
    table, series = _summary_table(
        d,
        "max_len",
        f"Mean test accuracy by max_len ({d.get('dataset', '')}, {st.get('epochs', '?')} "
        f"epoch(s), limit {st.get('limit')}, {len(d.get('seeds') or [])} seed(s))",
        "L",
    )
    out = Reading(
        tables=[table] if table else [],
        titles={"*": "Test accuracy and training time vs max_len (sweep)"},
    )
    sentences = _trend(series, "max_len")
    times: dict[str, list[tuple[int, float]]] = {}
    for r in _dicts(d.get("summary")):
        if is_num(r.get("train_seconds_mean")) and is_num(r.get("max_len")):
            times.setdefault(str(r.get("model")), []).append(
                (int(r["max_len"]), float(r["train_seconds_mean"]))
            )
    grow = [
        f"{m} {sorted(p)[0][1]:.1f} s to {sorted(p)[-1][1]:.1f} s"
        for m, p in times.items()
        if len(p) >= 2
    ]
    if grow:
        sentences.append("Training time grows with max_len: " + ", ".join(grow) + ".")
    out.captions["*"] = sentences
    return out


def capacity(result: ResultFolder) -> Reading:
    """result.json of rnnlab.diagnostics.capacity (kind "capacity")."""
    d = result.data
    table, series = _summary_table(
        d, "hidden_dim", f"Mean test accuracy by hidden size ({d.get('dataset', '')})", "H"
    )
    out = Reading(
        tables=[table] if table else [],
        figure_order=["hidden", "length"],
        titles={
            "hidden": "Test accuracy vs hidden size",
            "length": "Accuracy per review length, by hidden size",
        },
    )
    out.captions["hidden"] = _trend(series, "H")
    edges = [e for e in d.get("edges") or [] if is_num(e)]
    longest = []
    for r in _dicts(d.get("summary")):
        buckets = _nums(r.get("bucket_accuracy"))
        if buckets and buckets[-1] is not None and is_num(r.get("hidden_dim")):
            longest.append(f"{r.get('model')} H={int(r['hidden_dim'])} {pct(buckets[-1])}")
    if longest and edges:
        out.captions["length"] = [
            "Accuracy per review-length bucket, one line per hidden size.",
            f"On the longest reviews (≥{count_str(edges[-1])} tokens): " + ", ".join(longest) + ".",
        ]
    return out


def count_str(value: Any) -> str:
    return f"{int(value):,}" if is_num(value) else "?"


# ----- timing -------------------------------------------------------------------------------------
def timing(result: ResultFolder) -> Reading:
    """result.json of rnnlab.diagnostics.timing (kind "timing")."""
    d = result.data
    lengths = [int(v) for v in d.get("lengths") or [] if is_num(v)]
    models = _dicts(d.get("models"))
    out = Reading(titles={"*": "Time per batch vs sequence length"})
    rows, slopes, growth = [], [], []
    for m in models:
        for mode in _dicts(m.get("modes")):
            fb = _nums(mode.get("forward_backward"))
            fit = mapping(mode.get("forward_backward_fit"))
            slope, r2 = fit.get("slope"), fit.get("r2")
            rows.append(
                [
                    _label(m),
                    str(mode.get("mode", "")),
                    *(f"{1e3 * v:.1f}" if v is not None else "—" for v in fb),
                    f"{1e3 * slope:.3f}" if is_num(slope) else "—",
                    f"{r2:.3f}" if is_num(r2) else "—",
                ]
            )
            if mode.get("mode") == "padded" and is_num(slope):
                r2_text = f", R² {r2:.2f}" if is_num(r2) else ""
                slopes.append(f"{_label(m)} {1e3 * slope:.3f} ms per step{r2_text}")
            if mode.get("mode") == "padded" and len(fb) >= 2 and fb[0] and fb[-1] is not None:
                growth.append(f"{_label(m)} {factor(fb[-1] / fb[0])}")
    if rows and lengths:
        out.tables.append(
            Table(
                f"Forward + backward time per batch of {d.get('batch_size', '?')} "
                f"(median of {d.get('repeats', '?')}, ms) on {d.get('device', '?')}",
                ["model", "mode", *(f"T={n}" for n in lengths), "ms / step", "R²"],
                rows,
                numeric=[False, False, *([True] * (len(lengths) + 2))],
            )
        )
    sentences = []
    if growth and len(lengths) >= 2:
        sentences.append(
            f"Going from T={lengths[0]} to T={lengths[-1]} ({lengths[-1] / lengths[0]:.0f}x the "
            "steps) multiplies the padded forward+backward time by: " + ", ".join(growth) + "."
        )
    if slopes:
        sentences.append(
            "Slope of a straight line through time vs T (padded): " + ", ".join(slopes) + "; "
            "an R² near 1 means the time is linear in the length, the serial bottleneck."
        )
    out.captions["*"] = sentences
    return out


# ----- padding ------------------------------------------------------------------------------------
def padding(result: ResultFolder) -> Reading:
    """result.json of rnnlab.diagnostics.padding (kind "padding")."""
    d = result.data
    strategies = _dicts(d.get("strategies"))
    out = Reading(titles={"*": "Padding per batching strategy"})
    if not strategies:
        return out
    rows = [
        [
            str(s.get("strategy", "")),
            count_str(s.get("batches")),
            count_str(s.get("positions")),
            count_str(s.get("padded")),
            pct(s["padding_share"]) if is_num(s.get("padding_share")) else "—",
            count_str(s.get("serial_steps")),
        ]
        for s in strategies
    ]
    out.tables.append(
        Table(
            f"Computed positions per epoch ({count_str(d.get('texts'))} {d.get('split', '')} "
            f"texts, batch {d.get('batch_size', '?')}, max_len {d.get('max_len')})",
            ["strategy", "batches", "positions", "padding", "padding share", "serial steps"],
            rows,
            numeric=[False, True, True, True, True, True],
            row_ids=[f"padding-{r[0]}" for r in rows],
        )
    )
    by = {str(s.get("strategy")): s for s in strategies}
    sentences = []
    plain, bucketed = by.get("plain"), by.get("bucketed")
    if (
        plain
        and bucketed
        and is_num(plain.get("padding_share"))
        and is_num(bucketed.get("padding_share"))
    ):
        sentences.append(
            f"Random batches are {pct(plain['padding_share'])} padding; length-bucketed batches "
            f"{pct(bucketed['padding_share'])}."
        )
    if is_num(d.get("packed_tail_share")):
        sentences.append(
            f"Packed sequences compute no padding, but in {pct(d['packed_tail_share'])} of their "
            "serial steps fewer than a quarter of the batch is still running, so the hardware "
            "idles there."
        )
    out.captions["*"] = sentences
    return out


# ----- synthetic ----------------------------------------------------------------------------------
def synthetic(result: ResultFolder) -> Reading:
    """result.json of rnnlab.diagnostics.synthetic_sweep (kind "synthetic")."""
    d = result.data
    metric = str(d.get("metric") or "accuracy")
    task = str(d.get("task") or "synthetic task")
    accuracy = metric == "accuracy"
    series: dict[str, dict[int, float]] = {}
    grads: dict[str, dict[int, float]] = {}
    for r in _dicts(d.get("summary")):
        if not is_num(r.get("length")):
            continue
        model, length = str(r.get("model")), int(r["length"])
        if is_num(r.get("mean")):
            series.setdefault(model, {})[length] = float(r["mean"])
        if is_num(r.get("first_step_grad_mean")):
            grads.setdefault(model, {})[length] = float(r["first_step_grad_mean"])
    out = Reading(
        figure_order=["vs_length", "grad"],
        titles={
            "accuracy": f"{task}: test accuracy vs sequence length",
            "mse": f"{task}: test MSE vs sequence length",
            "grad": f"{task}: gradient reaching the first step",
        },
    )
    lengths = sorted({n for points in series.values() for n in points})
    if not lengths:
        return out
    show = (lambda v: pct(v)) if accuracy else (lambda v: sig(v))
    rows = [
        [model, *(show(points[n]) if n in points else "—" for n in lengths)]
        for model, points in series.items()
    ]
    out.tables.append(
        Table(
            f"{task}: mean test {metric} by sequence length T",
            ["model", *(f"T={n}" for n in lengths)],
            rows,
            numeric=[False, *([True] * len(lengths))],
            row_ids=[f"synthetic-{task}-{m}" for m in series],
        )
    )
    chance = d.get("chance")
    per_model = "; ".join(
        f"{model} " + ", ".join(f"{show(points[n])} at T={n}" for n in sorted(points))
        for model, points in series.items()
    )
    sentences = [f"{task}, test {metric}: {per_model}."]
    if is_num(chance):
        what = "Guessing scores" if accuracy else "Predicting the mean gives an MSE of"
        sentences.append(f"{what} {show(float(chance))}.")
    reading = [line for line in d.get("reading") or [] if isinstance(line, str)]
    if reading:
        sentences.append("In short: " + "; ".join(reading) + ".")
    out.captions["*"] = sentences
    longest = lengths[-1]
    at_longest = [(m, g[longest]) for m, g in grads.items() if longest in g]
    if at_longest:
        out.captions["grad"] = [
            "Mean norm of the gradient of each example's loss with respect to its first input: "
            "how much the first step, the one that decides the label, can still learn.",
            f"At T={longest}: " + ", ".join(f"{m} {v:.2e}" for m, v in at_longest) + ".",
        ]
    return out


# ----- parameters ---------------------------------------------------------------------------------
def parameters(result: ResultFolder) -> Reading:
    """result.json of rnnlab.diagnostics.parameters (kind "parameters")."""
    models = _dicts(result.data.get("models"))
    out = Reading(titles={"*": "Parameters per model: embedding, recurrent, head"})
    rows = []
    for m in models:
        counts = mapping(m.get("counts"))
        rows.append(
            [_label(m), str(m.get("kind", ""))]
            + [count_str(counts.get(k)) for k in ("embedding", "recurrent", "head", "total")]
        )
    if rows:
        out.tables.append(
            Table(
                "Parameters per model",
                ["model", "cell", "embedding", "recurrent", "head", "total"],
                rows,
                numeric=[False, False, True, True, True, True],
                row_ids=[f"paramcount-{r[0]}" for r in rows],
            )
        )
    recurrent = {
        str(m.get("kind")): (m.get("counts") or {}).get("recurrent")
        for m in models
        if isinstance(m.get("counts"), dict)
    }
    base = recurrent.get("rnn")
    if is_num(base) and base:
        ratios = [
            f"{k.upper()} {factor(v / base)}"
            for k, v in recurrent.items()
            if k != "rnn" and is_num(v)
        ]
        if ratios:
            out.captions["*"] = [
                f"Recurrent weights relative to the vanilla RNN ({count_str(base)}): "
                + ", ".join(ratios)
                + "; bars are stacked embedding, recurrent and head parameters."
            ]
    return out
