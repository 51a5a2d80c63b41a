"""Shared flag groups (data, model, train) and how they become a RunConfig.

Every flag defaults to None ("not given"), so it overrides `--config file.yaml` only when set.
Flags write into `data__*`, `model__*` and `train__*` destinations; `run_config_from_args`
collects them. A value of `OFF` sets a field to None on purpose (e.g. `--max-len none`).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig

OFF = "__off__"
"""Parsed value meaning "set this field to None" (replace() would otherwise skip None)."""

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _number_or_off(cast: type, kind: str, off_words: tuple[str, ...]) -> Any:
    """argparse type: a number (`cast`), or one of `off_words` (-> OFF)."""

    def parse(text: str) -> Any:
        if text.strip().lower() in off_words:
            return OFF
        try:
            return cast(text)
        except ValueError:
            words = " or ".join(repr(w) for w in off_words)
            raise argparse.ArgumentTypeError(f"expected {kind} or {words}, got {text!r}") from None

    return parse


def int_or_off(*off_words: str) -> Any:
    return _number_or_off(int, "an integer", off_words)


def float_or_off(*off_words: str) -> Any:
    return _number_or_off(float, "a number", off_words)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file with data/model/train sections; flags given here override it",
    )


def add_data_options(
    parser: argparse.ArgumentParser, *, dataset: bool = True, positional: bool = False
) -> None:
    group = parser.add_argument_group("data")
    dataset_help = "imdb, rotten_tomatoes, bbc_news, ag_news, synthetic:TASK or a local file"
    if positional:
        group.add_argument("data__dataset", metavar="DATASET", help=dataset_help)
    elif dataset:
        group.add_argument("--dataset", dest="data__dataset", metavar="NAME", help=dataset_help)
    group.add_argument(
        "--source", dest="data__source", choices=("auto", "bundled", "hub"), help="where to read it"
    )
    group.add_argument("--text-column", dest="data__text_column", metavar="COL")
    group.add_argument("--label-column", dest="data__label_column", metavar="COL")
    group.add_argument(
        "--tokenizer",
        dest="data__tokenizer",
        metavar="NAME",
        help="auto (default: regex, the notebooks' [a-z0-9]+, for the named datasets; unicode, "
        "word tokens of every script, for local files), regex, unicode, whitespace, wordpiece, "
        "bpe or pretrained:PATH",
    )
    group.add_argument(
        "--max-size", dest="data__max_size", type=int, metavar="N", help="vocabulary size"
    )
    group.add_argument("--min-freq", dest="data__min_freq", type=int, metavar="N")
    group.add_argument(
        "--max-len",
        dest="data__max_len",
        type=int_or_off("none"),
        metavar="N",
        help="tokens kept per text (default 400; none keeps whole texts)",
    )
    group.add_argument("--truncate", dest="data__truncate", choices=("head", "tail"))
    group.add_argument(
        "--letters-only", dest="data__letters_only", action="store_const", const=True
    )
    group.add_argument(
        "--keep-html",
        dest="data__strip_html",
        action="store_const",
        const=False,
        help="do not strip HTML tags and entities",
    )
    group.add_argument("--keep-case", dest="data__lowercase", action="store_const", const=False)
    group.add_argument(
        "--drop-empty",
        dest="data__empty",
        action="store_const",
        const="drop",
        help="drop texts with no tokens (default: they become one <unk>)",
    )
    group.add_argument(
        "--limit",
        dest="data__limit",
        type=int_or_off("none"),
        metavar="N",
        help="use at most N examples (stratified), for quick runs",
    )
    group.add_argument(
        "--data-seed", dest="data__seed", type=int, metavar="N", help="seed of the splits"
    )
    group.add_argument(
        "--encoding",
        dest="data__encoding",
        metavar="NAME",
        help="text encoding of a local file (default utf-8; e.g. latin-1)",
    )
    group.add_argument(
        "--length", dest="data__length", type=int, metavar="T", help="synthetic: sequence length"
    )
    group.add_argument(
        "--num-examples",
        dest="data__num_examples",
        type=int,
        metavar="N",
        help="synthetic: examples over all splits",
    )


def add_model_options(parser: argparse.ArgumentParser, *, model: bool = True) -> None:
    group = parser.add_argument_group("model")
    if model:
        group.add_argument(
            "--model",
            dest="model__name",
            metavar="NAME",
            help="model preset: rnn, lstm, gru, ... (rnnlab models)",
        )
    group.add_argument("--embed-dim", dest="model__embed_dim", type=int, metavar="N")
    group.add_argument("--hidden-dim", dest="model__hidden_dim", type=int, metavar="N")
    group.add_argument("--num-layers", dest="model__num_layers", type=int, metavar="N")
    group.add_argument(
        "--bidirectional", dest="model__bidirectional", action=argparse.BooleanOptionalAction
    )
    group.add_argument("--dropout", dest="model__dropout", type=float, metavar="P")
    group.add_argument(
        "--pooling",
        dest="model__pooling",
        choices=("last", "mean", "max", "first"),
        help="last step, mean or max over steps, or first (transformer: a [CLS] token)",
    )
    group.add_argument(
        "--sequence-mode",
        dest="model__sequence_mode",
        choices=("padded", "packed"),
        help="padded (fast, exact) or packed (pack_padded_sequence)",
    )
    group.add_argument(
        "--impl",
        dest="model__impl",
        choices=("torch", "scratch"),
        help="fused torch layers or the hand-written cells",
    )
    group.add_argument(
        "--embeddings",
        dest="model__embeddings",
        metavar="NAME_OR_FILE",
        help="pretrained vectors: glove-6b-50d (bundled) or a GloVe text file",
    )
    group.add_argument(
        "--freeze-embeddings",
        dest="model__freeze_embeddings",
        action=argparse.BooleanOptionalAction,
    )
    group.add_argument(
        "--gate-bias",
        dest="model__gate_bias",
        type=float,
        metavar="B",
        help="initial LSTM forget-gate / GRU update-gate bias (default: PyTorch's init)",
    )
    group.add_argument(
        "--hash-buckets",
        dest="model__hash_buckets",
        type=int,
        metavar="N",
        help="bow: hashed bigram rows (0: unigrams only)",
    )
    group.add_argument(
        "--num-heads", dest="model__num_heads", type=int, metavar="N", help="transformer: heads"
    )
    group.add_argument(
        "--positions",
        dest="model__positions",
        choices=("sinusoidal", "learned"),
        help="transformer: position vectors",
    )
    group.add_argument(
        "--binary-single-logit",
        dest="model__binary_single_logit",
        action=argparse.BooleanOptionalAction,
        help="binary tasks: one logit with BCE (as the notebooks)",
    )


def add_train_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", dest="train__epochs", type=int, metavar="N")
    group.add_argument("--batch-size", dest="train__batch_size", type=int, metavar="N")
    group.add_argument("--lr", dest="train__lr", type=float, metavar="LR", help="default 1e-3")
    group.add_argument("--optimizer", dest="train__optimizer", choices=("adam", "adamw"))
    group.add_argument("--weight-decay", dest="train__weight_decay", type=float, metavar="W")
    group.add_argument(
        "--clip-norm",
        dest="train__clip_norm",
        type=float_or_off("none", "0"),
        metavar="X",
        help="clip the gradient norm (default 1.0; none disables)",
    )
    group.add_argument(
        "--patience",
        dest="train__patience",
        type=int_or_off("none", "0"),
        metavar="N",
        help="early stopping after N epochs without improvement (none: never)",
    )
    group.add_argument(
        "--monitor",
        dest="train__monitor",
        choices=("val_accuracy", "val_macro_f1", "val_loss"),
        help="metric for early stopping and the best weights",
    )
    group.add_argument("--schedule", dest="train__schedule", choices=("none", "cosine", "plateau"))
    group.add_argument(
        "--no-bucket",
        dest="train__bucket",
        action="store_const",
        const=False,
        help="plain shuffled batches instead of length-bucketed ones",
    )
    group.add_argument("--seed", dest="train__seed", type=int, metavar="N")
    group.add_argument(
        "--deterministic", dest="train__deterministic", action=argparse.BooleanOptionalAction
    )
    group.add_argument(
        "--device", dest="train__device", metavar="DEV", help="auto, cpu, cuda, cuda:N or mps"
    )
    group.add_argument(
        "--amp",
        dest="train__amp",
        action=argparse.BooleanOptionalAction,
        help="bfloat16 autocast (CUDA only)",
    )
    group.add_argument("--threads", dest="train__threads", type=int, metavar="N")
    group.add_argument(
        "--memory-limit-gb",
        dest="train__memory_limit_gb",
        type=float,
        metavar="G",
        help="refuse a model estimated to need more (default: half the free RAM or GPU memory)",
    )
    group.add_argument(
        "--flush-denormal",
        dest="train__flush_denormal",
        action=argparse.BooleanOptionalAction,
        help="flush subnormal floats to zero on the CPU (default on; much faster on Intel)",
    )
    group.add_argument(
        "--no-progress",
        dest="train__progress",
        action="store_const",
        const=False,
        help="no live progress bar",
    )
    add_tensorboard_options(group)


def add_tensorboard_options(group: Any) -> None:
    """--tensorboard and --tensorboard-every (train, compare, study)."""
    group.add_argument(
        "--tensorboard",
        dest="train__tensorboard",
        action="store_const",
        const=True,
        help="also write TensorBoard event files to <run>/tensorboard/ (needs "
        "pip install 'rnnlab[tensorboard]')",
    )
    group.add_argument(
        "--tensorboard-every",
        dest="train__tensorboard_every",
        type=int,
        metavar="N",
        help="--tensorboard: write the step scalars every N optimizer steps (default 50)",
    )


def add_nproc_option(parser: argparse.ArgumentParser) -> None:
    """--nproc N: data-parallel training on N processes of this machine (train, compare)."""
    parser.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train data-parallel on N processes of this machine, started by torchrun "
        "(gloo on CPUs, NCCL on GPUs); --batch-size is per process, the global batch N x it",
    )


def add_run_options(parser: argparse.ArgumentParser, *, model: bool = True) -> None:
    """--config plus the data, model and train groups (what `rnnlab train` takes)."""
    add_config_option(parser)
    add_data_options(parser)
    add_model_options(parser, model=model)
    add_train_options(parser)


def section_changes(args: argparse.Namespace, section: str) -> dict[str, Any]:
    """The flags given for one section: {field: value}, OFF already turned into None."""
    prefix = f"{section}__"
    changes = {}
    for key, value in vars(args).items():
        if key.startswith(prefix) and value is not None:
            changes[key[len(prefix) :]] = None if value == OFF else value
    return changes


def data_config_from_args(args: argparse.Namespace) -> DataConfig:
    """The DataConfig defaults with every given data flag applied."""
    return dataclasses.replace(DataConfig(), **section_changes(args, "data"))


def run_config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """`base` (or --config's file, or the defaults) with every given flag applied."""
    if base is None:
        path = getattr(args, "config", None)
        base = RunConfig.load_yaml(path) if path else RunConfig()
    sections = {
        name: dataclasses.replace(getattr(base, name), **section_changes(args, name))
        for name in SECTIONS
    }
    return RunConfig(**sections)
