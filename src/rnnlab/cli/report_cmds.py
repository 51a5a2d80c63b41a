"""`rnnlab report`: parse, call rnnlab.report.render, print one line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rnnlab.report import render


def register(subparsers: Any) -> None:
    report = subparsers.add_parser(
        "report",
        help="one self-contained HTML report from saved run folders",
        description=(
            "Build one HTML page (figures embedded, no network) from run, compare, diagnostic, "
            "sweep, synthetic or study folders, searched recursively. Nothing is re-run."
        ),
    )
    report.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="folders to report on")
    report.add_argument(
        "-o", "--out", default="report.html", metavar="FILE", help="output file (report.html)"
    )
    report.add_argument("--title", metavar="TEXT", help="page title (default: from the runs)")
    report.add_argument(
        "--force", action="store_true", help="replace -o even if it is not an rnnlab report"
    )
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    out = render(
        args.run_dirs, args.out, title=args.title, force=args.force,
        warn=lambda line: print(f"rnnlab: warning: {line}", file=sys.stderr),
    )  # fmt: skip
    size = out.stat().st_size / 1024
    print(f"wrote {out} ({size:,.0f} KB)")
    return 0
