"""Local .csv/.tsv/.jsonl/.parquet files -> texts and integer labels.

A careless file fails here in one line that names the problem and the fix: a wrong encoding
(with the line), a duplicated or missing column, missing labels (empty, NaN, None, null), a
numeric column that holds measurements rather than classes, a nested value. Long fields (a
row longer than pyarrow's block) are read whole.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.errors import RnnlabError

LOCAL_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
TEXT_COLUMNS = ("text", "review")
LABEL_COLUMNS = ("label", "sentiment")
MISSING_LABELS = frozenset(
    {"", "nan", "-nan", "none", "null", "na", "n/a", "#n/a", "#na", "<na>", "nat"}
)
"""Label strings that mean "no label" (compared lower-cased, stripped), as pandas and pyarrow
read them; None and float NaN are missing too."""
FEW_CLASSES = 20
"""A label column with at most this many distinct values is always taken as classes."""
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
NEWLINE = b"\n"
_PYARROW_BLOCK = 1 << 20
_BAD_ROW = re.compile(
    r"Expected (\d+) columns, got (\d+): (.*)", re.DOTALL
)  # pyarrow's default block; a row must fit in one block


def codec_name(encoding: str) -> str:
    """The canonical name of a text encoding (latin-1 -> iso8859-1), or a one-line error."""
    try:
        info = codecs.lookup(encoding)
        if not getattr(info, "_is_text_encoding", True):  # rot13, base64, zlib: not text
            raise LookupError(encoding)
    except (LookupError, TypeError, ValueError):
        raise RnnlabError(
            f"unknown text encoding {encoding!r}; give one such as utf-8, latin-1, cp1252 or "
            "utf-16 (--encoding)"
        ) from None
    return info.name


@dataclass
class LocalData:
    texts: list[str]
    labels: np.ndarray
    label_names: list[str]
    info: dict[str, Any]


@dataclass
class _Table:
    """The columns of a file, read lazily as Python values, and how to name a row."""

    names: list[str]
    columns: Callable[[list[str]], list[list[Any]]]
    row_name: Callable[[int], str]


def read_local(
    path: Path, text_column: str | None, label_column: str | None, encoding: str = "utf-8"
) -> LocalData:
    codec = codec_name(encoding)
    if not path.exists():
        raise RnnlabError(f"file {path} does not exist; check the path given to --dataset")
    if not path.is_file():
        raise RnnlabError(f"{path} is not a file; give a .csv, .tsv, .jsonl or .parquet file")
    suffix = path.suffix.lower()
    if suffix not in LOCAL_SUFFIXES:
        raise RnnlabError(
            f"{path} has suffix {suffix or '(none)'}; rnnlab reads {', '.join(LOCAL_SUFFIXES)} files"
        )
    if path.stat().st_size == 0:
        raise RnnlabError(f"{path} is empty; give a file with a header row and labelled texts")
    if suffix == ".parquet":
        table = _read_parquet(path)
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RnnlabError(
                f"cannot read {path} ({exc.strerror or type(exc).__name__}); check that you "
                "may read it"
            ) from None
        data = _utf8(data, path, codec)
        if not data.strip():
            raise RnnlabError(
                f"{path} holds only blanks; give a file with a header row and labelled texts"
            )
        if suffix == ".jsonl":
            table = _read_jsonl(data, path)
        else:
            table = _read_csv(data, path, "\t" if suffix == ".tsv" else ",")
    text_col = _pick_column(table.names, text_column, TEXT_COLUMNS, "text", path)
    label_col = _pick_column(table.names, label_column, LABEL_COLUMNS, "label", path)
    if text_col == label_col:
        raise RnnlabError(
            f"{path}: the text and the label column are both {text_col!r}; name two different "
            "columns with --text-column and --label-column"
        )
    raw_texts, raw_labels = table.columns([text_col, label_col])
    if not raw_texts:
        raise RnnlabError(f"{path} has a header but no rows; give a file with labelled texts")
    texts = _texts(raw_texts, path, text_col, codec, table.row_name)
    labels, names = _labels(raw_labels, path, label_col, codec, table.row_name)
    info = {"path": str(path.resolve()), "text_column": text_col, "label_column": label_col}
    if codec != "utf-8":
        info["encoding"] = codec
    return LocalData(texts, labels, names, info)


# ----- bytes -> UTF-8 ------------------------------------------------------------------------------
def _utf8(data: bytes, path: Path, codec: str) -> bytes:
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
def _read_csv(data: bytes, path: Path, delimiter: str) -> _Table:
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

    return _Table(list(table.column_names), columns, lambda i: f"data row {i + 1}")


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


def _read_jsonl(data: bytes, path: Path) -> _Table:
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

    return _Table(list(names), columns, lambda i: f"line {lines[i]}")


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


def _read_parquet(path: Path) -> _Table:
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

    return _Table(names, columns, lambda i: f"row {i + 1}")


# ----- columns ---------------------------------------------------------------------------------
def _pick_column(
    columns: list[str], asked: str | None, defaults: tuple[str, ...], role: str, path: Path
) -> str:
    counts = Counter(columns)
    chosen: str | None = None
    if asked is not None:
        if asked not in counts:
            raise RnnlabError(
                f"{path} has no column {asked!r}; its columns are {columns} (use --{role}-column)"
            )
        chosen = asked
    else:
        chosen = next((name for name in defaults if name in counts), None)
        if chosen is None:  # `Text`, ` label `: the same names written differently
            for default in defaults:
                similar = {c for c in columns if c.strip().lower() == default}
                if len(similar) == 1:
                    chosen = similar.pop()
                    break
    if chosen is None:
        raise RnnlabError(
            f"{path} has no {role} column ({' or '.join(defaults)}); its columns are "
            f"{columns[:20]}{' ...' if len(columns) > 20 else ''} (use --{role}-column)"
            f"{_separator_hint(columns, path)}"
        )
    if counts[chosen] > 1:
        raise RnnlabError(
            f"{path} has {counts[chosen]} columns named {chosen!r}; rename them so every column "
            f"name is unique (the {role} column must be unambiguous)"
        )
    return chosen


def _separator_hint(columns: list[str], path: Path) -> str:
    if len(columns) != 1:
        return ""
    suffix = path.suffix.lower()
    header = columns[0]
    if suffix == ".tsv" and "," in header:
        return "; the file looks comma-separated: name it .csv"
    if suffix == ".csv" and "\t" in header:
        return "; the file looks tab-separated: name it .tsv"
    for sep in (";", "|"):
        if sep in header:
            return (
                f"; the file looks separated by {sep!r}: rnnlab reads comma-separated .csv and "
                "tab-separated .tsv files"
            )
    return ""


def _nested_error(path: Path, column: str, role: str, value: Any, where: str) -> RnnlabError:
    kind = "lists" if isinstance(value, list | tuple) else "objects"
    return RnnlabError(
        f"{path}: the {role} column {column!r} holds {kind} (the first at {where}), not "
        f"{'text' if role == 'text' else 'class labels'}; pick another column with --{role}-column"
    )


def _decode_value(value: bytes, codec: str, path: Path, column: str, where: str) -> str:
    try:
        return value.decode(codec)
    except UnicodeDecodeError:
        fix = (
            "give the encoding of its bytes, e.g. --encoding latin-1"
            if codec == "utf-8"
            else f"check --encoding ({codec} cannot decode it)"
        )
        raise RnnlabError(
            f"{path}: {where} of column {column!r} is not valid {codec} ({value[:32]!r}); {fix}"
        ) from None


def _texts(
    values: list[Any], path: Path, column: str, codec: str, row_name: Callable[[int], str]
) -> list[str]:
    texts: list[str] = []
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            texts.append("")
        elif isinstance(value, str):
            texts.append(value)
        elif isinstance(value, bytes):
            texts.append(_decode_value(value, codec, path, column, row_name(i)))
        elif isinstance(value, list | tuple | dict):
            raise _nested_error(path, column, "text", value, row_name(i))
        else:
            texts.append(str(value))
    if not any(text.strip() for text in texts):
        raise RnnlabError(
            f"{path}: the text column {column!r} is empty in all {len(texts)} rows; "
            "pick the column that holds the texts with --text-column"
        )
    return texts


def _label_key(value: Any) -> Any:
    """A label as a class key: None when missing, an int or float for numbers, else a str."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() else value
    text = str(value).strip()
    if text.lower() in MISSING_LABELS:
        return None
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        number = float(text)
        return int(number) if number.is_integer() else number
    return text


