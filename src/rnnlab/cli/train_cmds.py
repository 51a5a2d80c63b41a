"""`rnnlab train`, `compare`, `evaluate` and `predict`: parse, call rnnlab.api, print."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from rich.color import Color
from rich.console import Console
from rich.style import Style
from rich.text import Text

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

    evaluate = subparsers.add_parser(
        "evaluate",
        help="metrics of a saved run on a split or a file",
        description="Metrics of a saved model (with the confusion matrix).",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--split", choices=("test", "val", "train"), default="test")
    evaluate.add_argument(
        "--dataset",
        metavar="NAME_OR_FILE",
        help="another dataset or a local file, encoded with the run's own encoder",
    )
    evaluate.add_argument("--text-column", metavar="COL")
    evaluate.add_argument("--label-column", metavar="COL")
    evaluate.add_argument(
        "--encoding", default="utf-8", metavar="NAME", help="text encoding of --dataset FILE"
    )
    evaluate.add_argument(
        "--batch-size", type=int, metavar="N", help="default 256 on the CPU, 1024 on CUDA"
    )
    evaluate.add_argument("--device", default="auto", metavar="DEV")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(handler=cmd_evaluate)

    predict = subparsers.add_parser(
        "predict",
        help="label and class probabilities of texts",
        description="Classify texts with a saved run.",
    )
    predict.add_argument("run_dir", metavar="RUN_DIR")
    predict.add_argument("texts", nargs="*", metavar="TEXT")
    predict.add_argument(
        "--file", metavar="FILE", help="one text per line (- reads stdin); blank lines skipped"
    )
    predict.add_argument("--json", action="store_true", help="print the predictions as JSON")
    predict.add_argument(
        "--explain",
        action="store_true",
        help="also shade every token by its attribution toward the predicted class "
        "(integrated gradients from an all-<pad> baseline)",
    )
    predict.add_argument(
        "--steps", type=int, default=50, metavar="N",
        help="--explain: points of the integral from the baseline to the text (default 50)",
    )  # fmt: skip
    predict.set_defaults(handler=cmd_predict)


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


# ----- evaluate --------------------------------------------------------------------------------
def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.batch_size is not None and args.batch_size <= 0:
        raise RnnlabError(f"batch size must be positive (got {args.batch_size})")
    loaded = api.load_run(args.run_dir)
    result = api.evaluate_run(
        loaded,
        split=args.split,
        dataset=args.dataset,
        text_column=args.text_column,
        label_column=args.label_column,
        encoding=args.encoding,
        batch_size=args.batch_size,
        device=args.device,
    )
    metrics = result.to_dict(loaded.label_names)
    what = args.dataset or f"{loaded.config.data.dataset} ({args.split} split)"
    if args.json:
        print(dumps_json({"run_dir": str(loaded.run_dir), "data": what, **metrics}))
    else:
        print(format_metrics(metrics, what))
    return 0


def format_metrics(metrics: dict[str, Any], what: str) -> str:
    lines = [f"{what}: {metrics['examples']:,} examples, loss {metrics['loss']:.4f}"]
    if metrics["task"] == "regression":
        lines.append(f"mse {metrics['mse']:.4f} | mae {metrics['mae']:.4f}")
        return "\n".join(lines)
    lines.append(f"accuracy {metrics['accuracy']:.4f} | macro-F1 {metrics['macro_f1']:.4f}")
    names = list(metrics["per_class"])
    width = max(len(n) for n in [*names, "class"])
    lines.append("")
    lines.append(f"{'class'.ljust(width)}  precision  recall      f1  support")
    for name, m in metrics["per_class"].items():
        lines.append(
            f"{name.ljust(width)}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:6.4f}"
            f"  {m['support']:7d}"
        )
    matrix = metrics["confusion"]["matrix"]
    cell = max(len(str(v)) for row in matrix for v in row)
    cell = max(cell, *(len(n) for n in names))
    lines.append("")
    lines.append("confusion (rows: true, columns: predicted)")
    lines.append(" " * width + "  " + "  ".join(n.rjust(cell) for n in names))
    for name, row in zip(names, matrix, strict=True):
        lines.append(name.ljust(width) + "  " + "  ".join(str(v).rjust(cell) for v in row))
    lines.append("")
    lines.append("accuracy by length")
    for bucket in metrics["accuracy_by_length"]:
        span = f"{bucket['lo']}-{bucket['hi'] - 1}" if bucket["hi"] else f"{bucket['lo']}+"
        lines.append(f"  {span:>9} tokens: {_fmt(bucket['accuracy'])} ({bucket['count']:,} texts)")
    return "\n".join(lines)


# ----- predict ---------------------------------------------------------------------------------
def read_texts(args: argparse.Namespace, stdin: TextIO | None = None) -> list[str]:
    texts = list(args.texts)
    if args.file:
        if args.file == "-":
            source = stdin or sys.stdin
            buffer = getattr(source, "buffer", None)
            content = text_of(buffer.read() if buffer is not None else source.read(), "stdin")
        else:
            path = Path(args.file)
            if path.is_dir():
                raise RnnlabError(f"{path} is a folder; give a text file with one text per line")
            if not path.is_file():
                raise RnnlabError(
                    f"text file {path} does not exist; give a file with one text per line"
                )
            content = text_of(path.read_bytes(), str(path))
        from_file = [line for line in content.splitlines() if line.strip()]
        if not from_file:
            raise RnnlabError(f"{args.file} holds no text; give one text per line")
        texts.extend(from_file)
    if not texts:
        raise RnnlabError('no text to classify; give "some text" or --file texts.txt')
    return texts


MAX_UNDECODABLE = 0.25
"""Share of a --file's characters that may be invalid UTF-8 (each becomes U+FFFD) before the
file counts as binary: a text in latin-1 has a few such bytes, a model or an archive most."""


def text_of(data: bytes | str, where: str) -> str:
    """The text of a --file, or RnnlabError for a binary one (NUL bytes, or mostly bytes that
    are not UTF-8): classifying a model file's bytes as thousands of "lines" helps nobody."""
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    if "\0" in text:
        raise RnnlabError(
            f"{where} is a binary file (it holds NUL bytes); give a UTF-8 text file with one "
            "text per line"
        )
    bad = text.count("\ufffd") if isinstance(data, bytes) else 0
    if text and bad / len(text) > MAX_UNDECODABLE:
        raise RnnlabError(
            f"{where} is not UTF-8 text ({100 * bad / len(text):.0f}% of it cannot be decoded); "
            "give a UTF-8 text file with one text per line"
        )
    return text


