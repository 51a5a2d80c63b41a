"""CLI flags derived from a Settings dataclass: one flag per field, typed from its annotation,
documented by its docstring, defaulting to "not given" so the preset's value stays.

    seq_len: int = 200              ->  --seq-len T        (int)
    lengths: tuple[int, ...] = ...  ->  --lengths L,L,...  (comma-separated ints)
    split: Literal["test", "val"]   ->  --split {test,val}
    limit: int | None = None        ->  --limit N          ("none" sets None)
    gate_bias: float | None = 5.0   ->  --gate-bias B
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args, get_origin, get_type_hints

from rnnlab.cli.options import OFF
from rnnlab.config import field_docs, flag_name

DEST = "settings__"


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return set(parser._option_string_actions)  # argparse has no public way to ask


def _scalar(tp: Any, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return tp(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None

    return parse


def _parser_for(tp: Any) -> tuple[Callable[[str], Any], list[str] | None, str]:
    """(argparse type, choices, metavar) for a field annotation."""
    optional = False
    if get_origin(tp) in (typing.Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        optional, tp = len(options) < len(get_args(tp)), options[0]
    if get_origin(tp) is Literal:
        return str, [str(v) for v in get_args(tp)], ""
    if get_origin(tp) is tuple:
        (item,) = [a for a in get_args(tp) if a is not Ellipsis]
        one = _scalar(item, "integers" if item is int else "numbers" if item is float else "names")

        def parse_list(text: str) -> tuple[Any, ...]:
            return tuple(one(part.strip()) for part in text.split(",") if part.strip())

        return parse_list, None, "A,B,..." if item is str else "N,N,..."
    what = {int: "an integer", float: "a number"}.get(tp, "a value")
    parse = _scalar(tp, what)
    if optional:

        def parse_or_off(text: str) -> Any:
            return OFF if text.strip().lower() == "none" else parse(text)

        return parse_or_off, None, "N"
    return parse, None, "N" if tp in (int, float) else "NAME"


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return "none" if value is None else str(value)


def add_settings_flags(
    parser: argparse.ArgumentParser,
    settings: Any,
    *,
    prefix: str = "",
    title: str | None = None,
    positional: Sequence[str] = (),
) -> None:
    """A flag per field of `settings` (a Settings value: its values are the defaults shown).

    `prefix` names the flags --<prefix>-<field> (diagnose all, study); fields whose flag the
    parser already has (e.g. --epochs from the training flags) are left to that flag, and the
    field keeps its preset value unless it is None ("use the training settings' value").
    """
    cls = type(settings)
    hints = get_type_hints(cls)
    docs = field_docs(cls)  # type: ignore[arg-type]  # a class is hashable
    taken = _options(parser)
    group = parser.add_argument_group(title) if title else parser
    for f in dataclasses.fields(cls):
        name = f"{prefix}-{f.name}" if prefix else f.name
        flag = flag_name(name)
        if flag in taken:
            continue
        parse, choices, metavar = _parser_for(hints[f.name])
        doc = docs.get(f.name, "").rstrip(".")
        help_text = f"{doc} (default {_show(getattr(settings, f.name))})"
        if hints[f.name] is bool:
            group.add_argument(flag, dest=DEST + name.replace("-", "_"),
                               action=argparse.BooleanOptionalAction, help=help_text)  # fmt: skip
        elif f.name in positional:
            group.add_argument(DEST + name.replace("-", "_"), metavar=f.name.upper(), type=parse,
                               help=docs.get(f.name, ""))  # fmt: skip
        else:
            group.add_argument(flag, dest=DEST + name.replace("-", "_"), type=parse,
                               choices=choices, metavar=metavar or None, help=help_text)  # fmt: skip


def settings_from_args(args: argparse.Namespace, settings: Any, *, prefix: str = "") -> Any:
    """`settings` with every given flag applied (checked by the dataclass itself)."""
    changes = {}
    for f in dataclasses.fields(type(settings)):
        name = f"{prefix}-{f.name}" if prefix else f.name
        value = getattr(args, DEST + name.replace("-", "_"), None)
        if value is not None:
            changes[f.name] = None if value == OFF else value
    return dataclasses.replace(settings, **changes) if changes else settings


def parse_field(settings: Any, field: str, text: str) -> Any:
    """`text` as the value of `field` (for flags that set several fields at once)."""
    parse, choices, _ = _parser_for(get_type_hints(type(settings))[field])
    if choices is not None and text not in choices:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {text!r}")
    value = parse(text)
    return None if value == OFF else value
