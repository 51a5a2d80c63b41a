"""The run flags (data, model, training), generated from the RunConfig fields, and how they
become a RunConfig.

Every field of DataConfig, ModelConfig and TrainConfig is a flag `--field-name`, typed by its
annotation (a Literal gives the choices, a bool --x/--no-x), with its docstring as help; a
field declared with `config.flag(...)` says how its flag departs from that (another name, a
one-way switch, words that mean None, or no flag at all). Every flag defaults to None ("not
given"), so it overrides `--config file.yaml` only when set. Flags write into `data__*`,
`model__*` and `train__*` destinations; `run_config_from_args` collects them. A value of
`OFF` sets a field to None on purpose (e.g. `--max-len none`).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args, get_origin, get_type_hints

from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig, field_docs, flag_name

OFF = "__off__"
"""Parsed value meaning "set this field to None" (replace() would otherwise skip None)."""

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
TENSORBOARD = ("tensorboard", "tensorboard_every")
"""The training fields whose flags compare and study take as well."""


def _number_or_off(cast: type, kind: str, off_words: Sequence[str]) -> Callable[[str], Any]:
    """argparse type: a value of `cast`, or one of `off_words` (-> OFF)."""

    def parse(text: str) -> Any:
        if text.strip().lower() in off_words:
            return OFF
        try:
            return cast(text)
        except ValueError:
            words = " or ".join(repr(w) for w in off_words)
            raise argparse.ArgumentTypeError(
                f"expected {kind}{' or ' + words if words else ''}, got {text!r}"
            ) from None

    return parse


def _flag_spec(section: str, f: dataclasses.Field[Any], hint: Any, doc: str) -> dict[str, Any]:
    """The add_argument keywords of one config field (its flag under "flag")."""
    how = f.metadata.get("flag", {})
    default = ("on" if f.default else "off") if isinstance(f.default, bool) else f.default
    shown = "" if default is None or "const" in how else f" (default {default})"
    help_text = how.get("help", doc + shown).replace("%", "%%")  # argparse formats help with %
    spec: dict[str, Any] = {"dest": f"{section}__{f.name}", "help": help_text}
    if "const" in how:
        return {**spec, "action": "store_const", "const": how["const"]}
    if get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    if hint is bool:
        return {**spec, "action": argparse.BooleanOptionalAction}
    if get_origin(hint) is Literal:
        return {**spec, "choices": [str(v) for v in get_args(hint)]}
    kind = {int: "an integer", float: "a number"}.get(hint, "a value")
    metavar = how.get("metavar") or ("N" if hint in (int, float) else "NAME")
    if hint is float and metavar == "N":
        metavar = "X"
    return {**spec, "type": _number_or_off(hint, kind, how.get("off", ())), "metavar": metavar}


def add_section_flags(
    group: Any,
    section: str,
    *,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    positional: str | None = None,
) -> None:
    """One flag per field of RunConfig's `section` (`only` these, or all but `skip`); the
    field named `positional` becomes a positional argument. Flags the parser already has are
    left to it."""
    cls = SECTIONS[section]
    hints, docs = get_type_hints(cls), field_docs(cls)
    taken = set(group._option_string_actions)  # argparse has no public way to ask
    for f in dataclasses.fields(cls):
        how = f.metadata.get("flag", {})
        if (only and f.name not in only) or f.name in skip or how.get("name", "") is None:
            continue
        spec = _flag_spec(section, f, hints[f.name], docs.get(f.name, "").rstrip("."))
        if f.name == positional:
            dest = spec.pop("dest")
            group.add_argument(dest, **{**spec, "metavar": f.name.upper()})
            continue
        name = how.get("name") or flag_name(f.name)
        if name not in taken:
            group.add_argument(name, **spec)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file with data/model/train sections; flags given here override it",
    )


def add_data_options(
    parser: argparse.ArgumentParser, *, dataset: bool = True, positional: bool = False
) -> None:
    """The data flags; the dataset as `--dataset`, as a positional DATASET, or not at all."""
    group = parser.add_argument_group("data")
    add_section_flags(
        group, "data", skip=() if dataset or positional else ("dataset",),
        positional="dataset" if positional else None,
    )  # fmt: skip


def add_model_options(parser: argparse.ArgumentParser, *, model: bool = True) -> None:
    """The model flags; `model=False` leaves out --model (the command names its models)."""
    add_section_flags(parser.add_argument_group("model"), "model", skip=() if model else ("name",))


def add_train_options(parser: argparse.ArgumentParser) -> None:
    add_section_flags(parser.add_argument_group("training"), "train")


def add_tensorboard_options(group: Any) -> None:
    """--tensorboard and --tensorboard-every (train, compare, study)."""
    add_section_flags(group, "train", only=TENSORBOARD)


def add_nproc_option(parser: argparse.ArgumentParser) -> None:
    """--nproc N: data-parallel training on N processes of this machine (train, compare)."""
    parser.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train data-parallel on N processes of this machine, started by torchrun "
        "(gloo on CPUs, NCCL on GPUs); --batch-size is per process, the global batch N x it",
    )


def add_run_options(parser: argparse.ArgumentParser, *, model: bool = True) -> None:
    """--config plus the data, model and train groups (what `rnnlab train` takes)."""
    add_config_option(parser)
    add_data_options(parser)
    add_model_options(parser, model=model)
    add_train_options(parser)


def section_changes(args: argparse.Namespace, section: str) -> dict[str, Any]:
    """The flags given for one section: {field: value}, OFF already turned into None."""
    prefix = f"{section}__"
    changes = {}
    for key, value in vars(args).items():
        if key.startswith(prefix) and value is not None:
            changes[key[len(prefix) :]] = None if value == OFF else value
    return changes


def data_config_from_args(args: argparse.Namespace) -> DataConfig:
    """The DataConfig defaults with every given data flag applied."""
    return dataclasses.replace(DataConfig(), **section_changes(args, "data"))


def run_config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """`base` (or --config's file, or the defaults) with every given flag applied."""
    if base is None:
        path = getattr(args, "config", None)
        base = RunConfig.load_yaml(path) if path else RunConfig()
    sections = {
        name: dataclasses.replace(getattr(base, name), **section_changes(args, name))
        for name in SECTIONS
    }
    return RunConfig(**sections)
