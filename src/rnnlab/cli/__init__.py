"""The `rnnlab` command: thin argparse layer over the library.

Each verb group has its own module with `register(subparsers)`, listed in COMMANDS; every
handler returns an exit code. An RnnlabError becomes one line on stderr and exit code 2, never
a traceback; so does an OSError of a full disk, a read-only file system or a permission
(`rnnlab.errors.disk_error`), wherever it was raised.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from rnnlab.cli import (
    data_cmds,
    diagnose_cmds,
    models_cmds,
    predict_cmds,
    report_cmds,
    study_cmds,
    train_cmds,
)
from rnnlab.errors import RnnlabError, disk_error
from rnnlab.paths import configure_cache_env

COMMANDS = (
    data_cmds,
    models_cmds,
    train_cmds,
    predict_cmds,
    diagnose_cmds,
    report_cmds,
    study_cmds,
)
"""`rnnlab datasets`, `models`, `train/compare`, `evaluate/predict`,
`diagnose/sweep/bench/synthetic`, `report`, `study`."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line and exit 2, without the usage block
        self.exit(2, f"rnnlab: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rnnlab", description="Train, compare and diagnose recurrent text classifiers."
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    configure_cache_env()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a flag argparse refused (one line)
        return int(exc.code or 0)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except RnnlabError as exc:
        print(f"rnnlab: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only file system, no permission: one line
        error = disk_error(exc)
        if error is None:
            raise
        print(f"rnnlab: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130


def _version() -> str:
    try:
        return version("rnnlab")
    except PackageNotFoundError:
        return "unknown"
