"""Contract tests over the diagnostics registry: every entry runs on tiny real data, saves,
loads back equal, renders its report section with its figures, and has a CLI command whose
flags are exactly its Settings fields."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from rnnlab.cli import build_parser
from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig, field_docs, flag_name
from rnnlab.diagnostics import REGISTRY, Diagnostic, Inputs, read_result, registry, suite
from rnnlab.report import render

TINY: dict[str, dict[str, Any]] = {
    "parameters": {},
    "gradient-flow": dict(split="train", seq_len=12, batch_size=2),
    "embedding-grad": dict(split="train", lengths=(4, 8), batch_size=2),
    "hidden-states": dict(split="train", per_class=1, min_len=12, max_steps=12),
    "attribution": dict(split="train", texts=2, min_len=12, max_tokens=16, n_steps=4, show=1),
    "seq-len": dict(models=("rnn",), lengths=(8, 16), limit=60, epochs=1),
    "hidden-size": dict(sizes=(4, 8), max_len=16, limit=60, epochs=1),
    "timing": dict(lengths=(4, 8), modes=("padded",), batch_size=2, repeats=1, warmup=0),
    "padding": dict(batch_size=8),
    "synthetic": dict(lengths=(4, 6), models=("rnn",), num_examples=60, epochs=1, hidden_dim=4),
    "memory-capacity": dict(
        pairs=(1, 2),
        models=("rnn",),
        state_size=4,
        vocab_size=4,
        seeds=1,
        epochs=1,
        num_examples=60,
    ),
}
"""Tiny settings per registered diagnostic: a new diagnostic adds its line here."""
CONFIG = RunConfig(
    DataConfig(dataset="imdb", limit=60, max_len=32),
    ModelConfig(embed_dim=8, hidden_dim=8),
    TrainConfig(epochs=1, batch_size=16, device="cpu", progress=False, patience=None),
)
ENTRIES = {entry.name: entry for entry in REGISTRY}


@pytest.fixture(scope="module")
def inputs() -> Inputs:
    return Inputs(CONFIG, models=["rnn", "lstm"], device="cpu")


def test_every_entry_has_tiny_settings_and_one_name() -> None:
    assert set(TINY) == set(ENTRIES)
    assert len({e.kind for e in REGISTRY}) == len(REGISTRY)
    for entry in REGISTRY:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", entry.name)
        assert entry.result.kind == entry.kind and registry.get(entry.kind) is entry
        assert registry.for_kind(entry.kind) is entry
        for old in entry.legacy_kinds:
            assert registry.for_kind(old) is entry


@pytest.mark.parametrize("name", list(ENTRIES))
def test_settings_are_frozen_documented_and_preset(name: str) -> None:
    entry = ENTRIES[name]
    defaults = entry.settings()
    assert isinstance(entry.quick, entry.settings)
    assert dataclasses.is_dataclass(defaults)
    fields = [f.name for f in dataclasses.fields(defaults)]
    if fields:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(defaults, fields[0], getattr(defaults, fields[0]))
    docs = field_docs(entry.settings)
    assert set(docs) == set(fields), f"{name}: every field needs a docstring"


@pytest.mark.parametrize("name", list(ENTRIES))
def test_cli_flags_are_the_settings_fields(name: str) -> None:
    entry = ENTRIES[name]
    parser = build_parser()
    words = [w for w in entry.command if w is not None]
    action = parser
    for word in words:
        sub = next(a for a in action._actions if isinstance(a.choices, dict) and word in a.choices)
        action = sub.choices[word]
    options = set(action._option_string_actions)
    for field in dataclasses.fields(entry.settings()):
        if field.name in entry.positional:
            continue
        assert flag_name(field.name) in options, f"{name}: no {flag_name(field.name)} flag"


@pytest.mark.parametrize("name", list(ENTRIES))
def test_runs_saves_loads_and_renders(name: str, inputs: Inputs, tmp_path: Path) -> None:
    entry: Diagnostic = ENTRIES[name]
    settings = dataclasses.replace(entry.quick, **TINY[name])
    if entry.check is not None:
        entry.check(settings, inputs)
    result = suite.run_one(entry, settings, inputs)
    assert type(result) is entry.result and result.kind == entry.kind
    folder = result.save(tmp_path / name)
    assert read_result(folder) == result
    files = {p.name for p in folder.iterdir()}
    specs = result.figures()
    assert specs and {s.file for s in specs} <= files
    assert all(s.caption for s in specs), f"{name}: a figure without a caption"
    assert result.tables() and all(t.rows for t in result.tables())
    page = render([folder], tmp_path / "report.html").read_text(encoding="utf-8")
    assert f'id="{entry.section_id}"' in page
    for spec in specs:
        assert spec.title in page.replace("&#39;", "'")
    assert page.count("<img ") >= len(specs)
