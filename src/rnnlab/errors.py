"""The one exception type that the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

import errno

DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
"""What the machine, not rnnlab, refuses: a full disk or quota, a read-only file system, no
permission. `disk_error` turns them into one line that names the path and the fix."""


class RnnlabError(Exception):
    """A problem with the user's input: the message names what was wrong and how to fix it."""


class DiskError(RnnlabError):
    """A file could not be written (or read): a full disk, a read-only file system, no
    permission. A study stops at it instead of failing every later step the same way."""

    def __init__(self, message: str, plain: str | None = None) -> None:
        super().__init__(message)
        self.plain = plain or message
        """The message without the caller's hint (a study gives its own instead of a run's)."""


def check(condition: bool, message: str) -> None:
    """Raise RnnlabError(message) unless condition holds."""
    if not condition:
        raise RnnlabError(message)


def disk_error(
    exc: BaseException, hint: str = "", *, flag: str = "--out", fix: str | None = None
) -> DiskError | None:
    """The one-line error for an OSError of DISK_ERRNOS (None for anything else): the path
    (`rnnlab.io.atomic_path` names the target, not its temporary file), what the machine said,
    and the fix (`fix`, or one naming `flag`, the option that picks the folder); `hint` (e.g.
    the resume command) is added."""
    if isinstance(exc, DiskError):
        return DiskError(f"{exc.plain}; {hint}", exc.plain) if hint else exc
    if not isinstance(exc, OSError) or exc.errno not in DISK_ERRNOS:
        return None
    path = str(exc.filename) if exc.filename else None
    what = f"cannot write {path}" if path else "a write failed"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "no space left on the device" if exc.errno == errno.ENOSPC else "disk quota full"
        elsewhere = f"free some space (or choose another {flag}) and run the command again"
        fix = fix or ("free some space" if hint else elsewhere)  # the hint says how to go on
    elif exc.errno == errno.EROFS:
        reason, fix = "the file system is read-only", fix or f"choose another {flag}"
    else:
        what = f"cannot use {path}" if path else "a file operation failed"
        reason = "permission denied"
        fix = fix or f"fix the permissions or choose another {flag}"
    plain = f"{what}: {reason}; {fix}"
    return DiskError(f"{plain}; {hint}" if hint else plain, plain)
