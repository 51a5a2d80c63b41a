"""`rnnlab datasets` and `rnnlab datasets show NAME`, plus the data flags other commands reuse."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from rnnlab.config import DataConfig


def add_data_arguments(parser: argparse.ArgumentParser, *, dataset_required: bool = False) -> None:
    """Flags that fill a DataConfig; unset ones keep the config's default."""
    g = parser.add_argument_group("data")
    if dataset_required:
        g.add_argument(
            "dataset", help="dataset name (rnnlab datasets), local file, or synthetic:TASK"
        )
    else:
        g.add_argument(
            "--dataset", help="dataset name (rnnlab datasets), local file, or synthetic:TASK"
        )
    g.add_argument("--source", choices=["auto", "bundled", "hub"], help="bundled (offline) or hub")
    g.add_argument("--text-column", help="text column of a local file (default: text, then review)")
    g.add_argument(
        "--label-column", help="label column of a local file (default: label, then sentiment)"
    )
    g.add_argument("--tokenizer", help="regex | whitespace | wordpiece | bpe | pretrained:PATH")
    g.add_argument("--max-size", type=int, help="vocabulary size (default 20000)")
    g.add_argument("--min-freq", type=int, help="drop words seen fewer times in train (default 1)")
    g.add_argument(
        "--max-len", type=int, help="keep at most this many tokens per text (default 400)"
    )
    g.add_argument("--full-length", action="store_true", help="keep whole texts (no max-len)")
    g.add_argument(
        "--truncate", choices=["head", "tail"], help="keep the head or the tail of long texts"
    )
    g.add_argument("--letters-only", action="store_true", default=None, help="keep letters only")
    g.add_argument("--keep-html", action="store_true", help="do not strip HTML tags and entities")
    g.add_argument("--keep-case", action="store_true", help="do not lower-case")
    g.add_argument(
        "--drop-empty", action="store_true", help="drop texts with no tokens (default: one <unk>)"
    )
    g.add_argument(
        "--limit", type=int, help="use at most this many examples (stratified), for quick runs"
    )
    g.add_argument("--data-seed", type=int, help="seed of the splits (default 0)")
    g.add_argument("--length", type=int, help="synthetic tasks: sequence length")
    g.add_argument("--num-examples", type=int, help="synthetic tasks: number of examples")
    g.add_argument("--vocab-size", type=int, help="synthetic token tasks: number of symbols")


def data_config_from_args(args: argparse.Namespace, base: DataConfig | None = None) -> DataConfig:
    from rnnlab.config import replace

    base = base or DataConfig()
    changes: dict[str, Any] = {
        "dataset": args.dataset,
        "source": args.source,
        "text_column": args.text_column,
        "label_column": args.label_column,
        "tokenizer": args.tokenizer,
        "max_size": args.max_size,
        "min_freq": args.min_freq,
        "max_len": args.max_len,
        "truncate": args.truncate,
        "letters_only": args.letters_only,
        "limit": args.limit,
        "seed": args.data_seed,
        "length": args.length,
        "num_examples": args.num_examples,
        "vocab_size": args.vocab_size,
        "strip_html": False if args.keep_html else None,
        "lowercase": False if args.keep_case else None,
        "empty": "drop" if args.drop_empty else None,
    }
    config = replace(base, **changes)
    if args.full_length:  # replace() skips None values, so clear max_len explicitly
        config = dataclasses.replace(config, max_len=None)
    return config


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
    add_data_arguments(show, dataset_required=True)
    show.add_argument("--json", action="store_true", help="print JSON instead of tables")
    show.set_defaults(handler=_show)


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from rnnlab.data.sources import DATASETS

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
    try:
        from rnnlab.data.synthetic import TASKS

        return "generated long-memory tasks: " + ", ".join(f"synthetic:{t}" for t in TASKS)
    except ImportError:
        return "generated long-memory tasks"


def _show(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from rnnlab.data.summary import summarize

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
