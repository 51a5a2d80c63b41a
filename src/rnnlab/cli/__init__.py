"""The `rnnlab` command: thin argparse layer over the library.

Each area has its own module with `register(subparsers)`; every handler returns an exit code.
An RnnlabError becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from rnnlab.errors import RnnlabError
from rnnlab.paths import configure_cache_env

COMMAND_MODULES = (
    "data_cmds",
    "models_cmds",
    "train_cmds",
    "diagnose_cmds",
    "synthetic_cmds",
    "report_cmds",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line and exit 2, without the usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(
        prog="rnnlab", description="Train, compare and diagnose recurrent text classifiers."
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"rnnlab.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"rnnlab.cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    configure_cache_env()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except RnnlabError as exc:
        print(f"rnnlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rnnlab")
    except PackageNotFoundError:
        return "unknown"
