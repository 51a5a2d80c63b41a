"""`rnnlab evaluate` and `predict`: a saved run's metrics on a split or a file, and its labels,
probabilities and (--explain) token attributions for texts; parse, call rnnlab.api, print."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from rich.color import Color
from rich.console import Console
from rich.style import Style
from rich.text import Text

from rnnlab import api
from rnnlab.errors import RnnlabError
from rnnlab.io import dumps_json


def register(subparsers: Any) -> None:
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


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


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
