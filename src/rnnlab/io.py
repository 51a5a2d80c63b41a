"""Atomic file writes: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.errors import RnnlabError, disk_error

_UMASK = os.umask(0)
os.umask(_UMASK)


TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")
"""The temporary name `atomic_path` gives `<target>`: `.<target>.` + mkstemp's 8 random
characters (a-z, 0-9, _) + `.tmp`."""


def stale_temps(folder: Path | str, targets: Collection[str]) -> list[Path]:
    """The temporary files that an atomic write of one of `targets` (file names in `folder`)
    left behind when its process was killed: only names of exactly that pattern, only regular
    files (a symlink or a folder of that name is not rnnlab's)."""
    found = []
    for path in Path(folder).iterdir() if Path(folder).is_dir() else ():
        match = _TEMP_NAME.fullmatch(path.name)
        if match and match["target"] in targets and path.is_file() and not path.is_symlink():
            found.append(path)
    return sorted(found)


def remove_stale_temps(folder: Path | str, targets: Collection[str]) -> list[Path]:
    """Remove `stale_temps(folder, targets)` (call it while holding the folder: a live writer's
    temporary file has the same name); returns what was removed."""
    removed = []
    for path in stale_temps(folder, targets):
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


@contextmanager
def atomic_path(path: Path | str, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `path`, on error it is removed.

    `durable`: the temporary file is fsynced before the rename and the folder after it, so a
    power cut too leaves the old file or the new one, whole (a killed process always does)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise _about(exc, path, None) from exc
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        yield Path(tmp)
        if durable:
            _fsync_file(Path(tmp))
        os.replace(tmp, path)
        if durable:
            _fsync_folder(path.parent)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _about(exc, path, tmp) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_file(path: Path) -> None:
    """Flush a file's bytes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename, a new or removed file) to the disk, where the
    system allows it (not every OS or file system opens a folder for that)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _about(exc: OSError, path: Path, tmp: str | None) -> OSError:
    """The error of a failed write, naming the file the user knows (the target, not its hidden
    temporary file); an error about another file (one the writer read) is left as it is."""
    if exc.filename and exc.filename != tmp and not str(exc.filename).endswith(TEMP_SUFFIX):
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def check_writable(folder: Path | str, *, flag: str = "--out", fix: str | None = None) -> None:
    """Fail before any work when files cannot be created in `folder` (or, while it does not
    exist yet, in the nearest folder above it that does): a file in the way, no permission, a
    read-only file system. The check creates and removes a hidden empty file, so it sees what
    a write would (os.access does not see every refusal: ACLs, root squash, a read-only mount
    on some systems)."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    fix = fix or f"choose another {flag}"
    if existing.exists() and not existing.is_dir():
        raise RnnlabError(f"cannot write under {folder}: {existing} is a file; {fix}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".rnnlab-probe-", dir=existing)
    except OSError as exc:
        error = disk_error(OSError(exc.errno, exc.strerror, str(folder)), flag=flag, fix=fix)
        if error is None:
            raise RnnlabError(
                f"cannot write under {folder} ({exc.strerror or exc}); {fix}"
            ) from None
        raise error from None
    os.close(fd)
    os.unlink(probe)


def write_text_atomic(path: Path | str, text: str, *, durable: bool = False) -> None:
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


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
    data = read_bounded(path, MAX_JSON_BYTES)
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply") from None


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of a regular file (not a device, FIFO or link to one) of at most `limit`
    bytes; ValueError otherwise (nothing past the bound is read)."""
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file")
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit / 2**20:g} MB")
    return data


def bracket_depth(text: str) -> int:
    """The deepest nesting of [ and { in `text` (quoted ones counted too: an upper bound of a
    YAML or JSON document's flow nesting, found without a parser's recursion)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
