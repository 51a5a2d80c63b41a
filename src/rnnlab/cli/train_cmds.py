"""`rnnlab train` and `compare` (also on N processes: --nproc): parse, call rnnlab.api, print."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rnnlab import api, runs
from rnnlab.cli.options import (
    SECTIONS,
    add_nproc_option,
    add_run_options,
    run_config_from_args,
)
from rnnlab.errors import RnnlabError
from rnnlab.io import dumps_json
from rnnlab.tables import print_tables
from rnnlab.training import distributed, launcher

INTERRUPTED = 130


def register(subparsers: Any) -> None:
    train = subparsers.add_parser(
        "train",
        help="train one model and save the run folder",
        description="Train one recurrent classifier; flags override --config.",
    )
    add_run_options(train)
    _add_output_options(train, resume=True)
    add_nproc_option(train)
    train.set_defaults(handler=cmd_train, flag_of=_flags_of(train))

    compare = subparsers.add_parser(
        "compare",
        help="train several models on the same data and compare them",
        description="Train each model on the same data, seed and settings; print one table.",
    )
    compare.add_argument(
        "--models",
        default="rnn,lstm,gru",
        metavar="A,B,...",
        help="comma-separated model presets (default rnn,lstm,gru)",
    )
    compare.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="train every model with N seeds (--seed, --seed+1, ...; folders <model>-seed<S>) "
        "and report mean ± std over them (default 1)",
    )
    add_run_options(compare, model=False)
    _add_output_options(compare)
    add_nproc_option(compare)
    compare.set_defaults(handler=cmd_compare)


def _add_output_options(parser: argparse.ArgumentParser, *, resume: bool = False) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--out", metavar="DIR", help="parent folder of the run (default runs/)")
    group.add_argument("--name", metavar="NAME", help="run folder name (default: a timestamp)")
    group.add_argument(
        "--overwrite", action="store_true", help="replace an earlier run folder of that --name"
    )
    if resume:
        group.add_argument(
            "--resume",
            metavar="RUN_DIR",
            help="continue an unfinished, interrupted or failed run from its last epoch",
        )
    group.add_argument(
        "--json", action="store_true", help="print summary JSON on stdout (logs go to stderr)"
    )


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


# ----- data parallel: --nproc, and the ranks' output --------------------------------------------
@contextlib.contextmanager
def rank_output() -> Iterator[None]:
    """Under torchrun, rank 0 prints as one process does; the other ranks print only an error
    of their own (prefixed with their rank), not the ones every rank raises alike."""
    if not distributed.launched():
        yield
        return
    rank = distributed.env_rank()
    with contextlib.ExitStack() as quiet:
        if rank > 0:  # logs, tables, JSON: rank 0's
            devnull = quiet.enter_context(open(os.devnull, "w", encoding="utf-8"))
            quiet.enter_context(contextlib.redirect_stdout(devnull))
        try:
            yield
        except distributed.PeerLost:  # rnnlab's launcher names the rank that died instead
            if rank == 0 and not distributed.under_launcher():
                raise
            raise SystemExit(2) from None
        except distributed.SharedError:
            if rank == 0:
                raise
            raise SystemExit(2) from None
        except RnnlabError as exc:
            if rank == 0:
                raise
            raise RnnlabError(f"rank {rank}: {exc}") from None
        except KeyboardInterrupt:
            if rank == 0:
                raise
            raise SystemExit(130) from None


def launch(args: argparse.Namespace, command: str) -> int:
    """`--nproc N`: the same command on N processes of this machine, through torchrun.

    The ranks get the resolved settings as a config file (each multiplies --batch-size by N:
    the global batch); the data is encoded and the kernels built here first, once, so a bad
    input fails in one line before any rank starts.
    """
    if distributed.launched():
        raise RnnlabError("--nproc starts the processes itself; under torchrun leave it out")
    if args.nproc < 1:
        raise RnnlabError(f"--nproc must be at least 1 (got {args.nproc})")
    distributed.timeout_s()  # before the data is encoded: the ranks would each say it
    output = [f"--{f}" for f in ("overwrite", "json") if getattr(args, f, False)]
    if command == "train" and args.resume:
        _check_resume_flags(args)
        folder = str(runs.check_resumable(args.resume))
        return launcher.launch(args.nproc, ["train", "--resume", folder, *output], run_dir=folder)
    config = run_config_from_args(args)
    name = args.name
    if command == "train":
        name = name or api.free_run_name(config, args.out)
        api.check_job(config, out=args.out, name=name, overwrite=args.overwrite, nproc=args.nproc)
    settings = Path(tempfile.mkdtemp(prefix="rnnlab-nproc-"))
    try:
        config.save_yaml(settings / "config.yaml")
        argv = [command, "--config", str(settings / "config.yaml"), *output]
        argv += (
            ["--models", args.models, "--seeds", str(args.seeds)] if command == "compare" else []
        )
        argv += ["--out", args.out] if args.out else []
        argv += ["--name", name] if name else []
        run_dir = str(Path(args.out or runs.DEFAULT_OUT) / name) if command == "train" else None
        return launcher.launch(args.nproc, argv, run_dir=run_dir)
    finally:
        shutil.rmtree(settings, ignore_errors=True)


def _flags_of(parser: argparse.ArgumentParser) -> dict[str, tuple[str, ...]]:
    """Each destination's flags as typed (`model__name` -> `--model`, `data__seed` ->
    `--data-seed`), so a message names the flag the user gave, not the field it sets."""
    return {a.dest: tuple(a.option_strings) for a in parser._actions if a.option_strings}


def _check_resume_flags(args: argparse.Namespace) -> None:
    flag_of: dict[str, tuple[str, ...]] = getattr(args, "flag_of", {})

    def typed(dest: str, value: Any) -> str:
        options = flag_of.get(dest) or ("--" + dest.split("__")[-1].replace("_", "-"),)
        negative = [o for o in options if o.startswith("--no-")]
        return negative[0] if value is False and negative and len(options) > 1 else options[0]

    given = [
        typed(dest, value)
        for dest, value in vars(args).items()
        if value is not None
        and dest.split("__")[0] in SECTIONS
        and "__" in dest
        and dest != "train__progress"  # --no-progress changes no result
    ]
    given += [typed(f, True) for f in ("config", "out", "name", "overwrite") if getattr(args, f)]
    if given:
        raise RnnlabError(
            f"--resume continues a run with its own settings; drop {', '.join(given)} (or "
            "start a new run without --resume)"
        )


# ----- train -----------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    if args.nproc is not None:
        return launch(args, "train")
    with rank_output():
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    log = sys.stderr if args.json else sys.stdout
    if args.resume:
        _check_resume_flags(args)
        result = api.resume(args.resume, stream=log)
    else:
        config = run_config_from_args(args)
        result = api.train(
            config, out=args.out, name=args.name, stream=log, overwrite=args.overwrite
        )
    if args.json:
        print(dumps_json(result.summary))
    else:
        print(_describe_run(result.summary, result.run_dir))
    return _exit_code(result.status, result.run_dir)


def _describe_run(summary: dict[str, Any], run_dir: Path) -> str:
    test = summary.get("test") or {}
    if "accuracy" in test:
        scores = f"test accuracy {test['accuracy']:.4f} | macro-F1 {test['macro_f1']:.4f}"
    elif "mse" in test:
        scores = f"test mse {test['mse']:.4f}"
    else:
        scores = "no test metrics"
    speed = (
        f"{summary['epochs_run']} epoch{'' if summary['epochs_run'] == 1 else 's'}, {_fmt(summary.get('seconds_per_epoch'), '.1f')} s/epoch, "
        f"{_fmt(summary.get('train_tokens_per_s'), ',.0f')} tok/s"
    )
    best = f"best epoch {summary['best_epoch']}" if summary.get("best_epoch") else "no best epoch"
    return f"{scores} | {best} | {speed}\nsaved {run_dir}"


def _exit_code(status: str, run_dir: Path) -> int:
    if status == "interrupted":
        if distributed.env_rank() > 0:  # rank 0 says it
            return INTERRUPTED
        print(
            f"rnnlab: interrupted; the best weights so far are saved in {run_dir}; continue "
            f"with `rnnlab train --resume {run_dir}`",
            file=sys.stderr,
        )
        return INTERRUPTED
    return 0


# ----- compare ---------------------------------------------------------------------------------
def cmd_compare(args: argparse.Namespace) -> int:
    if args.nproc is not None:
        return launch(args, "compare")
    with rank_output():
        return _compare(args)


def _compare(args: argparse.Namespace) -> int:
    config = run_config_from_args(args)
    models = [m.strip() for m in args.models.split(",")]
    log = sys.stderr if args.json else sys.stdout
    result = api.compare(
        config, models, out=args.out, name=args.name, stream=log, overwrite=args.overwrite,
        seeds=args.seeds,
    )  # fmt: skip
    if args.json:
        found = {"compare_dir": str(result.compare_dir), "rows": result.rows}
        print(dumps_json(found | ({"by_model": result.by_model} if result.by_model else {})))
    else:
        print_tables([result.table()])
        print(f"saved {result.compare_dir}")
    interrupted = any(r.status == "interrupted" for r in result.runs.values())
    return _exit_code("interrupted" if interrupted else "completed", result.compare_dir)
