"""A run's summary.json and metrics.jsonl as tables (a notebook's view of a run)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rnnlab.formatting import MISSING, fixed, sig
from rnnlab.tables import Table


def run_tables(summary: dict[str, Any], history: Sequence[dict[str, Any]]) -> list[Table]:
    """Scores and timings, per class, per epoch: the tables that have rows."""
    tables = [_run_table(summary), _per_class_table(summary), _history_table(history)]
    return [t for t in tables if t.rows]


def _interval(pair: Sequence[float] | None) -> str:
    return f"{pair[0]:.3f}–{pair[1]:.3f}" if pair else MISSING


def _run_table(summary: dict[str, Any]) -> Table:
    """A run's summary.json as one table: status, model, scores (95% intervals), timings."""
    test = summary.get("test") or {}
    model = summary.get("model") or {}
    parameters = (model.get("parameters") or {}).get("total") or 0
    rows = [
        ["status", str(summary.get("status"))],
        ["model", f"{model.get('name')} ({model.get('kind')}), {parameters:,} parameters"],
    ]
    if "accuracy" in test:
        for name, key in (("test accuracy", "accuracy"), ("test macro-F1", "macro_f1")):
            rows.append(
                [name, f"{fixed(test[key], '.4f')} ({_interval(test.get(key + '_interval'))})"]
            )
        rows.append(["test examples", f"{test['examples']:,}"])
    elif "mse" in test:
        rows.append(["test mse", fixed(test["mse"], ".4f")])
    rows += [
        ["epochs (best)", f"{summary.get('epochs_run')} ({summary.get('best_epoch') or MISSING})"],
        ["s / epoch", fixed(summary.get("seconds_per_epoch"), ".1f")],
        ["tokens / s", fixed(summary.get("train_tokens_per_s"), ",.0f")],
        ["device", str(summary.get("device"))],
    ]
    notes = ["test accuracy and macro-F1 with their 95% intervals"] if "accuracy" in test else []
    return Table(str(summary.get("name", "run")), ["", "value"], rows, notes, [False, False])


def _per_class_table(summary: dict[str, Any]) -> Table:
    """Test precision, recall, F1 and support per class (none for regression)."""
    per_class = (summary.get("test") or {}).get("per_class") or {}
    rows = [
        [
            str(name),
            fixed(m["precision"], ".4f"),
            fixed(m["recall"], ".4f"),
            fixed(m["f1"], ".4f"),
            f"{m['support']:,}",
        ]
        for name, m in per_class.items()
    ]
    return Table("test, per class", ["class", "precision", "recall", "F1", "support"], rows)


def _history_table(history: Sequence[dict[str, Any]]) -> Table:
    """One row per epoch (metrics.jsonl); `*` marks a new best epoch."""
    keys = ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1", "val_mse"]
    keys = [k for k in keys if any(r.get(k) is not None for r in history)]
    rows = [
        [f"{r['epoch']}{' *' if r.get('best') else ''}", *(fixed(r.get(k), ".4f") for k in keys),
         sig(r["lr"]), fixed(r["seconds"], ".1f"), fixed(r["train_tokens_per_s"], ",.0f")]
        for r in history
    ]  # fmt: skip
    columns = ["epoch", *(k.replace("_", " ") for k in keys), "lr", "seconds", "tokens/s"]
    return Table("epochs", columns, rows, ["* a new best epoch"] if rows else [])
