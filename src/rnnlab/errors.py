"""The one exception type that the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class RnnlabError(Exception):
    """A problem with the user's input: the message names what was wrong and how to fix it."""


def check(condition: bool, message: str) -> None:
    """Raise RnnlabError(message) unless condition holds."""
    if not condition:
        raise RnnlabError(message)
