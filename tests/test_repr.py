"""Results render as HTML tables in a notebook (`_repr_html_`), everything escaped: a run, a
comparison, and the result of every registered diagnostic, on a run whose name, data file and
label names are HTML."""

from __future__ import annotations

import csv
import dataclasses
import html
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from rnnlab import api
from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rnnlab.diagnostics import REGISTRY, Inputs, suite
from rnnlab.tables import Table
from test_registry import TINY

HOSTILE = "<img src=x onerror=alert(1)>"
OTHER = "\"no\" & 'yes' </table>"
ALLOWED = {"div", "p", "strong", "table", "caption", "thead", "tbody", "tr", "th", "td"}


class _Tags(HTMLParser):
    """The start tags of a fragment, and its text as a reader sees it (entities decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.ends: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        assert all(not name.startswith("on") for name, _ in attrs), attrs

    def handle_endtag(self, tag: str) -> None:
        self.ends.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(fragment: str) -> _Tags:
    parser = _Tags()
    parser.feed(fragment)
    parser.close()
    return parser


def strings(tables: list[Table]) -> list[str]:
    """Every title, header, cell and note of the tables."""
    return [
        str(text)
        for t in tables
        for text in [t.title, *t.columns, *t.notes, *(cell for row in t.rows for cell in row)]
    ]


def check_fragment(fragment: str, tables: list[Table]) -> str:
    """Only table markup, balanced, no raw hostile tag; every string of `tables` there,
    escaped; returns the text a reader sees."""
    parsed = parse(fragment)
    assert set(parsed.tags) <= ALLOWED, set(parsed.tags) - ALLOWED
    assert sorted(parsed.tags) == sorted(parsed.ends), "unbalanced tags"
    assert "<img" not in fragment and "<script" not in fragment
    for text in strings(tables):
        assert html.escape(text) in fragment, text
    return "".join(parsed.text)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, api.RunResult, Path]:
    """A tiny LSTM run named HOSTILE, trained on a file named HOSTILE.csv whose labels are
    HOSTILE and OTHER."""
    root = tmp_path_factory.mktemp("repr")
    path = root / f"{HOSTILE}.csv"
    rng = np.random.default_rng(0)
    words = ["good", "bad", "great", "awful", "film", "plot", "the", "a", "and"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(160):
            writer.writerow([" ".join(rng.choice(words, 24)), HOSTILE if i % 2 else OTHER])
    config = RunConfig(
        DataConfig(dataset=str(path), max_len=32),
        ModelConfig(name="lstm", embed_dim=8, hidden_dim=8),
        TrainConfig(epochs=2, batch_size=16, device="cpu", progress=False, patience=None),
    )
    run = api.train(config, out=root / "runs", name=HOSTILE, verbose=False)
    return config, run, root


def test_table_to_html_escapes_everything() -> None:
    table = Table(
        HOSTILE, ["a", OTHER], [[HOSTILE, "1.0"], ["x", OTHER]], notes=[HOSTILE],
        row_ids=[OTHER, "b"],
    )  # fmt: skip
    fragment = table.to_html()
    text = check_fragment(fragment, [table])
    assert text.count(HOSTILE) == 3 and text.count(OTHER) == 2
    assert f'data-row="{html.escape(OTHER)}"' in fragment
    assert fragment.count('style="text-align:right"') == 3  # "1.0", OTHER and its header


def test_run_result_html(hostile: tuple[RunConfig, api.RunResult, Path]) -> None:
    _, run, _ = hostile
    fragment = run._repr_html_()
    text = check_fragment(fragment, [])
    summary = run.summary
    assert f"run {run.run_dir}" in text
    assert f"{summary['test']['accuracy']:.4f}" in text  # the run's own numbers
    assert HOSTILE in text and OTHER in text  # the run name and both label names, as text
    for record in run.history:
        assert f"{record['train_loss']:.4f}" in text and f"{record['val_accuracy']:.4f}" in text
    assert parse(fragment).tags.count("table") == 3  # summary, per class, epochs


def test_loaded_run_html_matches_the_run_it_was_saved_from(
    hostile: tuple[RunConfig, api.RunResult, Path],
) -> None:
    _, run, _ = hostile
    loaded = api.load_run(run.run_dir)
    fragment = loaded._repr_html_()
    check_fragment(fragment, [])
    assert fragment == run._repr_html_()  # the same tables, read back from the folder


def test_compare_result_html(hostile: tuple[RunConfig, api.RunResult, Path]) -> None:
    config, _, root = hostile
    result = api.compare(
        config, ["rnn", "gru"], out=root / "runs", name=f"c{HOSTILE}", verbose=False
    )
    fragment = result._repr_html_()
    text = check_fragment(fragment, [])
    assert f"c{HOSTILE}" in text
    for row in result.rows:
        assert row["model"] in text and f"{row['test_accuracy']:.4f}" in text
    assert len(result.paired) == 1 and "McNemar" in text
    # a row with a hostile model name and status is escaped too
    forged = dataclasses.replace(result, rows=[{**result.rows[0], "model": HOSTILE}], paired=[])
    assert HOSTILE in check_fragment(forged._repr_html_(), [])


@pytest.mark.parametrize("name", [entry.name for entry in REGISTRY])
def test_every_diagnostic_result_html(
    name: str, hostile: tuple[RunConfig, api.RunResult, Path]
) -> None:
    config, run, _ = hostile
    entry = next(e for e in REGISTRY if e.name == name)
    settings = dataclasses.replace(entry.quick, **TINY[name])
    result = suite.run_one(entry, settings, Inputs(config, runs=[run.run_dir], device="cpu"))
    tables = result.tables()
    assert tables
    fragment = result._repr_html_()
    text = check_fragment(fragment, tables)
    assert parse(fragment).tags.count("table") == len(tables)
    titles = [spec.title for spec in result.figures()]
    assert all(title in text for title in titles)
    # the hostile run name, data file or labels show wherever the result's own tables hold them
    assert (HOSTILE in text) == any(HOSTILE in s for s in [*strings(tables), *titles])


def test_hostile_names_reach_the_diagnostic_tables(
    hostile: tuple[RunConfig, api.RunResult, Path],
) -> None:
    """The escaping above is tested on real hostile text: the run's name is the model label."""
    config, run, _ = hostile
    inputs = Inputs(config, runs=[run.run_dir], device="cpu")
    for name in ("gradient-flow", "hidden-states", "parameters"):
        entry = next(e for e in REGISTRY if e.name == name)
        result = suite.run_one(entry, dataclasses.replace(entry.quick, **TINY[name]), inputs)
        assert HOSTILE in check_fragment(result._repr_html_(), result.tables())


def test_figures_draw_matplotlib_figures(
    hostile: tuple[RunConfig, api.RunResult, Path],
) -> None:
    """What a notebook displays inline: FigureSpec.draw() gives a matplotlib Figure."""
    from matplotlib.figure import Figure

    _, run, _ = hostile
    result = api.diagnose("gradient-flow", runs=[run.run_dir], seq_len=12, batch_size=2)
    specs = result.figures()
    assert specs and all(isinstance(spec.draw(), Figure) for spec in specs)
