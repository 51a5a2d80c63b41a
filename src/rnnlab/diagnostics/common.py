"""Shared pieces of the diagnostics: result (de)serialisation, the models to diagnose, the data
they read, gradient mode, picking long-enough texts, and writing a result folder.

Every result dataclass subclasses `Result`: `to_dict()` gives JSON-ready data with a top-level
`"kind"`, `from_dict()` rebuilds it (nested dataclasses included), `save(folder)` writes the
PNG figures and then (last, atomically) `result.json`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import shutil
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab.config import DataConfig, ModelConfig
from rnnlab.data.batching import Batch, collate
from rnnlab.data.encoded import EncodedSplit, EncodedSplits
from rnnlab.errors import RnnlabError, check
from rnnlab.io import read_json, write_json_atomic

RESULT_FILE = "result.json"
DEFAULT_MODELS = ("rnn", "lstm", "gru")
R = TypeVar("R", bound="Result")


# ----- results ---------------------------------------------------------------------------------
def finite(value: float | None) -> float | None:
    """A float for JSON: NaN and infinities become None (JSON has no such numbers)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def finite_list(values: Any) -> list[float | None]:
    return [finite(v) for v in np.asarray(values, dtype=np.float64).ravel()]


@dataclass
class Table:
    """A small text table that the CLI prints with rich and the report may reuse."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


class Result:
    """Mixin for result dataclasses: JSON round trip and saving into a folder."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[R], raw: dict[str, Any]) -> R:
        check(
            isinstance(raw, dict) and raw.get("kind") == cls.kind,
            f"not a {cls.kind} result (kind {raw.get('kind') if isinstance(raw, dict) else None!r})",
        )
        return _build(cls, {k: v for k, v in raw.items() if k != "kind"})

    @classmethod
    def load(cls: type[R], path: Path | str) -> R:
        """Read a result.json (or the folder holding it)."""
        path = Path(path)
        return cls.from_dict(read_json(path / RESULT_FILE if path.is_dir() else path))

    def tables(self) -> list[Table]:
        return []

    def figures(self, folder: Path) -> list[Path]:
        """Write the PNG figures into `folder`; return their paths."""
        return []

    def save(self, folder: Path | str) -> Path:
        """PNGs first, then result.json (atomically) last. A folder this call created is removed
        again if anything fails; in an existing folder the PNGs written so far are removed."""
        folder = Path(folder)
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        try:
            written = self.figures(folder)
            write_json_atomic(folder / RESULT_FILE, self.to_dict())
        except BaseException:
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                for path in written:
                    path.unlink(missing_ok=True)
            raise
        return folder


def _build(tp: Any, value: Any) -> Any:
    """Rebuild `value` (plain JSON data) as type `tp` (dataclasses, lists, dicts, Optional)."""
    if value is None:
        return None
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = get_type_hints(tp)
        kwargs = {
            f.name: _build(hints[f.name], value[f.name])
            for f in dataclasses.fields(tp)
            if f.init and f.name in value
        }
        return tp(**kwargs)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        return _build(options[0], value) if len(options) == 1 else value
    if origin is list:
        (item,) = get_args(tp) or (Any,)
        return [_build(item, v) for v in value]
    if origin is dict:
        args = get_args(tp)
        item = args[1] if len(args) == 2 else Any
        return {k: _build(item, v) for k, v in value.items()}
    return value


# ----- the output folder -----------------------------------------------------------------------
def check_out_dir(out: Path | str | None, default_name: str) -> Path:
    """The folder a command will write (not created yet): `out`, or runs/<timestamp>-<name>.

    An existing, non-empty folder is refused up front, so no result mixes with older files.
    """
    from rnnlab.runs import DEFAULT_OUT, timestamp

    if out is None:
        base = DEFAULT_OUT / f"{timestamp()}-{default_name}"
        path, i = base, 1
        while path.exists():
            i += 1
            path = base.with_name(f"{base.name}-{i}")
        return path
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise RnnlabError(f"{path} already exists and is not empty; pick another --out")
    return path


# ----- models ----------------------------------------------------------------------------------
@dataclass
class ModelEntry:
    """One model to diagnose, with the (whole-text) data it reads."""

    label: str
    """Legend name: the preset (fresh models) or the run folder's name."""
    model: nn.Module
    splits: EncodedSplits
    source: str = "fresh"
    """`fresh` (freshly initialised) or the run folder it was loaded from."""

    @property
    def kind(self) -> str:
        return str(self.model.spec.kind)  # type: ignore[union-attr]


