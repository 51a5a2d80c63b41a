"""A compare folder: one run folder per model plus compare.json and compare_curves.png.

```
<compare>/<model>/      a run folder per model (rnnlab.runs.folder)
<compare>/compare.json  dataset, models, rows (one per model, with 95% intervals), paired
                        (McNemar's test for each pair of models on the same test texts),
                        config, histories
<compare>/compare_curves.png
```
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rnnlab.config import RunConfig
from rnnlab.errors import RnnlabError
from rnnlab.formatting import MISSING, fixed
from rnnlab.io import write_json_atomic
from rnnlab.runs.folder import (
    DEFAULT_OUT,
    check_name,
    is_run_folder,
    read_metrics,
    read_predictions,
    read_summary,
)
from rnnlab.tables import Table
from rnnlab.training.curves import plot_compare_curves
from rnnlab.training.metrics import SIGNIFICANT, describe_p, mcnemar

COMPARE = "compare.json"
COMPARE_CURVES = "compare_curves.png"


def compare_row(model: str, summary: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """One row of the comparison table, from a run's summary.json."""
    test = summary.get("test") or {}
    return {
        "model": model,
        "status": summary.get("status"),
        "parameters": ((summary.get("model") or {}).get("parameters") or {}).get("total"),
        "test_accuracy": test.get("accuracy"),
        "test_accuracy_interval": test.get("accuracy_interval"),
        "test_macro_f1": test.get("macro_f1"),
        "test_macro_f1_interval": test.get("macro_f1_interval"),
        "test_examples": test.get("examples"),
        "test_mse": test.get("mse"),
        "best_epoch": summary.get("best_epoch"),
        "epochs_run": summary.get("epochs_run"),
        "seconds_per_epoch": summary.get("seconds_per_epoch"),
        "train_tokens_per_s": summary.get("train_tokens_per_s"),
        "run_dir": run_dir,
    }


def write_compare(
    folder: Path, models: Sequence[str], done: Sequence[str], dataset: str, config: RunConfig
) -> dict[str, Any]:
    """compare.json and compare_curves.png from the saved runs `folder/<model>` of `done`
    (the models trained so far, in order); returns what compare.json holds."""
    rows, histories = [], {}
    for model in done:
        rows.append(compare_row(model, read_summary(folder / model), model))
        histories[model] = read_metrics(folder / model)
    data = {
        "dataset": dataset,
        "models": list(models),
        "rows": rows,
        "paired": paired_tests({model: folder / model for model in done}),
        "config": config.to_dict(),
        "histories": histories,
    }
    write_json_atomic(folder / COMPARE, data)
    if any(histories.values()):
        plot_compare_curves(histories, folder / COMPARE_CURVES, title=folder.name)
    return data


def clear_compare(out: Path | str | None, name: str) -> None:
    """--overwrite for compare: remove `out/name` if it is a compare folder (compare.json, or
    only run folders inside), refuse anything else."""
    check_name(name)
    path = (Path(out) if out is not None else DEFAULT_OUT) / name
    if not path.exists():
        return
    children = list(path.iterdir()) if path.is_dir() else []
    if not path.is_dir() or not (
        (path / COMPARE).is_file() or all(is_run_folder(child) for child in children)
    ):
        raise RnnlabError(
            f"{path} exists and is not an rnnlab compare folder; --overwrite only replaces "
            "compare folders, pick another --name"
        )
    shutil.rmtree(path)


def paired_tests(runs: Mapping[str, Path]) -> list[dict[str, Any]]:
    """McNemar's test for every pair of runs (label -> run folder) whose saved test labels
    are the same texts' (same labels in the same order): the runs of one comparison."""
    correct, truth = {}, {}
    for model, run_dir in runs.items():
        found = read_predictions(run_dir)
        if found is not None:
            labels, predictions = found
            truth[model] = labels
            correct[model] = [a == b for a, b in zip(labels, predictions, strict=True)]
    out = []
    names = list(correct)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if truth[a] != truth[b]:
                continue  # not the same test texts
            test = mcnemar(correct[a], correct[b])
            out.append(
                {
                    "a": a, "b": b, "only_a": test.only_a, "only_b": test.only_b,
                    "p_value": test.p_value, "method": test.method, "examples": len(correct[a]),
                }
            )  # fmt: skip
    return out


def paired_reading(pair: dict[str, Any]) -> str:
    """'lstm beats rnn on the same 2,490 test texts (McNemar, p < 0.001)', or 'within noise'."""
    a, b, p = pair["a"], pair["b"], float(pair["p_value"])
    if p < SIGNIFICANT and pair["only_a"] != pair["only_b"]:
        winner, loser = (a, b) if pair["only_a"] > pair["only_b"] else (b, a)
        return (
            f"{winner} beats {loser} on the same {pair['examples']:,} test texts "
            f"(McNemar, {describe_p(p)})"
        )
    return f"{a} vs {b}: the difference is within noise (McNemar, {describe_p(p)})"


def compare_table(rows: Sequence[dict[str, Any]], paired: Sequence[dict[str, Any]] = ()) -> Table:
    """One row per model (compare.json's rows): parameters, test scores with the accuracy's
    95% interval, s/epoch, tokens/s; the paired tests' readings under it."""
    regression = any(r.get("test_mse") is not None for r in rows)
    scores = ["test mse"] if regression else ["test acc", "95% interval", "macro-F1"]
    body = []
    for r in rows:
        interval = r.get("test_accuracy_interval")
        values = [fixed(r.get("test_mse"), ".4f")] if regression else [
            fixed(r.get("test_accuracy"), ".4f"),
            f"{interval[0]:.3f}–{interval[1]:.3f}" if interval else MISSING,
            fixed(r.get("test_macro_f1"), ".4f"),
        ]  # fmt: skip
        body.append(
            [r["model"], f"{r.get('parameters') or 0:,}", *values,
             fixed(r.get("seconds_per_epoch"), ".1f"), fixed(r.get("train_tokens_per_s"), ",.0f"),
             str(r.get("best_epoch") or MISSING), str(r.get("status"))]
        )  # fmt: skip
    columns = ["model", "parameters", *scores, "s/epoch", "tokens/s", "best", "status"]
    return Table(
        "compare", columns, body, [paired_reading(pair) for pair in paired],
        numeric=[c not in ("model", "status") for c in columns],
    )  # fmt: skip
