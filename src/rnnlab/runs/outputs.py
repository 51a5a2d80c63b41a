"""Result folders of diagnostics, sweeps and studies: where they go, and which are refused."""

from __future__ import annotations

from pathlib import Path

from rnnlab.errors import RnnlabError
from rnnlab.io import check_writable
from rnnlab.runs.folder import DEFAULT_OUT, timestamp


def check_out_dir(out: Path | str | None, default_name: str) -> Path:
    """The folder a command will write (not created yet): `out`, or runs/<timestamp>-<name>.

    An existing, non-empty folder is refused up front, so no result mixes with older files, and
    so is a folder that cannot be written (a read-only file system, no permission).
    """
    if out is None:
        base = DEFAULT_OUT / f"{timestamp()}-{default_name}"
        path, i = base, 1
        while path.exists():
            i += 1
            path = base.with_name(f"{base.name}-{i}")
        check_writable(path, flag="--out")
        return path
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise RnnlabError(f"{path} already exists and is not empty; pick another --out")
    check_writable(path, flag="--out")  # before the computing, not after it
    return path
