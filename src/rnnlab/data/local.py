"""Local .csv/.tsv/.jsonl/.parquet files -> texts and integer labels.

A careless file fails here in one line that names the problem and the fix: a wrong encoding
(with the line), a duplicated or missing column, missing labels (empty, NaN, None, null), a
numeric column that holds measurements rather than classes, a nested value. Reading the
formats themselves (bytes -> columns) is `rnnlab.data.local_formats`'.
"""

from __future__ import annotations

import codecs
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.local_formats import read_csv, read_jsonl, read_parquet, to_utf8
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
        table = read_parquet(path)
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RnnlabError(
                f"cannot read {path} ({exc.strerror or type(exc).__name__}); check that you "
                "may read it"
            ) from None
        data = to_utf8(data, path, codec)
        if not data.strip():
            raise RnnlabError(
                f"{path} holds only blanks; give a file with a header row and labelled texts"
            )
        if suffix == ".jsonl":
            table = read_jsonl(data, path)
        else:
            table = read_csv(data, path, "\t" if suffix == ".tsv" else ",")
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
