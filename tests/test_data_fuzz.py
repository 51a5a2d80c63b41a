"""Careless and hostile data files, generated: random encodings, quoting, empty cells, label
types and sizes, in CSV, TSV and JSONL.

The real loader either returns usable splits (every split non-empty, every class trained on)
or raises RnnlabError with one line, never another exception; a well-formed file reads back
exactly as written; and the real CLI exits 0 or 2, prints no traceback and leaves no run
folder behind when it refuses the data.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnlab.cli import main
from rnnlab.config import DataConfig
from rnnlab.data import load_raw, load_splits
from rnnlab.errors import RnnlabError

ENCODINGS = ("utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16")
SPECIAL = [*"aeiou xyz ÉéüñçØ“”‘’—€😀中,;\t\"'\n\r<>/&\\", "<br />", "&amp;", "\x00"]
QUOTING = {
    "minimal": csv.QUOTE_MINIMAL,
    "all": csv.QUOTE_ALL,
    "nonnumeric": csv.QUOTE_NONNUMERIC,
    "none": csv.QUOTE_NONE,
}

texts = st.one_of(
    st.lists(st.sampled_from(SPECIAL), max_size=12).map("".join),
    st.text(st.characters(), max_size=16),  # lone surrogates included
    st.sampled_from(["", " ", "NaN", "null", "1e5", "007", "good film", "bad film"]),
)
wild_labels = st.one_of(
    st.sampled_from(["pos", "neg", "neutral", "", " ", "NaN", "nan", "None", "null", "N/A"]),
    st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=4),
    st.lists(st.integers(0, 1), max_size=2),
)


@dataclass
class DataFile:
    """One generated file: rows, format, how it is written and how it is read."""

    rows: list[tuple[Any, Any]]
    suffix: str
    write_encoding: str
    read_encoding: str
    quoting: str
    header: list[str]
    ensure_ascii: bool
    damage: int | None
    """Cut the file's bytes here (a truncated download), if not None."""
    limit: int | None

    def content(self) -> bytes:
        if self.suffix == ".jsonl":
            lines = []
            for text, label in self.rows:
                obj = {self.header[0]: text}
                if len(self.header) > 1 and (label is not None or len(lines) % 3):
                    obj[self.header[1]] = label  # else sometimes a missing key, sometimes null
                lines.append(json.dumps(obj, ensure_ascii=self.ensure_ascii))
            body = "\n".join(lines) + "\n"
        else:
            out = io.StringIO(newline="")
            writer = csv.writer(
                out,
                delimiter="\t" if self.suffix == ".tsv" else ",",
                quoting=QUOTING[self.quoting],
                escapechar="\\" if self.quoting == "none" else None,
            )  # lines end in \r\n, so a field with a lone \r is quoted too
            writer.writerow(self.header)
            for text, label in self.rows:
                row = [text, "" if label is None else label][: len(self.header)]
                try:
                    writer.writerow(row)
                except csv.Error:  # e.g. QUOTE_NONE and one empty field: quote this row
                    csv.writer(out, delimiter=writer.dialect.delimiter).writerow(row)
            body = out.getvalue()
        data = body.encode(self.write_encoding, errors="replace")
        return data if self.damage is None else data[: self.damage]

    def write(self, folder: Path) -> Path:
        path = folder / f"data{self.suffix}"
        path.write_bytes(self.content())
        return path

    def config(self, path: Path) -> DataConfig:
        return DataConfig(
            dataset=str(path), encoding=self.read_encoding, limit=self.limit, max_len=32
        )


FAULTS = ("size", "labels", "header", "encoding", "quoting", "damage", "limit")


@st.composite
def data_files(draw: st.DrawFn, *, clean: bool = False) -> DataFile:
    """A random file with up to three faults (see FAULTS); `clean` ones have none (two or
    three classes, matching encoding, a plain header, proper quoting), so they must load and
    read back as written."""
    faults = set() if clean else draw(st.sets(st.sampled_from(FAULTS), max_size=3))
    n = draw(st.integers(0, 40) if "size" in faults else st.integers(8 if not clean else 1, 40))
    if "labels" in faults:
        labels = wild_labels
    else:
        classes = draw(st.sampled_from([["pos", "neg"], ["a", "b", "c"], [0, 1], [1.0, 2.0]]))
        labels = st.sampled_from(classes)
    rows = draw(st.lists(st.tuples(texts, labels), min_size=n, max_size=n))
    suffix = draw(st.sampled_from([".csv", ".tsv", ".jsonl"]))
    write_encoding = draw(st.sampled_from(ENCODINGS))
    good_headers = [["text", "label"]] * 3 + [["review", "sentiment"], ["Text", "Label"]]
    bad_headers = [["text", "text"], ["text"], ["x", "y"], ["label", "text"]]
    header = draw(st.sampled_from(bad_headers if "header" in faults else good_headers))
    if clean:
        header = ["text", "label"]
    spec = DataFile(
        rows,
        suffix,
        write_encoding,
        draw(st.sampled_from(["utf-8", "latin-1", "cp1252"]))
        if "encoding" in faults
        else write_encoding,
        draw(st.sampled_from(list(QUOTING) if "quoting" in faults else ["minimal", "all"])),
        header,
        draw(st.booleans()),
        None,
        draw(st.sampled_from([1, 2, 3, 10])) if "limit" in faults else None,
    )
    if "damage" in faults:
        spec.damage = draw(st.integers(0, max(len(spec.content()), 1)))
    return spec


