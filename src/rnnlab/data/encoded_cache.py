"""The on-disk cache of encoded splits: an entry (splits.npz, the encoder, meta.json) is written
into a temporary folder and renamed into place, so a crash never leaves half of one; a damaged
entry reads as missing (and is rebuilt); the temporary folders of killed writers are removed.
Which entry a config maps to is `rnnlab.data.pipeline.cache_key`'s.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import numpy as np

from rnnlab.data.encoded import SPLITS, EncodedSplit, EncodedSplits
from rnnlab.data.text_encoder import TextEncoder
from rnnlab.errors import RnnlabError
from rnnlab.io import read_json, write_json_atomic

# A writer locks `.tmp-*/.writing` right after making the folder; a folder older than this whose
# lock is free belongs to a writer that was killed. Folders without the lock file (from before
# it, or during the instant after the writer removes it) are left alone for much longer.
STALE_AFTER_S = 60.0
UNLOCKED_STALE_AFTER_S = 3600.0
_LOCK_NAME = ".writing"


def remove_stale_temp_dirs(folder: Path, *, now: float | None = None) -> list[Path]:
    """Remove the `.tmp-*` folders that killed writers left in `folder`; a live writer's (its
    lock is held) and a fresh one's are kept. Safe to run while other processes write."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    for path in sorted(folder.glob(".tmp-*")):
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue  # another cleaner or its writer got there first
        if age < STALE_AFTER_S:
            continue
        state, handle = _try_lock(path / _LOCK_NAME)
        try:
            if state == "busy" or (state == "unknown" and age < UNLOCKED_STALE_AFTER_S):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            if handle is not None:
                handle.close()
    return removed


def _try_lock(path: Path) -> tuple[str, IO[bytes] | None]:
    """("held", the open locked file), ("busy", None) when a live writer holds the lock, or
    ("unknown", None) when there is no lock file or no way to lock (the age decides)."""
    try:
        import fcntl  # POSIX only
    except ImportError:
        return "unknown", None
    try:
        handle = path.open("rb")
    except OSError:
        return "unknown", None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return "busy", None
    except OSError:  # a file system without locks
        handle.close()
        return "unknown", None
    return "held", handle


def _hold_lock(path: Path) -> IO[bytes]:
    """Create and lock `path` for as long as the returned file stays open."""
    handle = path.open("wb")
    try:
        import fcntl  # POSIX only

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):
        pass  # no locks here: the age rule alone protects the folder
    return handle


def write_entry(entry: Path, splits: EncodedSplits) -> None:
    """Write into a temporary folder, then rename: a crash never leaves a half-written entry,
    and the folders that killed writers left behind are removed by the next write."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(entry.parent)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
    lock: IO[bytes] | None = None
    try:
        lock = _hold_lock(tmp / _LOCK_NAME)
        arrays: dict[str, Any] = {}
        for name in SPLITS:
            split = splits.split(name)
            arrays.update(
                {
                    f"{name}_ids": split.ids,
                    f"{name}_offsets": split.offsets,
                    f"{name}_labels": split.labels,
                }
            )
        np.savez(tmp / "splits.npz", **arrays)
        splits.encoder.save(tmp / "encoder")
        write_json_atomic(
            tmp / "meta.json",
            {
                "label_names": splits.label_names,
                "vocab_size": splits.vocab_size,
                "info": splits.info,
            },
        )
        (tmp / _LOCK_NAME).unlink()  # still held until closed, below
        try:
            tmp.rename(entry)
        except OSError:  # another process wrote the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            lock.close()


def read_entry(entry: Path) -> EncodedSplits | None:
    if not (entry / "meta.json").is_file():
        return None
    try:
        meta = read_json(entry / "meta.json")
        with np.load(entry / "splits.npz") as npz:
            parts = {
                n: EncodedSplit(npz[f"{n}_ids"], npz[f"{n}_offsets"], npz[f"{n}_labels"])
                for n in SPLITS
            }
        encoder = TextEncoder.load(entry / "encoder")
    except (OSError, ValueError, KeyError, RnnlabError):
        shutil.rmtree(entry, ignore_errors=True)  # a damaged entry is rebuilt
        return None
    return EncodedSplits(
        parts["train"],
        parts["val"],
        parts["test"],
        meta["label_names"],
        meta["vocab_size"],
        encoder,
        info=meta["info"],
    )
