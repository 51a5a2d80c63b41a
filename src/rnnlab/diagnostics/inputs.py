"""What a diagnostic reads: the models (fresh presets or trained runs, each with its data), the
base run configuration (data, model and training settings), seed, device and a logger."""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from rnnlab.config import DataConfig, ModelConfig, RunConfig, check_seed
from rnnlab.data import load_splits
from rnnlab.data.encoded import EncodedSplits
from rnnlab.errors import check
from rnnlab.models import build_model, get_preset
from rnnlab.runs import foreign_splits, load_run, own_splits, same_dataset
from rnnlab.training.device import resolve_device

DEFAULT_MODELS = ("rnn", "lstm", "gru")
Logger = Callable[[str], None]


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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

    @property
    def dataset(self) -> str:
        return str(self.splits.info.get("dataset", ""))

    @property
    def no_states(self) -> str | None:
        """Why the model has no per-step states to trace (None: it has, `model.trace`)."""
        if getattr(self.model, "has_states", hasattr(self.model, "trace")):
            return None
        return str(getattr(self.model, "no_states", "it has no per-step state"))


def parse_names(
    text: str | Sequence[str] | None, default: Sequence[str] = DEFAULT_MODELS
) -> list[str]:
    """`rnn,lstm` -> ['rnn', 'lstm'], validated against the model presets."""
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


def whole_texts(cfg: DataConfig) -> EncodedSplits:
    """Encoded splits of whole texts (cached on disk); diagnostics cut texts themselves."""
    return load_splits(dataclasses.replace(cfg, max_len=None))


def fresh_models(
    names: Sequence[str], splits: EncodedSplits, *, seed: int = 0, model: ModelConfig | None = None
) -> list[ModelEntry]:
    """Freshly initialised presets (each seeded with `seed`, so order does not matter)."""
    entries = []
    for name in names:
        torch.manual_seed(seed)
        entries.append(
            ModelEntry(name, build_model(model or ModelConfig(), splits, name=name), splits)
        )
    return entries


def run_models(
    run_dirs: Sequence[Path | str], dataset: str | None = None, encoding: str = "utf-8"
) -> list[ModelEntry]:
    """Trained models from run folders, each with its own data (whole texts).

    Without `dataset` (or with the run's own) the run's DataConfig rebuilds the splits (from the
    cache) and the vocabulary must match the run's. Any other dataset is read whole and encoded
    with the run's saved encoder; all three splits are then that dataset's test (or only) split.
    """
    loaded = [load_run(d) for d in run_dirs]  # validates every folder before any data is read
    cache: dict[str, EncodedSplits] = {}
    labels = [Path(r.run_dir).name for r in loaded]
    entries = []
    for run, label in zip(loaded, labels, strict=True):
        data = run.config.data
        if dataset is None or same_dataset(dataset, data.dataset):
            key = repr(dataclasses.replace(data, max_len=None))
            splits = cache.get(key) or own_splits(run, whole_texts=True)
            cache[key] = splits
        else:
            splits = foreign_splits(run, dataset, encoding)
        if labels.count(label) > 1:
            label = str(run.run_dir)
        entries.append(ModelEntry(label, run.model, splits, str(run.run_dir)))
    return entries


@dataclass
class Inputs:
    """Everything a diagnostic's `run(settings, inputs)` reads besides its own settings."""

    config: RunConfig = field(default_factory=RunConfig)
    """The data to read, model overrides for fresh models, and the sweeps' training settings."""
    models: Sequence[str] | None = None
    """Fresh presets to diagnose (None: rnn, lstm, gru); not with `runs`."""
    runs: Sequence[Path | str] | None = None
    """Trained run folders to diagnose instead of fresh models."""
    dataset_given: bool = False
    """The user named the dataset: runs read it (encoded with their own encoders) instead of
    their own data, and timing sizes fresh models for it."""
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    """CPU threads for PyTorch while the diagnostics run (None: PyTorch's default)."""
    log: Logger | None = None

    def __post_init__(self) -> None:
        check_seed(self.seed, "--seed")
        check(
            not (self.runs and self.models is not None),
            "give either --models (fresh models) or --run (trained), not both",
        )
        if not self.runs:
            parse_names(self.models)  # an unknown preset fails before any data is read

    @property
    def source(self) -> str:
        return "runs" if self.runs else "fresh"

    @functools.cached_property
    def target(self) -> torch.device:
        return resolve_device(self.device)

    def entries(self) -> list[ModelEntry]:
        """The models to diagnose, built (or loaded) once."""
        return self._entries

    @functools.cached_property
    def _entries(self) -> list[ModelEntry]:
        data = self.config.data
        if self.runs:
            dataset = data.dataset if self.dataset_given else None
            return run_models(self.runs, dataset, data.encoding)
        names = parse_names(self.models)
        return fresh_models(names, whole_texts(data), seed=self.seed, model=self.config.model)

    def say(self, message: str) -> None:
        if self.log is not None:
            self.log(message)

    def only(self, entries: Sequence[ModelEntry]) -> Inputs:
        """The same inputs with only these (already built) models."""
        copy = dataclasses.replace(self)
        copy.__dict__["_entries"] = list(entries)
        return copy