def one_line(message: str) -> bool:
    return bool(message) and "\n" not in message and "Traceback" not in message


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data_files())
def test_the_loader_returns_usable_splits_or_a_one_line_error(spec: DataFile) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = spec.write(Path(folder))
        try:
            splits = load_splits(spec.config(path))
        except RnnlabError as exc:
            assert one_line(str(exc)), str(exc)
            return
    sizes = [len(splits.split(name)) for name in ("train", "val", "test")]
    assert min(sizes) >= 1, sizes
    assert splits.num_classes >= 2
    assert set(splits.train.labels.tolist()) == set(range(splits.num_classes))


def expected_text(text: str, spec: DataFile) -> str:
    """What a text is after writing it in the file's encoding: characters it cannot hold, and
    lone surrogates, become "?" (JSON's \\u escapes hold any character but a lone surrogate)."""
    if spec.suffix == ".jsonl" and spec.ensure_ascii:
        return text.encode("utf-8", errors="replace").decode("utf-8")
    return text.encode(spec.write_encoding, errors="replace").decode(spec.write_encoding)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data_files(clean=True))
def test_a_well_formed_file_reads_back_as_written(spec: DataFile) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = spec.write(Path(folder))
        expected = [expected_text(text, spec) for text, _ in spec.rows]
        try:
            raw = load_raw(str(path), encoding=spec.read_encoding)
        except RnnlabError as exc:  # refusals a clean file may still get, and nothing else
            message = str(exc)
            assert one_line(message)
            assert ("single label" in message and len({y for _, y in spec.rows}) == 1) or (
                "is empty in all" in message and not any(t.strip() for t in expected)
            ), message
            return
    texts, labels = raw.splits["all"]
    assert texts == expected
    names = [raw.label_names[i] for i in labels]
    assert names == [str(int(y)) if isinstance(y, float) else str(y) for _, y in spec.rows]


TRAIN = ["--epochs", "1", "--model", "lstm", "--embed-dim", "8", "--hidden-dim", "8"]
TRAIN += ["--max-len", "16", "--batch-size", "8", "--no-progress"]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(data_files(), data_files(clean=True)))
def test_the_cli_exits_0_or_2_with_no_traceback_and_no_partial_run(spec: DataFile) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = spec.write(Path(folder))
        runs = Path(folder) / "runs"
        args = ["train", "--dataset", str(path), "--encoding", spec.read_encoding, *TRAIN]
        args += ["--out", str(runs), "--name", "fuzz"]
        args += ["--limit", str(spec.limit)] if spec.limit else []
        err, out = io.StringIO(), io.StringIO()
        with redirect_stderr(err), redirect_stdout(out):
            code = main(args)  # an uncaught exception fails the test with its traceback
        stderr = err.getvalue()
        assert code in (0, 2), stderr
        assert "Traceback" not in stderr
        if code == 2:
            assert stderr.startswith("rnnlab: error: ") and stderr.count("\n") == 1, stderr
            assert not runs.exists() or not any(runs.iterdir())  # nothing half-written
        else:
            summary = json.loads((runs / "fuzz" / "summary.json").read_text())
            assert summary["status"] == "completed" and summary["test"]["examples"] >= 1


def test_the_real_entry_point_on_a_latin1_file(tmp_path: Path) -> None:
    rows = [
        (f"un café {i} {'bon' if i % 2 else 'mauvais'}", "pos" if i % 2 else "neg")
        for i in range(40)
    ]
    spec = DataFile(
        rows, ".csv", "latin-1", "utf-8", "minimal", ["text", "label"], True, None, None
    )
    path = spec.write(tmp_path)
    runs = tmp_path / "runs"

    def train(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rnnlab", "train", "--dataset", str(path), *TRAIN, *extra],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=300,
        )

    refused = train("--out", str(runs), "--name", "refused")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "line 2 is not valid utf-8" in refused.stderr and "--encoding latin-1" in refused.stderr
    assert not (runs / "refused").exists()
    done = train("--encoding", "latin-1", "--out", str(runs), "--name", "ok")
    assert done.returncode == 0, done.stderr
    summary = json.loads((runs / "ok" / "summary.json").read_text())
    assert summary["test"]["examples"] >= 1
