"""A run folder's integrity manifest (`layout.MANIFEST`, manifest.json): the size and sha256
of every file of `layout.RECORDED` that rnnlab wrote there, so that a reader tells the bytes
rnnlab wrote from a damaged, cut, replaced or edited file, and refuses the latter in one line.

```
{"format": 1, "algorithm": "sha256",
 "files":   {"config.yaml": {"size": 412, "sha256": "9f86..."}, "encoder/vocab.json": {...}},
 "pending": {"checkpoint.pt": [{"size": 14021633, "sha256": "..."}], "summary.json": [null]}}
```
A file's accepted states are its entry under "files" (no entry: the file is absent) and the
states listed under "pending" (null: absent). `check_files` refuses any other state: other
bytes or another size, not a regular file (a device, a folder, a link to one; a link to a file
with the right bytes is read like that file), present but not listed, listed but missing.

Writing: every write of a recorded file is one transaction, `write_files`:
1. stage: the new files are written whole to hidden temporary files beside their targets
   (`.checkpoint.pt.XXXXXXXX.tmp`), or, what a function writes (the encoder, the curves), into
   a hidden folder (`.staged-XXXXXXXX/`); their sizes and sha256 are taken;
2. announce: manifest.json gets each new state under "pending";
3. replace: each staged file is renamed over its target (os.replace, atomic), in the order
   given (summary.json last), or a removed file is unlinked;
4. commit: manifest.json gets the new states under "files" and drops them from "pending".
manifest.json is itself written to a temporary file, fsynced, renamed over the old one, and
the folder fsynced: a kill, or a power cut, leaves the old manifest or the new one, whole, and
the announcement reaches the disk before any file it announces is renamed. The data files are
not fsynced, as rnnlab's other atomic writes are not: a power cut may lose the newest bytes of
one, which then match no state and are refused (never accepted); a killed process loses
nothing. `RNNLAB_FSYNC=0` skips the manifest's fsyncs too (the test suite does: it trains
hundreds of tiny runs, and a kill needs none).

Why a kill at any moment leaves a folder that reads true, and only a true one:
- until step 2 is done, neither a target nor the manifest has changed (staging is hidden);
- between 2 and 4, each target holds its old state, which "files" accepts, or its new one,
  which "pending" accepts; a rename is atomic, so there is no third state;
- after 4, each target holds its new state, which "files" lists.
So a kill between a file's write and the manifest's never makes a reader refuse the folder.
And every accepted state is bytes rnnlab hashed before they reached the target: a file
changed afterwards (a flipped bit, a cut or partial copy, a sync conflict, an edit) matches
none and is refused. A file "newer than the manifest" is thus either announced or foreign.
A transaction that finds "pending" states a killed one left first settles them: the state
each file is in becomes its "files" state. After any transaction that completed, "pending" is
empty.

The transactions of a run: start (config.yaml, model_spec.json, labels.json, encoder/); after
every epoch checkpoint.pt, then metrics.jsonl; at the end model.pt, predictions.json,
curves.png and summary.json in one, summary.json renamed last, so a folder whose summary.json
is the new one holds the new weights; a failed run's summary.json; a resume first removes
summary.json, model.pt and curves.png (announced as null). tensorboard/ is not recorded: no
reader trusts it.

A folder without manifest.json was written before rnnlab kept one (or lost it): `check_files`
returns False and readers read it as before, with every other check (the torch archives'
CRC-32, shapes, vocabulary, typed JSON), and say nothing: the user could do nothing about it
but train again, and the folder is as safe as when it was written. The first transaction in
such a folder (a resume) adopts the recorded files it finds as they are: the resume has just
read the checkpoint (CRC-32 checked) and matched labels and vocabulary against the data.

A manifest is not a signature: whoever edits a file and its line in manifest.json, or removes
manifest.json, is not stopped. It guards against damage, not against an adversary.

sha256, not blake2b: with the SHA extensions of current x86 and ARM CPUs it is the faster one
(2-core AMD EPYC, 2026-12-08, hashlib, 8.5 MB in memory: 5.7 ms against blake2b's 11.2 ms;
benchmarks/bench_manifest.py, docs/FAULTS.md), and `sha256sum` checks a file by hand.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.errors import RnnlabError
from rnnlab.io import (
    TEMP_SUFFIX,
    dumps_json,
    read_json,
    write_bytes_atomic,
    write_text_atomic,
)
from rnnlab.layout import ENCODER, MANIFEST, RECORDED

FORMAT = 1
ALGORITHM = "sha256"
FOLDERS = (ENCODER,)
"""Names of RECORDED that are folders: each file in them is recorded as `<folder>/<file>`."""
MAX_FOLDER_FILES = 64
"""More files than this in a recorded folder is damage (the encoder writes two)."""
STAGING_PREFIX = ".staged-"
_CHUNK = 1 << 20

Content = bytes | Callable[[Path], object] | None
"""What `write_files` writes under a name: bytes; a function that writes the file (or, for a
name of FOLDERS, the folder) at the path it is given; or None to remove the file."""


@dataclass(frozen=True)
class Entry:
    """A file's recorded state."""

    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256}


