"""`rnnlab report`: parse, call rnnlab.report.render, print one line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rnnlab.errors import RnnlabError
from rnnlab.io import read_json
from rnnlab.layout import REPORT, STUDY
from rnnlab.report import render
from rnnlab.report.findings import compare_findings_lines, read_findings


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
        "-o", "--out", default=REPORT, metavar="FILE", help=f"output file ({REPORT})"
    )
    report.add_argument("--title", metavar="TEXT", help="page title (default: from the runs)")
    report.add_argument(
        "--force", action="store_true", help="replace -o even if it is not an rnnlab report"
    )
    report.add_argument(
        "--compare-findings", metavar="OTHER_STUDY",
        help="instead of a page: compare the findings of the study folder RUN_DIR with those "
        "of OTHER_STUDY (their study.json), one line per finding: agree, differ, reversed",
    )  # fmt: skip
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    if args.compare_findings is not None:
        return cmd_compare_findings(args.run_dirs, args.compare_findings)
    out = render(
        args.run_dirs, args.out, title=args.title, force=args.force,
        warn=lambda line: print(f"rnnlab: warning: {line}", file=sys.stderr),
    )  # fmt: skip
    size = out.stat().st_size / 1024
    print(f"wrote {out} ({size:,.0f} KB)")
    return 0


def cmd_compare_findings(run_dirs: list[str], other: str) -> int:
    if len(run_dirs) != 1:
        raise RnnlabError(
            "--compare-findings compares two studies: give one study folder before it, e.g. "
            "rnnlab report runs/demo --compare-findings runs/demo-amd"
        )
    first, second = (study_findings(Path(folder)) for folder in (run_dirs[0], other))
    for line in compare_findings_lines(first, second, (run_dirs[0], other)):
        print(line)
    return 0


def study_findings(folder: Path) -> list[dict[str, Any]]:
    """The findings list of a study folder's study.json; a one-line error for a missing
    folder, a folder without study.json, damaged JSON or a study.json without findings."""
    if not folder.is_dir():
        raise RnnlabError(f"{folder} is not a folder; give a study folder made by rnnlab study")
    path = folder / STUDY
    if not path.is_file():
        raise RnnlabError(f"{folder} holds no {STUDY}; give a folder made by rnnlab study")
    try:
        data = read_json(path)
    except (OSError, ValueError):
        raise RnnlabError(f"{path} is damaged (not valid JSON); run the study again") from None
    return read_findings(data, str(path))
