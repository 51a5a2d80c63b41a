"""`rnnlab diagnose ...`, `rnnlab sweep ...` and `rnnlab bench timing`: parse, call
rnnlab.diagnostics, write result.json + PNGs into the --out folder, print a table.

Every command validates its input and computes before it creates its folder; result.json is
written last and atomically, so a failed command leaves nothing behind.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnlab.cli.options import (
    add_config_option,
    add_data_options,
    add_model_options,
    add_run_options,
    run_config_from_args,
)
from rnnlab.errors import check

MODEL_HELP = "comma-separated model presets, freshly initialised (default rnn,lstm,gru)"
RUN_HELP = "a trained run folder instead of fresh models (repeat for several)"


def register(subparsers: Any) -> None:
    diagnose = subparsers.add_parser(
        "diagnose",
        help="why vanilla RNNs struggle: gradient flow, state dynamics, padding, all",
        description="Diagnostics measured on real text; each writes result.json and PNGs.",
    )
    diagnose.set_defaults(handler=lambda args: _usage(diagnose))
    sub = diagnose.add_subparsers(dest="diagnostic", metavar="DIAGNOSTIC")

    p = sub.add_parser("gradient-flow", help="||dL/dx_t|| and ||dL/dh_t|| at every time step")
    _model_inputs(p)
    p.add_argument("--seq-len", type=int, default=200, metavar="T", help="steps (default 200)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="texts (default 32)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="float64 (default) keeps gradients below 1e-45 visible")  # fmt: skip
    _common(p, "gradient-flow")
    p.set_defaults(handler=cmd_gradient_flow)

    p = sub.add_parser("embedding-grad", help="embedding-gradient norm vs sequence length")
    _model_inputs(p)
    p.add_argument("--lengths", default="50,100,200,400", metavar="L,L,...",
                   help="truncation lengths (default 50,100,200,400)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="texts (default 32)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    _common(p, "embedding-grad")
    p.set_defaults(handler=cmd_embedding_grad)

    p = sub.add_parser("hidden-states", help="||h_t|| (and ||c_t||) over time, per label")
    _model_inputs(p)
    p.add_argument("--per-class", type=int, default=5, metavar="N", help="texts per label (5)")
    p.add_argument("--min-len", type=int, default=150, metavar="N", help="min tokens (150)")
    p.add_argument("--max-steps", type=int, default=400, metavar="N", help="steps kept (400)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    _common(p, "hidden-states")
    p.set_defaults(handler=cmd_hidden_states)

    p = sub.add_parser("padding", help="padded share: plain vs bucketed batches vs packing")
    add_config_option(p)
    add_data_options(p)
    p.add_argument("--run", metavar="RUN_DIR", help="take the data settings from this run")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="default 64")
    p.add_argument("--split", choices=("train", "val", "test"), default="train")
    _common(p, "padding")
    p.set_defaults(handler=cmd_padding)

    p = sub.add_parser("all", help="every diagnostic with modest defaults (~15 min on 2 cores)")
    _model_inputs(p)
    p.add_argument("--seq-len", type=int, metavar="T", help="gradient-flow steps (default 200)")
    p.add_argument("--split", choices=("train", "val", "test"), help="texts to read (test)")
    p.add_argument("--embed-lengths", metavar="L,L,...",
                   help="embedding-grad lengths (default 50,100,200,400)")  # fmt: skip
    p.add_argument("--min-len", type=int, metavar="N", help="hidden-states min tokens (150)")
    p.add_argument("--per-class", type=int, metavar="N", help="hidden-states texts per label (5)")
    p.add_argument("--timing-lengths", metavar="T,T,...",
                   help="timing lengths (default 25,50,100,200)")  # fmt: skip
    p.add_argument("--sweep-limit", type=int, metavar="N",
                   help="examples for the training sweeps (default 2000)")  # fmt: skip
    p.add_argument("--sweep-epochs", type=int, metavar="N", help="sweep epochs (default 2)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: torch's); 1 can help on busy cores")  # fmt: skip
    p.add_argument("--skip", default="", metavar="PART,...",
                   help="parts to leave out, e.g. seq-len,hidden-size")  # fmt: skip
    _common(p, "diagnose-all")
    p.set_defaults(handler=cmd_all)

    sweep = subparsers.add_parser(
        "sweep",
        help="train across a setting: max sequence length or hidden size",
        description="Training sweeps; accept every training flag (--epochs, --limit, ...).",
    )
    sweep.set_defaults(handler=lambda args: _usage(sweep))
    sub = sweep.add_subparsers(dest="sweep", metavar="SWEEP")
    p = sub.add_parser("seq-len", help="test accuracy and training time vs max sequence length")
    p.add_argument("--lengths", default="50,100,200,400", metavar="L,L,...")
    p.add_argument("--models", default="rnn,lstm", metavar="A,B,...", help="default rnn,lstm")
    _sweep_common(p, "sweep-seq-len")
    p.set_defaults(handler=cmd_sweep_seq_len)
    p = sub.add_parser("hidden", help="accuracy (overall and per length bucket) vs hidden size")
    p.add_argument("--sizes", default="16,32,64,128,256", metavar="H,H,...")
    p.add_argument("--models", default="lstm", metavar="A,B,...", help="default lstm")
    _sweep_common(p, "sweep-hidden")
    p.set_defaults(handler=cmd_sweep_hidden)

    bench = subparsers.add_parser(
        "bench", help="measurements: time per batch vs sequence length (serial bottleneck)"
    )
    bench.set_defaults(handler=lambda args: _usage(bench))
    sub = bench.add_subparsers(dest="bench", metavar="BENCH")
    p = sub.add_parser("timing", help="forward and forward+backward time vs sequence length")
    _model_inputs(p)
    p.add_argument("--lengths", default="100,200,400,800", metavar="T,T,...")
    p.add_argument("--modes", default="padded,packed,scratch", metavar="M,M,...",
                   help="padded (fused layer), packed (PackedSequence), scratch (hand-written)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="default 64")
    p.add_argument("--repeats", type=int, default=5, metavar="N", help="timed calls (median)")
    p.add_argument("--warmup", type=int, default=1, metavar="N", help="untimed calls first")
    p.add_argument("--vocab-size", type=int, default=20_000, metavar="N",
                   help="embedding rows of fresh models without --dataset")  # fmt: skip
    _common(p, "bench-timing")
    p.set_defaults(handler=cmd_timing)


# ----- shared flags ----------------------------------------------------------------------------
def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _model_inputs(parser: argparse.ArgumentParser) -> None:
    """--models or --run, plus the data and model flag groups."""
    group = parser.add_argument_group("models")
    group.add_argument("--models", metavar="A,B,...", help=MODEL_HELP)
    group.add_argument("--run", action="append", metavar="RUN_DIR", help=RUN_HELP)
    add_config_option(parser)
    add_data_options(parser)
    add_model_options(parser, model=False)


def _common(parser: argparse.ArgumentParser, name: str) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--out", metavar="DIR", help=f"result folder (default runs/<time>-{name}-...)"
    )
    group.add_argument("--seed", type=int, default=0, metavar="N", help="seed (default 0)")
    group.add_argument("--device", default="auto", metavar="DEV", help="auto, cpu, cuda, cuda:N")
    group.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(command_name=name)


def _sweep_common(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="repeat every cell with N seeds (--seed, --seed+1, ...): mean ± std")  # fmt: skip
    parser.add_argument("--run", metavar="RUN_DIR", help="start from this run's config.yaml")
    add_run_options(parser, model=False)
    group = parser.add_argument_group("output")
    group.add_argument(
        "--out", metavar="DIR", help=f"result folder (default runs/<time>-{name}-...)"
    )
    group.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(command_name=name)


def _logger(args: argparse.Namespace) -> Any:
    from rnnlab.diagnostics.common import log

    return None if args.quiet else log


def _positive(value: int, flag: str, example: str) -> int:
    check(value > 0, f"{flag} must be positive (got {value}); e.g. {flag} {example}")
    return value


def _slug(args: argparse.Namespace, config: Any) -> str:
    runs = getattr(args, "run", None)
    if runs:
        first = runs[0] if isinstance(runs, list) else runs
        return Path(first).name or "run"
    from rnnlab.runs import dataset_slug

    return dataset_slug(config)


def _out(args: argparse.Namespace, config: Any) -> Path:
    from rnnlab.diagnostics.common import check_out_dir

    return check_out_dir(args.out, f"{args.command_name}-{_slug(args, config)}")


def _entries(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The RunConfig from the flags and the models to diagnose (validated, data loaded)."""
    from rnnlab.diagnostics.common import parse_names, resolve_entries

    config = run_config_from_args(args)
    if not args.run:
        parse_names(args.models)  # an unknown preset fails before any data is read
    entries = resolve_entries(
        models=args.models, runs=args.run, data=config.data, model=config.model,
        seed=args.seed, dataset_given=args.data__dataset is not None,
    )  # fmt: skip
    return config, entries