def cmd_predict(args: argparse.Namespace) -> int:
    texts = read_texts(args)
    loaded = api.load_run(args.run_dir)
    if args.explain:
        return _explain(loaded, texts, args)
    predictions = api.predict(loaded, texts)
    if args.json:
        print(dumps_json([p.to_dict() for p in predictions]))
        return 0
    for p in predictions:
        snippet = p.text if len(p.text) <= 60 else p.text[:57] + "..."
        if p.label is None:
            print(f"{p.value:.4f}  {snippet}")
            continue
        probs = "  ".join(f"{name} {prob:.3f}" for name, prob in p.probabilities.items())
        print(f"{p.label}  ({probs})  {snippet}")
    return 0


def _explain(loaded: api.LoadedRun, texts: list[str], args: argparse.Namespace) -> int:
    if args.steps <= 0:
        raise RnnlabError(f"--steps must be positive (got {args.steps})")
    explanations = api.explain(loaded, texts, n_steps=args.steps)
    if args.json:
        print(dumps_json([e.to_dict() for e in explanations]))
        return 0
    console = Console(highlight=False)
    console.soft_wrap = not console.is_terminal  # a pipe or file: one line per line
    for i, e in enumerate(explanations):
        if i:
            console.print()
        print_explanation(e, console)
    return 0


FOR_RGB = (26, 152, 80)
AGAINST_RGB = (215, 48, 39)


def _shade(score: float, scale: float) -> Style:
    """A background from white to green (for) or red (against), by |score| / scale."""
    w = min(1.0, abs(score) / scale) if scale > 0 else 0.0
    r, g, b = FOR_RGB if score >= 0 else AGAINST_RGB
    mix = [round(255 + (c - 255) * 0.85 * w) for c in (r, g, b)]
    return Style(bgcolor=Color.from_rgb(*mix), color="black")


def print_explanation(e: Any, console: Console) -> None:
    """Label and probabilities, the shaded tokens, the strongest ones, the completeness gap."""
    probs = "  ".join(f"{name} {p:.3f}" for name, p in e.probabilities.items())
    console.print(Text(f"{e.label}  ({probs})"))
    scale = max((abs(s) for s in e.scores), default=0.0)
    line = Text("  ")
    for token, score in zip(e.tokens, e.scores, strict=True):
        line.append(token, style=_shade(score, scale))
        line.append(" ")
    console.print(line)

    def listed(pairs: list[tuple[str, float]]) -> str:
        return ", ".join(f"{t} {s:+.3f}" for t, s in pairs) or "-"

    console.print(Text(f"  for {e.target}: {listed(e.top())}"))
    console.print(Text(f"  against: {listed(e.top(against=True))}"))
    relative = "" if e.relative_gap is None else f", gap {100 * e.relative_gap:.2g}%"
    base = f"{e.baseline_score:.4f}" if e.baseline_score >= 0 else f"({e.baseline_score:.4f})"
    console.print(
        Text(
            f"  completeness: attributions sum to {e.total:.4f}; f(x) - f(baseline) = "
            f"{e.score:.4f} - {base} = {e.difference:.4f}{relative}; Captum's delta "
            f"{e.delta:.2e} (f: log-odds of {e.target}, {e.n_steps} steps, baseline all <pad>)"
        )
    )
    if e.relative_gap is not None and e.relative_gap > 0.05:
        console.print(
            Text(
                f"  warning: the attributions miss {100 * e.relative_gap:.0f}% of f(x) - "
                "f(baseline): the model's output jumps between the baseline and the text; "
                "more --steps may or may not close it"
            )
        )
