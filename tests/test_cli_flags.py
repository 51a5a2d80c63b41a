"""The run flags come from the RunConfig fields: one per field, documented by its docstring,
and each sets its own field."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import typing
from typing import Any, Literal, get_args, get_origin, get_type_hints

import pytest

from rnnlab.cli.options import SECTIONS, add_run_options, run_config_from_args
from rnnlab.config import field_docs, flag_name


@functools.cache  # parsing never changes the parser
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_run_options(parser)
    return parser


def _sample(hint: Any, default: Any) -> tuple[list[str], Any]:
    """Command-line words for a value unlike the default, and the value they give."""
    if get_origin(hint) in (typing.Union, type(int | None)):
        hint = next(a for a in get_args(hint) if a is not type(None))
    if get_origin(hint) is Literal:
        value = next(v for v in get_args(hint) if v != default)
        return [str(value)], value
    if hint is int:
        return ["7"], 7
    if hint is float:
        return ["0.25"], 0.25
    return ["latin-1"], "latin-1"  # a text value every str field accepts (an encoding too)


FIELDS = [
    (section, f)
    for section, cls in SECTIONS.items()
    for f in dataclasses.fields(cls)
    if f.metadata.get("flag", {}).get("name", "") is not None
]


@pytest.mark.parametrize(("section", "field"), FIELDS, ids=[f"{s}.{f.name}" for s, f in FIELDS])
def test_every_field_flag_sets_its_field(section: str, field: dataclasses.Field[Any]) -> None:
    how = field.metadata.get("flag", {})
    flag = how.get("name") or flag_name(field.name)
    hint = get_type_hints(SECTIONS[section])[field.name]
    if "const" in how:
        words, value = [flag], how["const"]
    elif hint in (bool, bool | None):
        words, value = [flag if not field.default else "--no-" + flag[2:]], not field.default
    else:
        extra, value = _sample(hint, field.default)
        words = [flag, *extra]
    config = run_config_from_args(_parser().parse_args(words))
    assert getattr(getattr(config, section), field.name) == value


def test_every_field_is_documented_and_the_help_shows_it() -> None:
    text = " ".join(_parser().format_help().split())
    for cls in SECTIONS.values():
        docs = field_docs(cls)
        missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
        assert missing == [], f"{cls.__name__}: fields without a docstring: {missing}"
    assert "Keep at most this many tokens per text" in text and "(default 400)" in text
    assert "--keep-html do not strip HTML tags" in text  # a switch's own help


def test_words_that_mean_none_and_fields_without_a_flag() -> None:
    config = run_config_from_args(
        _parser().parse_args(["--max-len", "none", "--clip-norm", "0", "--patience", "none"])
    )
    assert config.data.max_len is None and config.train.clip_norm is None
    assert config.train.patience is None
    with pytest.raises(SystemExit):
        _parser().parse_args(["--kind", "gru"])  # set in a config file only
    with pytest.raises(SystemExit):
        _parser().parse_args(["--epochs", "many"])