def _labels(
    values: list[Any], path: Path, column: str, codec: str, row_name: Callable[[int], str]
) -> tuple[np.ndarray, list[str]]:
    """Labels -> ids in sorted order of the distinct values (numbers numerically); names kept."""
    keys: list[Any] = []
    missing: list[int] = []
    for i, value in enumerate(values):
        if isinstance(value, bytes):
            value = _decode_value(value, codec, path, column, row_name(i))
        elif isinstance(value, list | tuple | dict):
            raise _nested_error(path, column, "label", value, row_name(i))
        key = _label_key(value)
        if key is None:
            missing.append(i)
        keys.append(key)
    if missing:
        raise RnnlabError(
            f"{path}: {len(missing)} of {len(values)} rows have no label in column {column!r} "
            f"(empty, NaN, None or null; the first is {row_name(missing[0])}); "
            "fill them in or remove those rows"
        )
    numbers = all(isinstance(k, int | float) for k in keys)
    if not numbers:
        keys = [_label_name(k) for k in keys]
    distinct = sorted(set(keys))
    if len(distinct) < 2:
        raise RnnlabError(
            f"{path}: column {column!r} holds a single label ({_label_name(distinct[0])!r}); "
            "a classifier needs at least two"
        )
    _check_classes_are_classes(distinct, len(keys), numbers, path, column)
    index = {k: i for i, k in enumerate(distinct)}
    return np.asarray([index[k] for k in keys], dtype=np.int64), [_label_name(k) for k in distinct]


def _label_name(key: Any) -> str:
    return repr(key) if isinstance(key, float) else str(key)


def _check_classes_are_classes(
    distinct: list[Any], rows: int, numbers: bool, path: Path, column: str
) -> None:
    """Refuse a label column with more distinct values than classes can mean."""
    d = len(distinct)
    fractional = numbers and any(isinstance(k, float) for k in distinct)
    many = d > rows / 2 and d > FEW_CLASSES
    if fractional and (d > rows / 2 or d > FEW_CLASSES):
        examples = ", ".join(_label_name(k) for k in distinct if isinstance(k, float))
        examples = examples[:40] + ("..." if len(examples) > 40 else "")
        raise RnnlabError(
            f"{path}: the label column {column!r} holds {d} distinct numbers in {rows} rows, "
            f"not all whole ({examples}); rnnlab trains classifiers, not regression: "
            "bin the values into classes, or pick the class column with --label-column"
        )
    if many and numbers:
        raise RnnlabError(
            f"{path}: the label column {column!r} holds {d} distinct numbers in {rows} rows; "
            "that is a measurement or an id, not classes (rnnlab trains classifiers, not "
            "regression): bin the values into classes, or pick the class column with "
            "--label-column"
        )
    if many:
        raise RnnlabError(
            f"{path}: the label column {column!r} has {d} distinct values in {rows} rows; that "
            "looks like text or ids, not classes: pick the class column with --label-column"
        )