def _finish(result: Any, out: Path) -> int:
    result.save(out)
    print_tables(result.tables())
    print(f"saved {out}")
    return 0


def print_tables(tables: Sequence[Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    for t in tables:
        table = Table(title=escape(t.title))
        for i, column in enumerate(t.columns):
            table.add_column(escape(column), justify="left" if i == 0 else "right")
        for row in t.rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
        for note in t.notes:
            console.print(f"[dim]{escape(note)}[/dim]")


# ----- diagnose --------------------------------------------------------------------------------
def cmd_gradient_flow(args: argparse.Namespace) -> int:
    from rnnlab.diagnostics.gradient_flow import gradient_flow

    _positive(args.seq_len, "--seq-len", "200")
    _positive(args.batch_size, "--batch-size", "32")
    config, entries = _entries(args)
    out = _out(args, config)
    result = gradient_flow(
        entries, seq_len=args.seq_len, batch_size=args.batch_size, split=args.split,
        seed=args.seed, device=args.device, dtype=args.dtype, log=_logger(args),
    )  # fmt: skip
    return _finish(result, out)


def cmd_embedding_grad(args: argparse.Namespace) -> int:
    from rnnlab.diagnostics.common import parse_positive_ints
    from rnnlab.diagnostics.embedding_grad import embedding_grad

    lengths = parse_positive_ints(args.lengths, "--lengths", "--lengths 50,100,200,400")
    _positive(args.batch_size, "--batch-size", "32")
    config, entries = _entries(args)
    out = _out(args, config)
    result = embedding_grad(
        entries, lengths=lengths, batch_size=args.batch_size, split=args.split,
        seed=args.seed, device=args.device, dtype=args.dtype, log=_logger(args),
    )  # fmt: skip
    return _finish(result, out)


def cmd_hidden_states(args: argparse.Namespace) -> int:
    from rnnlab.diagnostics.hidden_states import hidden_states

    _positive(args.per_class, "--per-class", "5")
    _positive(args.min_len, "--min-len", "150")
    _positive(args.max_steps, "--max-steps", "400")
    config, entries = _entries(args)
    out = _out(args, config)
    result = hidden_states(
        entries, per_class=args.per_class, min_len=args.min_len, max_steps=args.max_steps,
        split=args.split, seed=args.seed, device=args.device, log=_logger(args),
    )  # fmt: skip
    return _finish(result, out)


def cmd_padding(args: argparse.Namespace) -> int:
    from rnnlab.data import load_splits
    from rnnlab.diagnostics.padding import padding_waste

    _positive(args.batch_size, "--batch-size", "64")
    base = None
    if args.run:
        base = _run_config(args.run)
    config = run_config_from_args(args, base)
    out = _out(args, config)
    splits = load_splits(config.data)
    result = padding_waste(
        splits.split(args.split), batch_size=args.batch_size, max_len=config.data.max_len,
        seed=args.seed, dataset=str(splits.info.get("dataset", config.data.dataset)),
        split_name=args.split,
    )  # fmt: skip
    return _finish(result, out)


def cmd_all(args: argparse.Namespace) -> int:
    from rnnlab.diagnostics.common import parse_positive_ints
    from rnnlab.diagnostics.diagnose_all import (
        AllSettings,
        check_skip,
        estimate_seconds,
        preflight,
        run_all,
    )

    settings = AllSettings()
    if args.seq_len is not None:
        settings.seq_len = _positive(args.seq_len, "--seq-len", "200")
    if args.sweep_limit is not None:
        settings.sweep_limit = _positive(args.sweep_limit, "--sweep-limit", "2000")
    if args.sweep_epochs is not None:
        settings.sweep_epochs = _positive(args.sweep_epochs, "--sweep-epochs", "2")
    if args.split is not None:
        settings.split = args.split
    if args.embed_lengths is not None:
        settings.embed_lengths = parse_positive_ints(
            args.embed_lengths, "--embed-lengths", "--embed-lengths 50,100,200,400"
        )
    if args.timing_lengths is not None:
        settings.timing_lengths = parse_positive_ints(
            args.timing_lengths, "--timing-lengths", "--timing-lengths 50,100,200,400"
        )
    if args.min_len is not None:
        settings.min_len = _positive(args.min_len, "--min-len", "150")
    if args.per_class is not None:
        settings.per_class = _positive(args.per_class, "--per-class", "5")
    if args.threads is not None:
        _positive(args.threads, "--threads", "1")
    skip = check_skip([s.strip() for s in args.skip.split(",") if s.strip()])
    config, entries = _entries(args)
    if args.run:
        config = run_config_from_args(args, _run_config(args.run[0]))
    out = _out(args, config)
    preflight(entries, settings)
    minutes = estimate_seconds(settings, len(entries), skip=skip) / 60
    print(f"diagnose all: expected duration about {minutes:.0f} min on 2 idle CPU cores "
          f"(several times longer when other jobs keep them busy); "
          f"writing {out}", flush=True)  # fmt: skip
    created = not out.exists()
    try:
        result = run_all(
            entries, config, out, settings=settings, seed=args.seed, device=args.device,
            source="runs" if args.run else "fresh", skip=skip, threads=args.threads,
            log=_logger(args),
        )  # fmt: skip
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    for part in result.parts:
        from rnnlab.diagnostics import load_result

        print_tables(load_result(out / part.name).tables())
    print_tables(result.tables())
    print(f"saved {out}")
    return 0


def _run_config(run_dir: str) -> Any:
    from rnnlab.config import RunConfig
    from rnnlab.runs import check_run_dir

    return RunConfig.load_yaml(check_run_dir(run_dir) / "config.yaml")


# ----- sweeps ----------------------------------------------------------------------------------
def _sweep_config(args: argparse.Namespace) -> tuple[Any, list[str], list[int]]:
    from rnnlab.diagnostics.common import parse_names

    base = _run_config(args.run) if args.run else None
    config = run_config_from_args(args, base)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, progress=False))
    models = parse_names(args.models)
    _positive(args.seeds, "--seeds", "3")
    seeds = [config.train.seed + i for i in range(args.seeds)]
    return config, models, seeds


