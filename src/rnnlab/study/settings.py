"""The study's settings: the compared models' training, and one Settings per diagnostic.

The quick and full presets of every diagnostic are defined once, in its own module (`QUICK`
and the Settings defaults); the study only picks one of the two and adds its training settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig, check_seed
from rnnlab.diagnostics import registry, suite
from rnnlab.errors import RnnlabError
from rnnlab.runs import DEFAULT_OUT
from rnnlab.training import tensorboard


@dataclass(frozen=True)
class StudySettings:
    """Every knob of the study; `study_settings()` gives the quick and the full presets."""

    dataset: str = "imdb"
    quick: bool = False
    seed: int = 0
    seeds: int = 3
    """Seeds of every compared model (seed, seed + 1, ...; folders `<model>-seed<S>`, as
    `rnnlab compare --seeds`): a difference is a finding only under the seed rule
    (`runs.compare.seed_rule`)."""
    device: str = "auto"
    models: tuple[str, ...] = ("rnn", "lstm", "gru", "bow", "mingru", "transformer")
    """The models compared (each with `seeds` seeds), diagnosed after training (the first seed's
    run), and trained on the synthetic task: the notebooks' three recurrent cells and, beyond
    recurrence, a bag of n-grams, a parallel-scan recurrence and a small Transformer."""
    limit: int | None = None
    """Training examples of the compared models (None: all)."""
    max_len: int = 400
    truncate: str = "tail"
    """Keep the end of long reviews: the verdict usually sits there, and the last-step models
    read it last (the notebooks kept the head)."""
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    embed_dim: int | None = None
    hidden_dim: int | None = None
    threads: int | None = None
    """CPU threads for PyTorch while the study runs (None: PyTorch's default)."""
    tensorboard: bool = False
    """TensorBoard event files for the compared models' training (`compare/<run>/tensorboard/`)
    and their gradient-flow curves. An output option: it changes no result, so it is not part
    of the settings a resumed study must match (not in study.json)."""
    tensorboard_every: int = 50
    """With `tensorboard`: the step scalars every this many optimizer steps."""
    diagnostics: Mapping[str, Any] = field(default_factory=lambda: suite.presets(quick=False))
    """Diagnostic name -> its Settings."""

    def __post_init__(self) -> None:
        check_seed(self.seed, "--seed")
        if self.seeds < 1:
            raise RnnlabError(f"seeds must be at least 1 (got {self.seeds}); e.g. --seeds 3")

    @property
    def seed_list(self) -> list[int]:
        return [self.seed + k for k in range(self.seeds)]

    @property
    def expected(self) -> str:
        """The expected duration, said up front."""
        training = self.epochs * len(self.models) * self.seeds * TRAIN_SECONDS_PER_EPOCH
        training *= self.max_len / 150
        seconds = training * (self.limit or 19_922) / 19_922 + suite.estimate_seconds(
            self.diagnostics, len(self.models)
        )
        return suite.describe_seconds(seconds)

    def run_config(self) -> RunConfig:
        """The compared models' configuration (and the sweeps' base settings)."""
        return RunConfig(
            data=DataConfig(
                dataset=self.dataset,
                max_len=self.max_len,
                truncate=self.truncate,  # type: ignore[arg-type]
                limit=self.limit,
                seed=self.seed,
            ),
            model=ModelConfig(embed_dim=self.embed_dim, hidden_dim=self.hidden_dim),
            train=TrainConfig(
                epochs=self.epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                seed=self.seed,
                device=self.device,
                threads=self.threads,
                progress=False,
                tensorboard=self.tensorboard,
                tensorboard_every=self.tensorboard_every,
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        out = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()
            if k not in ("diagnostics", *OUTPUT_OPTIONS)
        }
        out["diagnostics"] = {
            name: {
                k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(s).items()
            }
            for name, s in self.diagnostics.items()
        }
        return out


OUTPUT_OPTIONS = ("tensorboard", "tensorboard_every")
"""Fields that change what is written besides the results, not the results themselves."""

TRAIN_SECONDS_PER_EPOCH = 12.8
"""One epoch of one compared model with one seed, on all 19,922 training reviews cut to 150
tokens, with its evaluation, 2 cores; `expected` multiplies it by epochs, models and seeds.
Measured on the slower of the project's machines (`make demo` on the 2-core AMD EPYC,
2026-12-07: 2 epochs of rnn, lstm, gru, bow and mingru took 18, 44, 35, 3 and 27 s per seed;
the Intel Xeon took about 0.6 times that on 2026-12-01)."""

QUICK_TRAINING: dict[str, Any] = dict(
    limit=8_000,  # of the 19,922 training reviews: 3 seeds of each model fit the demo's budget
    max_len=150,
    epochs=2,  # the gated cells' best validation epoch at lr 3e-3 (the third overfits)
    batch_size=64,
    lr=3e-3,
    models=("rnn", "lstm", "gru", "bow", "mingru"),
)


def study_settings(
    dataset: str = "imdb",
    *,
    quick: bool = False,
    device: str = "auto",
    seed: int = 0,
    diagnostics: Mapping[str, Any] | None = None,
    **changes: Any,
) -> StudySettings:
    """The quick or the full preset for `dataset`. `changes` override training fields;
    `diagnostics` maps a diagnostic name to a Settings value or to a dict of field changes."""
    chosen = suite.presets(quick=quick)
    for name, value in (diagnostics or {}).items():
        entry = registry.get(name)
        if isinstance(value, Mapping):
            try:
                value = dataclasses.replace(chosen[entry.name], **value)
            except TypeError as exc:
                raise RnnlabError(f"unknown {entry.name} setting ({exc})") from None
        chosen[entry.name] = value
    base: dict[str, Any] = dict(QUICK_TRAINING) if quick else {}
    base.update(dataset=dataset, quick=quick, device=device, seed=seed, diagnostics=chosen)
    base.update(changes)
    models = tuple(base.get("models", StudySettings.models))
    preset = suite.presets(quick=quick)["synthetic"]
    if chosen["synthetic"].models == preset.models:  # not chosen by hand: the study's models
        chosen["synthetic"] = dataclasses.replace(chosen["synthetic"], models=models)
    if base.get("threads") is not None and base["threads"] < 1:
        raise RnnlabError(f"threads must be at least 1 (got {base['threads']})")
    if base.get("tensorboard"):  # before the study makes any folder
        tensorboard.check_available()
    try:
        return StudySettings(**base)
    except TypeError as exc:
        raise RnnlabError(
            f"unknown study setting ({exc}); see rnnlab.study.StudySettings"
        ) from None


def default_out(dataset: str, *, quick: bool) -> Path:
    slug = Path(dataset).stem if "/" in dataset or "." in dataset else dataset
    return DEFAULT_OUT / f"study-{slug.replace(':', '-')}{'-quick' if quick else ''}"