State = Entry | None
"""A file's state: its Entry, or None when it is absent."""


@dataclass
class Manifest:
    files: dict[str, Entry] = field(default_factory=dict)
    pending: dict[str, list[State]] = field(default_factory=dict)

    def accepted(self, name: str) -> list[State]:
        """The states a reader accepts for `name`."""
        return [self.files.get(name), *self.pending.get(name, [])]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "algorithm": ALGORITHM,
            "files": {name: entry.to_dict() for name, entry in sorted(self.files.items())},
            "pending": {
                name: [s.to_dict() if s is not None else None for s in states]
                for name, states in sorted(self.pending.items())
            },
        }


# ----- hashing -----------------------------------------------------------------------------
def digest_bytes(data: bytes) -> Entry:
    return Entry(len(data), hashlib.sha256(data).hexdigest())


def digest_file(path: Path, limit: int | None = None) -> Entry:
    """Size and sha256 of a file, reading at most `limit` + 1 bytes (a file that grew past
    `limit` gets a size above it and the hash of what was read)."""
    hasher = hashlib.sha256()
    read = 0
    with path.open("rb") as f:
        while limit is None or read <= limit:
            chunk = f.read(_CHUNK if limit is None else min(_CHUNK, limit + 1 - read))
            if not chunk:
                break
            hasher.update(chunk)
            read += len(chunk)
    return Entry(read, hasher.hexdigest())


def file_state(path: Path, sizes: set[int] | None = None) -> State | str:
    """The state of `path` on disk: None (absent), its Entry, or why it is neither (a
    sentence). A size outside `sizes` is returned without reading the file."""
    try:
        info = path.stat()  # follows a link: what a reader would read
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if sizes is not None and info.st_size not in sizes:
        return Entry(info.st_size, "")
    try:
        return digest_file(path, limit=info.st_size)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"


# ----- reading -----------------------------------------------------------------------------
def read_manifest(folder: Path, *, fix: str) -> Manifest | None:
    """The folder's manifest; None when it has none; RnnlabError when it is damaged."""
    path = Path(folder) / MANIFEST
    if not os.path.lexists(path):
        return None
    try:
        return _parse(read_json(path))
    except (OSError, ValueError) as exc:
        reason = str(exc).removeprefix(f"{path} ")
        raise RnnlabError(f"{path} is damaged ({reason[:80]}); {fix}") from None