def cmd_sweep_seq_len(args: argparse.Namespace) -> int:
    from rnnlab.diagnostics.common import parse_positive_ints
    from rnnlab.diagnostics.length_sweep import length_sweep

    lengths = parse_positive_ints(args.lengths, "--lengths", "--lengths 50,100,200,400")
    config, models, seeds = _sweep_config(args)
    out = _out(args, config)
    result = length_sweep(config, models=models, lengths=lengths, seeds=seeds, log=_logger(args))
    return _finish(result, out)


def cmd_sweep_hidden(args: argparse.Namespace) -> int:
    from rnnlab.diagnostics.capacity import hidden_sweep
    from rnnlab.diagnostics.common import parse_positive_ints

    sizes = parse_positive_ints(args.sizes, "--sizes", "--sizes 16,32,64,128,256")
    config, models, seeds = _sweep_config(args)
    out = _out(args, config)
    result = hidden_sweep(config, models=models, sizes=sizes, seeds=seeds, log=_logger(args))
    return _finish(result, out)


# ----- bench -----------------------------------------------------------------------------------
def cmd_timing(args: argparse.Namespace) -> int:
    from rnnlab.diagnostics.common import parse_names, parse_positive_ints, run_models
    from rnnlab.diagnostics.timing import MODES, bench_timing

    lengths = parse_positive_ints(args.lengths, "--lengths", "--lengths 100,200,400,800")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    check(bool(modes) and not unknown,
          f"unknown mode(s) {', '.join(unknown) or '(none)'}; use {','.join(MODES)}")  # fmt: skip
    _positive(args.batch_size, "--batch-size", "64")
    _positive(args.repeats, "--repeats", "5")
    check(args.warmup >= 0, f"--warmup must not be negative (got {args.warmup})")
    _positive(args.vocab_size, "--vocab-size", "20000")
    config = run_config_from_args(args)
    if args.run:
        check(args.models is None, "give either --models (fresh models) or --run, not both")
        models = [(e.label, e.model, e.source) for e in run_models(args.run, None)]
    else:
        names = parse_names(args.models)
        models = _fresh_for_timing(names, config, args)
    out = _out(args, config)
    result = bench_timing(
        models, lengths=lengths, modes=modes, batch_size=args.batch_size, warmup=args.warmup,
        repeats=args.repeats, seed=args.seed, device=args.device, log=_logger(args),
    )  # fmt: skip
    return _finish(result, out)


def _fresh_for_timing(names: list[str], config: Any, args: argparse.Namespace) -> list[Any]:
    """Fresh presets sized for the dataset if one is given, else for --vocab-size, 2 classes."""
    import torch

    from rnnlab.models import create_model_from_config

    vocab, classes, input_dim, task = args.vocab_size, 2, None, "classification"
    if args.data__dataset is not None:
        from rnnlab.diagnostics.common import load_data

        splits = load_data(config.data)
        vocab, classes = splits.vocab_size, max(splits.num_classes, 2)
        input_dim, task = splits.input_dim, splits.task
    models = []
    for name in names:
        torch.manual_seed(args.seed)
        model_cfg = dataclasses.replace(config.model, name=name, kind=None, embeddings=None)
        model = create_model_from_config(
            model_cfg, vocab_size=vocab, num_classes=classes, input_dim=input_dim, task=task
        )
        models.append((name, model, "fresh"))
    return models
