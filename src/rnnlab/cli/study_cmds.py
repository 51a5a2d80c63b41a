"""`rnnlab study`: parse, call rnnlab.study.run_study, print where the report is."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rnnlab.cli.diagnose_cmds import add_preset_flags, presets_from_args
from rnnlab.cli.options import add_tensorboard_options
from rnnlab.errors import RnnlabError
from rnnlab.layout import STUDY
from rnnlab.runs.compare import RULE
from rnnlab.study import default_out, run_study, study_settings
from rnnlab.training import distributed

NO_NPROC = (
    "rnnlab study runs in one process (its diagnostics and sweeps train many small models, "
    "which gain nothing from data parallelism); train data-parallel with `rnnlab train --nproc "
    "N` or `rnnlab compare --nproc N` instead"
)


def register(subparsers: Any) -> None:
    study = subparsers.add_parser(
        "study",
        help="compare RNN/LSTM/GRU, run every diagnostic and write the report, in one go",
        description=(
            "Train every compared model with 3 seeds (--seeds), run every registered "
            "diagnostic on them (gradients, states, sweeps, timing, padding, the synthetic "
            "task), then write report.html and the findings (study.json): a difference is a "
            f"finding only when {RULE}. "
            "An interrupted study resumes where it stopped (finished steps are kept); --fresh "
            "starts over. Per-diagnostic flags are --<diagnostic>-<setting>."
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
        "--seeds", type=int, metavar="N",
        help="train every compared model with N seeds (--seed, --seed+1, ...; default 3): a "
        f"difference is a finding only when {RULE}",
    )  # fmt: skip
    study.add_argument(
        "--threads", type=int, metavar="N", help="CPU threads for PyTorch (default: PyTorch's)"
    )
    add_tensorboard_options(study)
    study.add_argument(
        "--nproc", type=int, metavar="N", help="not supported: the study runs in one process"
    )
    add_preset_flags(study)
    study.set_defaults(handler=cmd_study)


def cmd_study(args: argparse.Namespace) -> int:
    if args.nproc is not None or distributed.launched():
        raise RnnlabError(NO_NPROC)
    extra = {"threads": args.threads} if args.threads is not None else {}
    if args.seeds is not None:
        extra["seeds"] = args.seeds
    if args.train__tensorboard:
        extra["tensorboard"] = True
    if args.train__tensorboard_every is not None:
        extra["tensorboard_every"] = args.train__tensorboard_every
    settings = study_settings(
        args.dataset, quick=args.quick, device=args.device, seed=args.seed,
        diagnostics=presets_from_args(args, quick=args.quick), **extra,
    )  # fmt: skip
    out = Path(args.out) if args.out else default_out(args.dataset, quick=args.quick)
    result = run_study(settings, out, fresh=args.fresh)
    if result.failed:
        print(
            f"rnnlab: {len(result.failed)} step(s) failed ({', '.join(result.failed)}); see "
            f"{result.out / STUDY}, fix the cause and run the same command to redo them",
            file=sys.stderr,
        )
    print(f"report: {result.report}")
    return 1 if result.failed else 0
