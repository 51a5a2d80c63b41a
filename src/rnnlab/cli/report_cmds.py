"""`rnnlab report` and `rnnlab study`: parse, call rnnlab.report, print one line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


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
    report.set_defaults(handler=cmd_report)

    study = subparsers.add_parser(
        "study",
        help="compare RNN/LSTM/GRU, run the diagnostics and write the report, in one go",
        description=(
            "Train rnn, lstm and gru, run the diagnostics, the sequence-length sweep and the "
            "remember-first synthetic task, then write report.html. An interrupted study "
            "resumes where it stopped (finished steps are kept); --fresh starts over."
        ),
    )
    study.add_argument("--dataset", default="imdb", metavar="NAME", help="dataset (default imdb)")
    study.add_argument(
        "--quick", action="store_true", help="small settings that finish in minutes on a CPU"
    )
    study.add_argument(
        "--out", metavar="DIR", help="study folder (default runs/study-<dataset>[-quick])"
    )
    study.add_argument(
        "--fresh", action="store_true", help="discard the finished steps in --out and start over"
    )
    study.add_argument("--device", default="auto", metavar="DEV", help="auto, cpu, cuda, mps")
    study.add_argument("--seed", type=int, default=0, metavar="N", help="seed of data and models")
    study.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads for PyTorch (default: 1 with --quick, else PyTorch's default)",
    )
    study.set_defaults(handler=cmd_study)


def cmd_report(args: argparse.Namespace) -> int:
    from rnnlab.report.html import render

    out = render(args.run_dirs, args.out, title=args.title)
    size = out.stat().st_size / 1024
    print(f"wrote {out} ({size:,.0f} KB)")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from rnnlab.report.study import default_out, run_study, study_settings

    extra = {"threads": args.threads} if args.threads is not None else {}
    settings = study_settings(
        args.dataset, quick=args.quick, device=args.device, seed=args.seed, **extra
    )
    out = Path(args.out) if args.out else default_out(args.dataset, quick=args.quick)
    result = run_study(settings, out, fresh=args.fresh)
    if result.failed:
        print(
            f"rnnlab: {len(result.failed)} step(s) failed ({', '.join(result.failed)}); see "
            f"{result.out / 'study.json'}, fix the cause and run the same command to redo them",
            file=sys.stderr,
        )
    print(f"report: {result.report}")
    return 1 if result.failed else 0
