"""`rnnlab models`: the presets, their layout and parameter counts."""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from rnnlab.models import (
    FAMILIES,
    count_parameters,
    create_model,
    get_preset,
    list_models,
    model_class,
)
from rnnlab.tables import Table, print_tables

PARTS = ("embedding", "recurrent", "head", "total")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the model presets with their parameter counts",
        description="List the model presets (description, layout and parameters per part) "
        "and the model families they build.",
    )
    parser.add_argument("--vocab-size", type=int, default=20_000, help="embedding rows")
    parser.add_argument("--num-classes", type=int, default=2, help="output classes")
    parser.add_argument("--embed-dim", type=int, help="override every preset's embedding size")
    parser.add_argument("--hidden-dim", type=int, help="override every preset's hidden size")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run_models)


def describe_presets(
    *,
    vocab_size: int,
    num_classes: int,
    embed_dim: int | None = None,
    hidden_dim: int | None = None,
) -> list[dict[str, Any]]:
    """One row per preset: name, description, spec settings and parameter counts."""
    rows = []
    for name in list_models():
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            model = create_model(
                name,
                vocab_size=vocab_size,
                num_classes=num_classes,
                embed_dim=embed_dim,
                hidden_dim=hidden_dim,
            )
        spec = model.spec
        rows.append(
            {
                "name": name,
                "description": get_preset(name).description,
                "layout": model.layout(),
                "spec": spec.to_dict(),
                "parameters": {k: v for k, v in count_parameters(model).items() if k in PARTS},
            }
        )
    return rows


def run_models(args: argparse.Namespace) -> int:
    rows = describe_presets(
        vocab_size=args.vocab_size,
        num_classes=args.num_classes,
        embed_dim=args.embed_dim,
        hidden_dim=args.hidden_dim,
    )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(
        f"Model presets (vocab {args.vocab_size:,}, {args.num_classes} classes)",
        ["preset", "description", "layout", *PARTS],
        [
            [row["name"], row["description"], row["layout"],
             *(f"{row['parameters'][p]:,}" for p in PARTS)]
            for row in rows
        ],
        numeric=[False, False, False, *([True] * len(PARTS))],
    )  # fmt: skip
    print_tables([table, families_table()])
    return 0


def families_table() -> Table:
    """One row per registered model kind: what `kind:` in a config may name."""
    rows = []
    for kind, declared in FAMILIES.items():
        builder = model_class(kind)
        rows.append(
            [kind, declared.display, declared.group, " ".join(builder.sequence_modes),
             "yes" if builder.has_states else "no", ", ".join(builder.poolings)]
        )  # fmt: skip
    return Table(
        "Model families (the kinds a preset or a config's `kind:` may name)",
        ["kind", "name", "group", "sequence modes", "per-step states", "poolings"],
        rows,
        numeric=[False] * 6,
    )