def parse_names(
    text: str | Sequence[str] | None, default: Sequence[str] = DEFAULT_MODELS
) -> list[str]:
    """`rnn,lstm` -> ['rnn', 'lstm'], validated against the model presets."""
    from rnnlab.models import get_preset

    if text is None:
        names = list(default)
    elif isinstance(text, str):
        names = [n.strip() for n in text.split(",") if n.strip()]
    else:
        names = [str(n).strip() for n in text]
    check(bool(names), "no models given; pass e.g. --models rnn,lstm,gru")
    for name in names:
        get_preset(name)  # raises, listing the presets
    check(len(set(names)) == len(names), f"a model is named twice in {names}; name each once")
    return names


def parse_positive_ints(text: str | Sequence[int], what: str, example: str) -> list[int]:
    """`50,100,200` -> [50, 100, 200]; every value must be a positive integer."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    values: list[int] = []
    for part in parts:
        raw = str(part).strip()
        try:
            value = int(raw)
        except ValueError:
            raise RnnlabError(
                f"{what} must be positive integers (got {raw!r}); e.g. {example}"
            ) from None
        check(value > 0, f"{what} must be positive (got {value}); e.g. {example}")
        values.append(value)
    check(bool(values), f"no {what} given; e.g. {example}")
    return sorted(set(values))


def full_length(cfg: DataConfig) -> DataConfig:
    """The same data with whole texts kept (diagnostics truncate themselves)."""
    return dataclasses.replace(cfg, max_len=None)


def load_data(cfg: DataConfig) -> EncodedSplits:
    """Encoded splits of whole texts (cached on disk)."""
    from rnnlab.data import load_splits

    return load_splits(full_length(cfg))


def fresh_models(
    names: Sequence[str],
    splits: EncodedSplits,
    *,
    seed: int = 0,
    model: ModelConfig | None = None,
) -> list[ModelEntry]:
    """Freshly initialised presets (each seeded with `seed`, so order does not matter)."""
    from rnnlab.models import create_model_from_config

    model = model or ModelConfig()
    entries = []
    for name in names:
        torch.manual_seed(seed)
        itos = list(splits.encoder.itos) if model.embeddings and splits.encoder else None
        built = create_model_from_config(
            dataclasses.replace(model, name=name, kind=None),
            vocab_size=splits.vocab_size,
            num_classes=splits.num_classes,
            input_dim=splits.input_dim,
            task=splits.task,
            itos=itos,
        )
        entries.append(ModelEntry(name, built, splits))
    return entries


def run_models(run_dirs: Sequence[Path | str], dataset: str | None = None) -> list[ModelEntry]:
    """Trained models from run folders, each with its own data (whole texts).

    Without `dataset` (or with the run's own) the run's DataConfig rebuilds the splits (from the
    cache) and the vocabulary must match the run's. Any other dataset is read whole and encoded
    with the run's saved encoder; all three splits are then that dataset's test (or only) split.
    """
    from rnnlab.runs import load_run

    loaded = [load_run(d) for d in run_dirs]  # validates every folder before any data is read
    cache: dict[str, EncodedSplits] = {}
    entries = []
    labels = [Path(r.run_dir).name for r in loaded]
    for run, label in zip(loaded, labels, strict=True):
        data = run.config.data
        if dataset is None or dataset == data.dataset:
            key = repr(full_length(data))
            if key not in cache:
                cache[key] = load_data(data)
            splits = cache[key]
            _check_same_encoder(run, splits)
        else:
            splits = _foreign_splits(run, dataset)
        if labels.count(label) > 1:
            label = str(run.run_dir)
        entries.append(ModelEntry(label, run.model, splits, str(run.run_dir)))
    return entries


def _check_same_encoder(run: Any, splits: EncodedSplits) -> None:
    saved, rebuilt = run.encoder, splits.encoder
    if saved is not None and rebuilt is not None and list(saved.itos) != list(rebuilt.itos):
        raise RnnlabError(
            f"the data rebuilt for {run.run_dir} has a different vocabulary than the run; "
            "train the run again or pass --dataset FILE to encode a file with the run's encoder"
        )
    if list(splits.label_names) != list(run.label_names):
        raise RnnlabError(
            f"the data rebuilt for {run.run_dir} has labels {splits.label_names}, the run "
            f"{run.label_names}; train the run again"
        )


def _foreign_splits(run: Any, dataset: str) -> EncodedSplits:
    """A file or dataset other than the run's, encoded whole with the run's encoder."""
    from rnnlab.api import encode_foreign_split

    data = run.config.data
    split = encode_foreign_split(
        run, dataset, data.text_column, data.label_column, data.source, whole_texts=True
    )
    return EncodedSplits(
        split, split, split, list(run.label_names), run.encoder.vocab_size, run.encoder,
        info={"dataset": dataset, "encoded_with": str(run.run_dir)},
    )  # fmt: skip


def resolve_entries(
    *,
    models: str | Sequence[str] | None,
    runs: Sequence[Path | str] | None,
    data: DataConfig,
    model: ModelConfig | None = None,
    seed: int = 0,
    dataset_given: bool = False,
) -> list[ModelEntry]:
    """Fresh presets (`models`) or trained runs (`runs`), never both."""
    if runs:
        check(models is None, "give either --models (fresh models) or --run (trained), not both")
        return run_models(runs, data.dataset if dataset_given else None)
    names = parse_names(models)
    return fresh_models(names, load_data(data), seed=seed, model=model)


def dataset_name(entries: Sequence[ModelEntry]) -> str:
    return str(entries[0].splits.info.get("dataset", "")) if entries else ""


def prepare(model: nn.Module, device: torch.device, dtype: torch.dtype | None = None) -> nn.Module:
    """A private copy of `model` on `device` (and `dtype`), so the caller's model is untouched."""
    twin = copy.deepcopy(model)
    return twin.to(device=device, dtype=dtype) if dtype is not None else twin.to(device)


@contextmanager
def gradient_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Train mode (cuDNN refuses RNN backward in eval mode) with every dropout switched off:
    nn.Dropout modules, the recurrent layer's between-layer dropout and `spec.dropout` (read by
    the layer-by-layer paths). Everything is restored on exit."""
    was_training = model.training
    saved: list[tuple[Any, str, Any]] = []

    def set_attr(obj: Any, name: str, value: Any) -> None:
        saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    try:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                set_attr(module, "p", 0.0)
            elif _is_number(getattr(module, "dropout", None)):
                set_attr(module, "dropout", 0.0)
        spec = getattr(model, "spec", None)
        if spec is not None and getattr(spec, "dropout", None):
            set_attr(model, "spec", dataclasses.replace(spec, dropout=0.0))
        model.train()
        yield model
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)
        model.train(was_training)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def resolve_device(name: str) -> torch.device:
    from rnnlab.training.device import resolve_device as resolve

    return resolve(name)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----- picking texts ---------------------------------------------------------------------------
def long_texts(
    split: EncodedSplit,
    min_len: int,
    count: int,
    *,
    seed: int = 0,
    what: str = "the split",
    option: str = "--seq-len",
) -> np.ndarray:
    """Up to `count` row indices (sorted) of texts with at least `min_len` tokens, chosen with
    `seed`. None long enough is a user error that says how many are and suggests a length."""
    lengths = split.lengths
    eligible = np.flatnonzero(lengths >= min_len)
    if len(eligible) == 0:
        ordered = np.sort(lengths)[::-1]
        longest = int(ordered[0]) if len(ordered) else 0
        suggest = int(ordered[min(count, len(ordered)) - 1]) if len(ordered) else 0
        raise RnnlabError(
            f"{what} has no text with at least {min_len} tokens (longest: {longest}); "
            f"use a smaller {option}, e.g. {option} {max(suggest, 1)} "
            f"({min(count, len(ordered))} texts are that long)"
        )
    rng = np.random.default_rng(seed)
    chosen = rng.choice(eligible, size=min(count, len(eligible)), replace=False)
    return np.sort(chosen)


def count_long(split: EncodedSplit, min_len: int) -> int:
    return int((split.lengths >= min_len).sum())


def make_batch(split: EncodedSplit, rows: np.ndarray, max_len: int | None = None) -> Batch:
    """Padded batch of `rows`, each cut to its first `max_len` steps."""
    part = split.select(rows, max_len=max_len)
    batch = collate(part, np.arange(len(part)))
    if part.features is not None and max_len is not None:  # continuous inputs: cut here
        tokens = batch.tokens[:, :max_len]  # (B, T, F)
        return Batch(tokens, batch.lengths.clamp(max=max_len), batch.labels, batch.indices)
    return batch


def sum_loss(model: nn.Module, logits: Tensor, labels: Tensor) -> Tensor:
    """Sum of the per-example losses (model.loss is a batch mean): every row's gradient is then
    that example's own loss gradient, whatever the batch size."""
    return model.loss(logits, labels) * logits.shape[0]  # type: ignore[operator]


def log(message: str, stream: Any = None) -> None:
    print(message, file=stream or sys.stderr, flush=True)


Logger = Callable[[str], None]
