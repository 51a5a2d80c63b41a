"""`rnnlab diagnose ...`, `rnnlab sweep ...`, `rnnlab bench timing` and `rnnlab synthetic`:
one command per registered diagnostic, its flags derived from its Settings; parse, run,
write result.json + PNGs into the --out folder, print the tables.

Every command validates its input and computes before it creates its folder; result.json is
written last and atomically, so a failed command leaves nothing behind.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path
from typing import Any

from rnnlab.cli.options import (
    add_config_option,
    add_data_options,
    add_model_options,
    add_run_options,
    run_config_from_args,
)
from rnnlab.cli.settings_flags import add_settings_flags, parse_field, settings_from_args
from rnnlab.config import RunConfig, flag_name
from rnnlab.diagnostics import REGISTRY, Diagnostic, Inputs, registry, suite
from rnnlab.diagnostics.inputs import DEFAULT_MODELS, log_to_stderr
from rnnlab.diagnostics.result import Result
from rnnlab.errors import RnnlabError
from rnnlab.layout import CONFIG
from rnnlab.runs import check_out_dir, check_run_dir, dataset_slug
from rnnlab.tables import print_tables

INTERRUPTED = 130
GROUPS = {
    "diagnose": "why vanilla RNNs struggle: gradient flow, state dynamics, padding, all",
    "sweep": "train across a setting: max sequence length or hidden size",
    "bench": "measurements: time per batch vs sequence length (serial bottleneck)",
}
ALL_ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "--seq-len": (("gradient-flow", "seq_len"),),
    "--split": (
        ("gradient-flow", "split"),
        ("embedding-grad", "split"),
        ("hidden-states", "split"),
        ("attribution", "split"),
    ),
    "--embed-lengths": (("embedding-grad", "lengths"),),
    "--min-len": (("hidden-states", "min_len"),),
    "--per-class": (("hidden-states", "per_class"),),
    "--sweep-limit": (("seq-len", "limit"), ("hidden-size", "limit")),
    "--sweep-epochs": (("seq-len", "epochs"), ("hidden-size", "epochs")),
}
"""Short flags of `diagnose all` (kept from earlier versions) -> the fields they set."""


def register(subparsers: Any) -> None:
    groups: dict[str, Any] = {}
    for entry in REGISTRY:
        group, command = entry.command
        if command is None:  # a verb of its own: rnnlab synthetic TASK
            parser = subparsers.add_parser(group, help=entry.help, description=_description(entry))
        else:
            if group not in groups:
                top = subparsers.add_parser(group, help=GROUPS[group], description=GROUPS[group])
                top.set_defaults(handler=lambda args, top=top: _usage(top))
                groups[group] = top.add_subparsers(dest=f"{group}_command", metavar=group.upper())
            parser = groups[group].add_parser(
                command,
                aliases=list(entry.aliases),
                help=entry.help,
                description=_description(entry),
            )
        _add_inputs(parser, entry)
        add_settings_flags(parser, entry.settings(), title="settings", positional=entry.positional)
        _add_output(parser, entry)
        parser.set_defaults(handler=cmd_diagnostic, entry=entry)
    _register_all(groups["diagnose"])


def _description(entry: Diagnostic) -> str:
    return f"{entry.title}: {entry.help}. Writes result.json and PNG figures into --out."


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# ----- flags -----------------------------------------------------------------------------------
def _add_inputs(parser: argparse.ArgumentParser, entry: Diagnostic) -> None:
    if entry.reads == "models":
        group = parser.add_argument_group("models")
        group.add_argument("--models", metavar="A,B,...",
                           help="comma-separated model presets, freshly initialised (default rnn,lstm,gru)")  # fmt: skip
        group.add_argument("--run", action="append", metavar="RUN_DIR",
                           help="a trained run folder instead of fresh models (repeat for several)")  # fmt: skip
        add_config_option(parser)
        add_data_options(parser)
        add_model_options(parser, model=False)
    elif entry.reads == "training":
        parser.add_argument("--run", metavar="RUN_DIR", help="start from this run's config.yaml")
        add_run_options(parser, model=False)
    elif entry.reads == "data":
        add_config_option(parser)
        add_data_options(parser)
        parser.add_argument("--run", metavar="RUN_DIR", help="take the data settings from this run")


def _add_output(parser: argparse.ArgumentParser, entry: Diagnostic | None) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--out", metavar="DIR", help="result folder (default runs/<time>-<command>-...)"
    )
    if entry is None or entry.reads != "training":  # training flags have their own
        group.add_argument("--seed", type=int, default=0, metavar="N", help="seed (default 0)")
        group.add_argument("--device", default="auto", metavar="DEV",
                           help="auto, cpu, cuda, cuda:N or mps")  # fmt: skip
    flags = (
        ["--quiet"]
        if entry is not None and entry.reads == "training"
        else ["--quiet", "--no-progress"]
    )
    group.add_argument(*flags, action="store_true", help="no progress lines on stderr")


# ----- inputs ----------------------------------------------------------------------------------
def _base_config(args: argparse.Namespace) -> RunConfig:
    run = getattr(args, "run", None)
    if isinstance(run, str):  # one run whose settings are the base (sweeps, padding)
        return run_config_from_args(args, RunConfig.load_yaml(check_run_dir(run) / CONFIG))
    return run_config_from_args(args) if hasattr(args, "data__dataset") else RunConfig()


def inputs_from_args(args: argparse.Namespace, entry: Diagnostic | None) -> Inputs:
    """The models and the base configuration the flags describe (validated, not loaded yet)."""
    config = _base_config(args)
    reads_models = entry is None or entry.reads == "models"
    seed = args.seed if hasattr(args, "seed") else config.train.seed
    device = args.device if hasattr(args, "device") else config.train.device
    return Inputs(
        config,
        models=args.models.split(",") if reads_models and args.models else None,
        runs=args.run if reads_models else None,
        dataset_given=getattr(args, "data__dataset", None) is not None,
        seed=seed,
        device=device,
        threads=getattr(args, "threads", None),
        log=None if args.quiet else log_to_stderr,
    )


def _out(args: argparse.Namespace, name: str, inputs: Inputs) -> Path:
    runs = inputs.runs or ([args.run] if isinstance(getattr(args, "run", None), str) else [])
    slug = Path(runs[0]).name if runs else dataset_slug(inputs.config)
    return check_out_dir(args.out, f"{name}-{slug}")


def _name(entry: Diagnostic, settings: Any) -> str:
    group, command = entry.command
    if command is None:
        return f"{group}-{getattr(settings, 'task', entry.name)}"
    return command if group == "diagnose" else f"{group}-{command}"


# ----- one diagnostic --------------------------------------------------------------------------
def cmd_diagnostic(args: argparse.Namespace) -> int:
    entry: Diagnostic = args.entry
    settings = settings_from_args(args, entry.settings())
    inputs = inputs_from_args(args, entry)
    if entry.command[1] is None or entry.reads == "none":  # no dataset: the folder names it
        out = check_out_dir(args.out, _name(entry, settings))
    else:
        out = _out(args, _name(entry, settings), inputs)
    if entry.check is not None:
        entry.check(settings, inputs)
    result = suite.run_one(entry, settings, inputs)
    result.save(out)
    print_result(result)
    print(f"saved {out}")
    if getattr(result, "status", "completed") == "interrupted":
        print("rnnlab: interrupted; the cells finished so far are saved", file=sys.stderr)
        return INTERRUPTED
    return 0


def print_result(result: Result) -> None:
    """The result's tables, then one line per model it does not apply to."""
    print_tables(result.tables())
    for line in result.notices():
        print(line)


