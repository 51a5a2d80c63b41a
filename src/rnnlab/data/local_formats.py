"""A local file's bytes -> its columns: UTF-8 (an undecodable byte names its line), CSV and TSV
(pyarrow: every column as text, a row longer than pyarrow's block read whole), JSON Lines (a
duplicated key refused, a lone surrogate replaced), Parquet. A malformed row fails in one line
that names it and the fix; which columns hold the texts and labels is `rnnlab.data.local`'s.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnlab.errors import RnnlabError

NEWLINE = b"\n"
_PYARROW_BLOCK = 1 << 20  # pyarrow's default block; a row must fit in one block
_BAD_ROW = re.compile(r"Expected (\d+) columns, got (\d+): (.*)", re.DOTALL)


@dataclass
class FileTable:
    """The columns of a file, read lazily as Python values, and how to name a row."""

    names: list[str]
    columns: Callable[[list[str]], list[list[Any]]]
    row_name: Callable[[int], str]


# ----- bytes -> UTF-8 ------------------------------------------------------------------------------
def to_utf8(data: bytes, path: Path, codec: str) -> bytes:
    """The file as UTF-8 without a byte-order mark; an undecodable byte names its line."""
    if codec == "utf-8":
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise RnnlabError(
                f"{path} starts with a UTF-16 byte-order mark; give --encoding utf-16"
            )
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _undecodable(data, exc, path, codec) from None
        return data
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        raise _undecodable(data, exc, path, codec) from None
    return text.removeprefix("\ufeff").encode("utf-8")


def _undecodable(data: bytes, exc: UnicodeDecodeError, path: Path, codec: str) -> RnnlabError:
    line = data.count(b"\n", 0, exc.start) + 1
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    snippet = data[max(line_start, exc.start - 24) : exc.start + 8]
    fix = (
        "if the file is not UTF-8, give its encoding, e.g. --encoding latin-1 "
        "(or cp1252 for files from Windows)"
        if codec == "utf-8"
        else f"check --encoding ({codec} cannot decode it; latin-1 decodes any byte)"
    )
    return RnnlabError(
        f"{path}: line {line} is not valid {codec} (byte 0x{data[exc.start]:02x} in "
        f"{snippet!r}); {fix}"
    )


# ----- formats ---------------------------------------------------------------------------------
def read_csv(data: bytes, path: Path, delimiter: str) -> FileTable:
    # pyarrow is heavy to import: only when a file is read
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not data.endswith(NEWLINE):
        data += NEWLINE  # pyarrow cannot read a header row that ends the file without one
    header = _csv_header(data, delimiter)
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    # every column as text: no type guessed from the first block that a later row breaks
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(header or [], pa.string()))
    block = _PYARROW_BLOCK
    while True:
        try:
            table = pacsv.read_csv(
                pa.BufferReader(data),
                # use_threads=False: pyarrow's reader threads on an in-memory buffer can abort
                # the interpreter at exit ("terminate called without an active exception",
                # exit code 134) once torch is loaded; one thread parses as fast here
                read_options=pacsv.ReadOptions(block_size=block, use_threads=False),
                parse_options=parse,
                convert_options=convert,
            )
            break
        except pa.ArrowException as exc:
            if "straddl" in str(exc) and block <= len(data):
                block = min(len(data) + 1, 2**31 - 1)  # one block: the longest row fits
                continue
            bad = _BAD_ROW.search(str(exc))
            if bad:
                raise _bad_row(bad, data, path, delimiter) from None
            if "Empty CSV" in str(exc):  # the header row never ends
                why = "it has an unclosed double quote" if data.count(b'"') % 2 else "none found"
                raise RnnlabError(
                    f"cannot read {path}: no header row ({why}); give a file whose first line "
                    "names the columns, e.g. text,label"
                ) from None
            raise _unreadable(path, "csv" if delimiter == "," else "tsv", exc) from None

    def columns(names: list[str]) -> list[list[Any]]:
        return [table[name].to_pylist() for name in names]

    return FileTable(list(table.column_names), columns, lambda i: f"data row {i + 1}")


def _csv_header(data: bytes, delimiter: str) -> list[str] | None:
    try:
        head = data[:_PYARROW_BLOCK].decode("utf-8", errors="replace")
        return next(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter))
    except (csv.Error, StopIteration):
        return None


def _bad_row(bad: re.Match[str], data: bytes, path: Path, delimiter: str) -> RnnlabError:
    expected, actual, text = int(bad[1]), int(bad[2]), bad[3]
    found = data.find(text.encode("utf-8")) if text else -1
    where = f"line {data.count(NEWLINE, 0, found) + 1}" if found >= 0 else "a row"
    snippet = text[:40] + ("..." if len(text) > 40 else "")
    sep = "a comma" if delimiter == "," else "a tab"
    if text.count('"') % 2:
        problem = "has an unclosed double quote"
        fix = 'close it, or write a quote inside a field as ""'
    else:
        problem = f"has {actual} field{'s' * (actual != 1)}, the header {expected}"
        fix = f"put a field that holds {sep} or a line break in double quotes"
    return RnnlabError(f"cannot read {path}: {where} {problem} ({snippet!r}); {fix}")


def _unreadable(path: Path, kind: str, exc: Exception) -> RnnlabError:
    reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    return RnnlabError(f"cannot read {path} as {kind} ({reason}); check the file's format")


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def read_jsonl(data: bytes, path: Path) -> FileTable:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    names: dict[str, None] = {}
    for number, line in enumerate(data.decode("utf-8").split("\n"), 1):
        line = line.strip(" \t\r")
        if not line:
            continue
        try:
            obj = json.loads(line, object_pairs_hook=_unique_keys)
        except _DuplicateKey as dup:
            raise RnnlabError(
                f"{path}: line {number} has the key {dup.key!r} twice; give each key once per line"
            ) from None
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = (
                f"{exc.msg} at column {exc.colno}"
                if isinstance(exc, json.JSONDecodeError)
                else "nested too deeply"
            )
            hint = (
                "the file looks like one JSON array; rnnlab reads JSON Lines, one object per line"
                if not rows and line.startswith("[")
                else "write one JSON object per line"
            )
            raise RnnlabError(
                f"cannot read {path}: line {number} is not valid JSON ({reason}); {hint}"
            ) from None
        if not isinstance(obj, dict):
            hint = (
                "the file looks like one JSON array; rnnlab reads JSON Lines, one object per line"
                if isinstance(obj, list)
                else 'write one object per line, e.g. {"text": "...", "label": "..."}'
            )
            raise RnnlabError(
                f"cannot read {path}: line {number} holds a JSON {_json_kind(obj)}, not an "
                f"object; {hint}"
            )
        if "\\u" in line:  # only an escape can make a lone surrogate
            obj = {key: _no_surrogates(value) for key, value in obj.items()}
        rows.append(obj)
        lines.append(number)
        names.update(dict.fromkeys(obj))

    def columns(wanted: list[str]) -> list[list[Any]]:
        return [[row.get(name) for row in rows] for name in wanted]

    return FileTable(list(names), columns, lambda i: f"line {lines[i]}")


def _no_surrogates(value: Any) -> Any:
    """A string with a lone surrogate (JSON's "\\ud800") -> the same with "?" (it cannot be
    written as UTF-8, and tokenizers refuse it); other values unchanged."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", errors="replace").decode("utf-8")
    return value


def _json_kind(obj: Any) -> str:
    if isinstance(obj, list):
        return "array"
    if isinstance(obj, str):
        return "string"
    if isinstance(obj, bool) or obj is None:
        return "literal"
    return "number"


def read_parquet(path: Path) -> FileTable:
    # pyarrow is heavy to import: only when a file is read
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, "parquet", exc) from None

    def columns(wanted: list[str]) -> list[list[Any]]:
        try:
            table = pq.read_table(path, columns=wanted)
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(path, "parquet", exc) from None
        return [table.column(i).to_pylist() for i in range(len(wanted))]

    return FileTable(names, columns, lambda i: f"row {i + 1}")