def _parse(raw: Any) -> Manifest:
    """A Manifest from JSON, or ValueError saying what is wrong."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(f"not an rnnlab manifest of format {FORMAT}")
    if raw.get("algorithm") != ALGORITHM:
        raise ValueError(f"algorithm is not {ALGORITHM}")
    files, pending = raw.get("files"), raw.get("pending", {})
    if not isinstance(files, dict) or not isinstance(pending, dict):
        raise ValueError("files and pending must be objects")
    manifest = Manifest()
    for name, entry in files.items():
        manifest.files[_name(name)] = _entry(entry)
    for name, states in pending.items():
        if not isinstance(states, list) or not states:
            raise ValueError(f"pending {name!r} must be a list of states")
        manifest.pending[_name(name)] = [None if s is None else _entry(s) for s in states]
    return manifest


def _name(name: str) -> str:
    parts = name.split("/")
    top = parts[0]
    if top not in RECORDED or len(parts) > (2 if top in FOLDERS else 1):
        raise ValueError(f"{name[:40]!r} is not a file rnnlab records")
    if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
        raise ValueError(f"{name[:40]!r} is not a plain file name")
    return name


def _entry(raw: Any) -> Entry:
    if not isinstance(raw, dict):
        raise ValueError("an entry is not an object")
    size, digest = raw.get("size"), raw.get("sha256")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("a size is not a count of bytes")
    if not isinstance(digest, str) or len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise ValueError("a sha256 is not 64 hex digits")
    return Entry(size, digest)


# ----- checking ----------------------------------------------------------------------------
def check_files(folder: Path | str, names: Iterable[str], *, fix: str) -> bool:
    """Check the files `names` (of RECORDED; a name of FOLDERS checks every file in it) against
    the folder's manifest before they are read: RnnlabError, one line naming the file and
    `fix`, for any state the manifest does not accept. False when the folder has no manifest
    (written before rnnlab kept one: nothing is checked), True when every file matched."""
    folder = Path(folder)
    manifest = read_manifest(folder, fix=fix)
    if manifest is None:
        return False
    for name in _expand(folder, manifest, names, fix):
        accepted = manifest.accepted(name)
        state = file_state(folder / name, {s.size for s in accepted if s is not None})
        if state not in accepted:
            raise RnnlabError(_refusal(folder / name, state, accepted, fix))
    return True


def _expand(folder: Path, manifest: Manifest, names: Iterable[str], fix: str) -> Iterator[str]:
    for name in names:
        if name not in FOLDERS:
            yield name
            continue
        listed = {n for n in (*manifest.files, *manifest.pending) if n.startswith(f"{name}/")}
        yield from sorted(listed | _folder_files(folder, name, fix))


def _folder_files(folder: Path, name: str, fix: str) -> set[str]:
    """`<name>/<file>` for each entry of the recorded folder `name` (none if it is absent or
    not a folder: its listed files then read as missing)."""
    path = folder / name
    if path.is_symlink() or not path.is_dir():
        return set()
    found = set()
    with os.scandir(path) as entries:
        for entry in entries:
            found.add(f"{name}/{entry.name}")
            if len(found) > MAX_FOLDER_FILES:
                raise RnnlabError(
                    f"{path} holds more than {MAX_FOLDER_FILES} entries, not what rnnlab wrote "
                    f"there; {fix}"
                )
    return found


def _refusal(path: Path, state: State | str, accepted: list[State], fix: str) -> str:
    if isinstance(state, str):
        return f"{path} {state}; the run's {MANIFEST} lists a file there; {fix}"
    if state is None:
        return (
            f"{path} is missing, but the run's {MANIFEST} lists it (the folder was copied in "
            f"part, or damaged); {fix}"
        )
    if not any(s is not None for s in accepted):
        return f"{path} is not in the run's {MANIFEST}: rnnlab did not write it there; {fix}"
    return (
        f"{path} does not match the run's {MANIFEST} ({ALGORITHM} and size): the file was "
        f"changed or damaged; {fix}"
    )


# ----- writing -----------------------------------------------------------------------------
def write_files(folder: Path | str, contents: Mapping[str, Content]) -> None:
    """Write (or, for None, remove) the files of RECORDED named in `contents`, in their
    order, keeping the folder's manifest true at every instant (the module's docstring says
    how). The caller holds the folder (its lock): one writer at a time. An OSError names the
    target file, not a staged one."""
    folder = Path(folder)
    for name in contents:
        _name(name)  # ValueError: a caller's mistake
    staging: Path | None = None  # made for the first content a function writes
    temporary: list[Path] = []  # bytes, staged beside their target
    try:
        changes: dict[str, tuple[State, Path | None]] = {}
        for name, content in contents.items():
            if content is None:
                changes.update(_removal(folder, name))
            elif isinstance(content, bytes):
                temporary.append(_stage_bytes(folder / name, content))
                changes[name] = (digest_bytes(content), temporary[-1])
            else:
                staging = staging or _make_staging(folder, name)
                changes.update(_stage(folder, staging, name, content))
        manifest = _current(folder)
        _settle(folder, manifest)
        for name, (new, _) in changes.items():
            manifest.pending[name] = [new]
        _save(folder, manifest)
        for name, (_, source) in changes.items():
            _put(folder / name, source)
        for name, (new, _) in changes.items():
            del manifest.pending[name]
            if new is None:
                manifest.files.pop(name, None)
            else:
                manifest.files[name] = new
        _save(folder, manifest)
    finally:
        for path in temporary:  # renamed already, unless the transaction failed
            path.unlink(missing_ok=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def write_file(path: Path | str, data: bytes) -> None:
    """Write one file: through its folder's manifest when its name is one of RECORDED (a run's
    checkpoint.pt, metrics.jsonl), else atomically (a callback's file elsewhere)."""
    path = Path(path)
    if path.name in RECORDED:
        write_files(path.parent, {path.name: data})
    else:
        write_bytes_atomic(path, data)


def remove_stale_staging(folder: Path | str) -> None:
    """Remove the staging folders of transactions a kill interrupted (call it holding the
    folder's lock: a live transaction's staging folder has the same name)."""
    folder = Path(folder)
    for path in folder.glob(f"{STAGING_PREFIX}*") if folder.is_dir() else ():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


def _make_staging(folder: Path, first: str) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(folder / first)) from exc