# ----- diagnose all ----------------------------------------------------------------------------
def _register_all(diagnose: Any) -> None:
    parser = diagnose.add_parser(
        "all",
        help="every diagnostic, one sub-folder each (quick presets; --full for the full ones)",
        description="Every registered diagnostic into one folder, one sub-folder each. "
        "Per-diagnostic flags are --<diagnostic>-<setting>, e.g. --gradient-flow-seq-len 100.",
    )
    _add_inputs(parser, registry.get("gradient-flow"))  # models, data and model flags
    parser.add_argument("--full", action="store_true",
                        help="the full presets (the single commands' defaults) instead of the quick ones")  # fmt: skip
    parser.add_argument("--skip", default="", metavar="NAME,...",
                        help=f"diagnostics to leave out ({', '.join(e.name for e in REGISTRY)})")  # fmt: skip
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for torch (default: torch's); 1 can help on busy cores")  # fmt: skip
    add_preset_flags(parser)
    _add_output(parser, None)
    parser.set_defaults(handler=cmd_all)


def add_preset_flags(parser: argparse.ArgumentParser) -> None:
    """--<diagnostic>-<field> for every registered diagnostic, plus the short ALL_ALIASES."""
    for flag, targets in ALL_ALIASES.items():
        longer = ", ".join(flag_name(f"{name}-{field}") for name, field in targets)
        parser.add_argument(flag, dest=_alias_dest(flag), metavar="V", help=f"short for {longer}")
    for entry in REGISTRY:
        add_settings_flags(
            parser, entry.settings(), prefix=entry.name, title=f"{entry.name} settings"
        )


def _alias_dest(flag: str) -> str:
    return "alias__" + flag[2:].replace("-", "_")


def presets_from_args(args: argparse.Namespace, *, quick: bool) -> dict[str, Any]:
    """name -> Settings: the preset, then the short flags, then the --<name>-<field> flags."""
    chosen = suite.presets(quick=quick)
    for flag, targets in ALL_ALIASES.items():
        text = getattr(args, _alias_dest(flag), None)
        if text is None:
            continue
        for name, field in targets:
            try:
                value = parse_field(chosen[name], field, text)
            except argparse.ArgumentTypeError as exc:
                raise RnnlabError(f"{flag}: {exc}") from None
            chosen[name] = dataclasses.replace(chosen[name], **{field: value})
    return {name: settings_from_args(args, s, prefix=name) for name, s in chosen.items()}


def cmd_all(args: argparse.Namespace) -> int:
    settings = presets_from_args(args, quick=not args.full)
    skip = suite.check_skip([p.strip() for p in args.skip.split(",") if p.strip()])
    inputs = inputs_from_args(args, None)
    out = _out(args, "diagnose-all", inputs)
    models = len(inputs.runs or inputs.models or DEFAULT_MODELS)
    expected = suite.describe_seconds(suite.estimate_seconds(settings, models, skip))
    print(f"diagnose all into {out}: expected duration {expected}", flush=True)
    created = not out.exists()
    try:
        result = suite.run_all(
            inputs, out, settings=settings, skip=skip,
            on_part=lambda name, part: print_result(part),
        )  # fmt: skip
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    print_tables(result.tables())
    print(f"saved {out}")
    return 0
