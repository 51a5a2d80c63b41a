"""`rnnlab datasets` and `rnnlab datasets show NAME`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rnnlab.cli.options import add_data_options, data_config_from_args
from rnnlab.data.sources import DATASETS
from rnnlab.data.summary import summarize
from rnnlab.data.synthetic import TASKS
from rnnlab.tables import Table, print_tables


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
    table = Table(
        "rnnlab datasets",
        ["name", "classes", "offline", "description"],
        [
            [r["name"], str(r["classes"]), "yes" if r["offline"] else "hub only", r["description"]]
            for r in rows
        ],
        ["Local files: --dataset path/to/file.{csv,tsv,jsonl,parquet} "
         "[--text-column C --label-column C]"],
        [False, True, False, False],
    )  # fmt: skip
    print_tables([table])
    return 0


def _synthetic_line() -> str:
    return "generated long-memory tasks: " + ", ".join(f"synthetic:{t}" for t in TASKS)


def _show(args: argparse.Namespace) -> int:
    cfg = data_config_from_args(args)
    summary = summarize(cfg)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return 0
    print(
        f"{summary.dataset} ({summary.source}): {len(summary.label_names)} classes "
        f"{summary.label_names}, tokenizer {summary.tokenizer}, vocabulary {summary.vocab_size:,}, "
        f"{summary.duplicates_dropped} duplicate texts dropped"
    )
    splits = Table(
        "splits (token lengths before truncation)",
        ["split", "examples", "mean", "median", "p95", "max", f">{summary.max_len}", "<unk>",
         "empty"],
        [
            [name, f"{s.examples:,}", f"{s.mean_tokens:.1f}", f"{s.median_tokens:.0f}",
             f"{s.p95_tokens:.0f}", f"{s.max_tokens:,}", f"{s.truncated:,}", f"{s.unk_share:.2%}",
             str(summary.empty_texts[name])]
            for name, s in summary.splits.items()
        ],
    )  # fmt: skip
    labels = Table(
        "examples per label",
        ["label", *summary.splits],
        [
            [label, *(f"{s.label_counts[label]:,}" for s in summary.splits.values())]
            for label in summary.label_names
        ],
        [f">{summary.max_len}: texts cut to max_len; <unk>: share of tokens outside the "
         "vocabulary; empty: texts with no token (become one <unk>, or --drop-empty)"],
    )  # fmt: skip
    print_tables([splits, labels])
    return 0
