"""`rnnlab synthetic TASK`: memory over distance on a synthetic task, every model at every length.

Thin: parse the flags, call `rnnlab.diagnostics.synthetic_sweep.run_synthetic_sweep`, save the
result folder (result.json + PNGs), print a table and a plain-words reading.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rnnlab.diagnostics import synthetic_sweep as sweep
from rnnlab.errors import RnnlabError

INTERRUPTED = 130


def _bias(text: str) -> float | None:
    return None if text.strip().lower() == "none" else float(text)


def register(subparsers: Any) -> None:
    from rnnlab.data.synthetic import TASKS, list_tasks

    tasks = "; ".join(f"{name}: {TASKS[name].description}" for name in list_tasks())
    parser = subparsers.add_parser(
        "synthetic",
        help="train every model at every length on a synthetic memory task",
        description=(
            "Train each model at each sequence length on a synthetic task with equal budgets; "
            "report the test accuracy (MSE for adding) and the gradient reaching the first "
            f"step, save result.json and PNG figures. Tasks: {tasks}."
        ),
    )
    parser.add_argument("task", metavar="TASK", help=f"one of {', '.join(list_tasks())}")
    parser.add_argument(
        "--lengths",
        default=",".join(str(n) for n in sweep.DEFAULT_LENGTHS),
        metavar="T1,T2,...",
        help="comma-separated sequence lengths, each at least 2 (default %(default)s)",
    )
    parser.add_argument(
        "--models",
        default=",".join(sweep.DEFAULT_MODELS),
        metavar="A,B,...",
        help="comma-separated model presets (default %(default)s)",
    )
    parser.add_argument(
        "--seeds", type=int, default=1, metavar="N", help="seeds per cell (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--epochs", type=int, default=sweep.DEFAULT_EPOCHS, metavar="N",
                        help="epochs per cell, no early stopping (default %(default)s)")  # fmt: skip
    parser.add_argument("--num-examples", type=int, default=sweep.DEFAULT_NUM_EXAMPLES,
                        metavar="N", help="examples over train/val/test, split 80/10/10 "
                        "(default %(default)s)")  # fmt: skip
    parser.add_argument("--hidden-dim", type=int, default=sweep.DEFAULT_HIDDEN_DIM, metavar="H",
                        help="hidden size of every model (default %(default)s)")  # fmt: skip
    parser.add_argument("--gate-bias", type=_bias, default=sweep.DEFAULT_GATE_BIAS, metavar="B",
                        help="initial LSTM forget / GRU update gate bias (default %(default)s; "
                        "none: PyTorch's init)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=sweep.DEFAULT_BATCH_SIZE, metavar="N",
                        help="default %(default)s")  # fmt: skip
    parser.add_argument("--lr", type=float, default=sweep.DEFAULT_LR,
                        help="Adam learning rate (default %(default)s)")  # fmt: skip
    parser.add_argument("--vocab-size", type=int, default=10, metavar="V",
                        help="parity: number of distinct symbols (default %(default)s)")  # fmt: skip
    parser.add_argument("--device", default="auto", metavar="DEV",
                        help="auto, cpu, cuda, cuda:N or mps (default auto)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=sweep.DEFAULT_THREADS, metavar="N",
                        help="CPU threads for PyTorch (default %(default)s: these small models "
                        "gain nothing from more, and lose a lot on a busy machine)")  # fmt: skip
    parser.add_argument("--out", metavar="DIR",
                        help="result folder (default runs/<timestamp>-synthetic-TASK)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (a line per finished cell is still printed)")  # fmt: skip
    parser.set_defaults(handler=cmd_synthetic)


def parse_lengths(text: str) -> list[int]:
    """`10,50,100` -> [10, 50, 100]; every value an integer of at least 2."""
    values = []
    for part in text.split(","):
        raw = part.strip()
        try:
            values.append(int(raw))
        except ValueError:
            raise RnnlabError(
                f"lengths must be integers of at least 2 (got {raw!r}); e.g. --lengths 10,50,100"
            ) from None
    return sweep.check_lengths(values)


def cmd_synthetic(args: argparse.Namespace) -> int:
    from rich.console import Console

    from rnnlab.data.synthetic import get_task
    from rnnlab.diagnostics.common import check_out_dir

    task = get_task(args.task)
    lengths = parse_lengths(args.lengths)
    if args.seeds < 1:
        raise RnnlabError(f"--seeds must be at least 1 (got {args.seeds}); e.g. --seeds 3")
    if args.threads is not None and args.threads < 1:
        raise RnnlabError(f"--threads must be at least 1 (got {args.threads})")
    out = check_out_dir(args.out, f"synthetic-{task.name}")
    console = Console(stderr=True, highlight=False)
    with _ProgressReporter(console, enabled=not args.no_progress) as report:
        result = sweep.run_synthetic_sweep(
            task.name,
            lengths,
            args.models,
            seeds=args.seeds,
            epochs=args.epochs,
            num_examples=args.num_examples,
            hidden_dim=args.hidden_dim,
            gate_bias=args.gate_bias,
            batch_size=args.batch_size,
            lr=args.lr,
            vocab_size=args.vocab_size,
            device=args.device,
            seed=args.seed,
            threads=args.threads,
            progress=report,
        )
    folder = result.save(out)
    print_result(result)
    print(f"wrote {folder}/ (result.json, {', '.join(_pngs(result))}) in "
          f"{result.total_seconds:.0f} s")  # fmt: skip
    if result.status == "interrupted":
        print("rnnlab: interrupted; the cells finished so far are saved", file=sys.stderr)
        return INTERRUPTED
    return 0


def _pngs(result: sweep.SyntheticSweepResult) -> list[str]:
    return [f"{result.metric}_vs_length.png", "first_step_grad.png"]


def print_result(result: sweep.SyntheticSweepResult) -> None:
    """The table (rich) and the plain-words reading, on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=max(Console().width, 100))
    for spec in result.tables():
        table = Table(title=spec.title, title_justify="left")
        for i, name in enumerate(spec.columns):
            table.add_column(name, justify="left" if i < 2 else "right", no_wrap=True)
        for row in spec.rows:
            table.add_row(*row)
        console.print(table)
        for note in spec.notes:
            console.print(f"  {note}")


class _ProgressReporter:
    """One line per finished cell on stderr, under a progress bar unless disabled.

    The bar starts with the first cell, so errors in the flags stay one clean line.
    """

    def __init__(self, console: Any, *, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self.bar: Any = None
        self.task_id: Any = None

    def __enter__(self) -> Any:
        return self.update

    def update(self, event: sweep.SweepProgress) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        label = f"{event.model} T={event.length} seed {event.seed}"
        if self.bar is None and not self.enabled:
            if event.cell is not None:
                self.console.print(self._line(label, event.cell))
            return
        if self.bar is None:
            self.bar = Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=self.console, transient=True,
            )  # fmt: skip
            self.bar.start()
            self.task_id = self.bar.add_task(label, total=event.total)
        cell = event.cell
        if cell is None:
            self.bar.update(self.task_id, description=label, completed=event.done)
            return
        self.bar.console.print(self._line(label, cell))
        self.bar.update(self.task_id, completed=event.done)

    @staticmethod
    def _line(label: str, cell: sweep.SyntheticCell) -> str:
        value = "-" if cell.value is None else f"{cell.value:.3f}"
        grad = "-" if cell.first_step_grad is None else f"{cell.first_step_grad:.1e}"
        return f"{label}: test {value}, ||dL/dx_1|| {grad}, {cell.train_seconds:.1f} s"

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
