"""`rnnlab datasets` and `rnnlab datasets show NAME`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from rnnlab.cli.options import add_data_options, data_config_from_args
from rnnlab.data.sources import DATASETS
from rnnlab.data.summary import summarize
from rnnlab.data.synthetic import TASKS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "datasets", help="list datasets, or summarise one (datasets show NAME)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=_list)
    sub = parser.add_subparsers(dest="datasets_command", metavar="show")
    show = sub.add_parser(
        "show", help="examples per split, labels, token lengths, vocabulary, <unk> share"
    )
    add_data_options(show, positional=True)
    show.add_argument("--json", action="store_true", help="print JSON instead of tables")
    show.set_defaults(handler=_show)


def _list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = [
        {
            "name": d.name,
            "classes": len(d.labels),
            "offline": d.bundled,
            "hub": d.hub_id or "",
            "description": d.description,
        }
        for d in DATASETS.values()
    ]
    rows.append(
        {
            "name": "synthetic:TASK",
            "classes": 2,
            "offline": True,
            "hub": "",
            "description": _synthetic_line(),
        }
    )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="rnnlab datasets")
    for col in ("name", "classes", "offline", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"], str(r["classes"]), "yes" if r["offline"] else "hub only", r["description"]
        )
    console = Console()
    console.print(table)
    console.print(
        "Local files: --dataset path/to/file.{csv,tsv,jsonl,parquet} [--text-column C --label-column C]"
    )
    return 0


def _synthetic_line() -> str:
    return "generated long-memory tasks: " + ", ".join(f"synthetic:{t}" for t in TASKS)


def _show(args: argparse.Namespace) -> int:
    cfg = data_config_from_args(args)
    summary = summarize(cfg)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return 0
    console = Console()
    console.print(
        f"[bold]{summary.dataset}[/bold] ({summary.source}): {len(summary.label_names)} classes "
        f"{summary.label_names}, tokenizer {summary.tokenizer}, vocabulary {summary.vocab_size:,}, "
        f"{summary.duplicates_dropped} duplicate texts dropped"
    )
    table = Table(title="splits (token lengths before truncation)")
    for col in (
        "split",
        "examples",
        "mean",
        "median",
        "p95",
        "max",
        f">{summary.max_len}",
        "<unk>",
        "empty",
    ):
        table.add_column(col, justify="right")
    for name, s in summary.splits.items():
        table.add_row(
            name,
            f"{s.examples:,}",
            f"{s.mean_tokens:.1f}",
            f"{s.median_tokens:.0f}",
            f"{s.p95_tokens:.0f}",
            f"{s.max_tokens:,}",
            f"{s.truncated:,}",
            f"{s.unk_share:.2%}",
            str(summary.empty_texts[name]),
        )
    console.print(table)
    labels = Table(title="examples per label")
    labels.add_column("label")
    for name in summary.splits:
        labels.add_column(name, justify="right")
    for label in summary.label_names:
        labels.add_row(label, *(f"{s.label_counts[label]:,}" for s in summary.splits.values()))
    console.print(labels)
    console.print(
        f"[dim]>{summary.max_len}: texts cut to max_len; <unk>: share of tokens outside the "
        "vocabulary; empty: texts with no token (become one <unk>, or --drop-empty)[/dim]"
    )
    return 0
