"""Atomic file writes: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def dumps_json(obj: Any) -> str:
    """JSON text of obj, numpy scalars/arrays and paths included."""
    return json.dumps(obj, indent=2, default=_json_default)


def write_json_atomic(path: Path | str, obj: Any) -> None:
    write_text_atomic(path, dumps_json(obj) + "\n")


def write_with(path: Path | str, writer: Callable[[Path], None]) -> None:
    """Atomically create `path` with writer(tmp_path) (for numpy, torch, matplotlib savers)."""
    with atomic_path(path) as tmp:
        writer(tmp)


MAX_JSON_BYTES = 512 * 2**20
"""The largest JSON file rnnlab reads back (its own are far smaller: a result.json with every
attribution of a study is a few MB)."""


def read_json(path: Path | str) -> Any:
    """A JSON file rnnlab wrote, read with bounds: a regular file (not a device, FIFO or link
    to one), at most MAX_JSON_BYTES, nested no deeper than the parser allows. Anything else is a
    ValueError (callers say which file is damaged) or an OSError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file")
    with path.open("rb") as f:
        data = f.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ValueError(f"{path} is larger than {MAX_JSON_BYTES // 2**20} MB")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply") from None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