def _stage_bytes(target: Path, data: bytes) -> Path:
    """`data` in a hidden temporary file beside `target`, named as `io.atomic_path` names its
    own (`.<name>.XXXXXXXX.tmp`, so opening the run removes one a kill left behind)."""
    path = target.with_name(f".{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
    try:
        _write_staged(path, data)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc
    return path


def _stage(
    folder: Path, staging: Path, name: str, content: Content
) -> dict[str, tuple[State, Path | None]]:
    """Write what a function writes into the staging folder: {file name: (its state, staged
    path)}; a folder's files that the new one no longer holds are removed."""
    staged = staging / name
    try:
        if callable(content):
            content(staged)
        files = sorted(p for p in staged.iterdir()) if staged.is_dir() else [staged]
        changes: dict[str, tuple[State, Path | None]] = {}
        for path in files:
            changes[path.relative_to(staging).as_posix()] = (digest_file(path), path)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(folder / name)) from exc
    if name in FOLDERS:
        for gone in sorted(_folder_files(folder, name, "remove the folder") - set(changes)):
            changes[gone] = (None, None)
    return changes


def _write_staged(path: Path, data: bytes) -> None:
    with path.open("xb") as f:  # a new file, with the usual permissions
        f.write(data)


def _removal(folder: Path, name: str) -> dict[str, tuple[State, Path | None]]:
    names = sorted(_folder_files(folder, name, "remove the folder")) if name in FOLDERS else [name]
    return {n: (None, None) for n in names}


def _current(folder: Path) -> Manifest:
    """The folder's manifest; in a folder without one, the recorded files it holds, as they
    are (a run written before manifests, now resumed: see the module's docstring)."""
    fix = f"remove {folder / MANIFEST} to write the folder without it"
    found = read_manifest(folder, fix=fix)
    if found is not None:
        return found
    adopted = Manifest()
    for name in RECORDED:
        for file in sorted(_folder_files(folder, name, fix)) if name in FOLDERS else [name]:
            state = file_state(folder / file)
            if isinstance(state, Entry):
                adopted.files[file] = state
    return adopted


def _settle(folder: Path, manifest: Manifest) -> None:
    """For each file a killed transaction left "pending": the accepted state it is in becomes
    its "files" state (a file in none, damaged since, keeps its old one, and stays refused)."""
    for name in list(manifest.pending):
        accepted = manifest.accepted(name)
        state = file_state(folder / name, {s.size for s in accepted if s is not None})
        del manifest.pending[name]
        if state in accepted:
            if isinstance(state, Entry):
                manifest.files[name] = state
            else:
                manifest.files.pop(name, None)


def _put(target: Path, source: Path | None) -> None:
    """Rename `source` over `target` (None: remove `target`); something else in the way (a
    folder, a link where a file belongs) is removed first."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    if source is None:
        target.unlink(missing_ok=True)
        return
    parent = target.parent
    if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
        parent.unlink()
    parent.mkdir(exist_ok=True)
    os.replace(source, target)


def _save(folder: Path, manifest: Manifest) -> None:
    text = dumps_json(manifest.to_dict()) + "\n"
    write_text_atomic(folder / MANIFEST, text, durable=durable())


def durable() -> bool:
    """Whether manifest.json is fsynced (`RNNLAB_FSYNC=0`: not; see the module's docstring)."""
    return os.environ.get("RNNLAB_FSYNC", "1").strip() != "0"
