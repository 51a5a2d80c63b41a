"""The run folder: what is written where, and how to read it back.

```
runs/<name>/
  config.yaml       the resolved RunConfig
  model_spec.json   ModelSpec.to_dict(): rebuilds the model
  labels.json       class names in id order ([] for regression)
  encoder/          the TextEncoder (absent for synthetic runs)
  metrics.jsonl     one JSON object per epoch, rewritten as training goes
  model.pt          state_dict of the best epoch (torch.load(..., weights_only=True))
  summary.json      status, test metrics, timings, parameters, versions; written last
  curves.png        learning curves
```
Every file is written atomically; summary.json is written last, so a folder without it is an
unfinished run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnlab.config import RunConfig
from rnnlab.data.encoded import EncodedSplits
from rnnlab.data.text_encoder import TextEncoder
from rnnlab.errors import RnnlabError
from rnnlab.io import read_json, write_json_atomic
from rnnlab.models import RecurrentClassifier, count_parameters
from rnnlab.training.checkpoint import load_state_dict, save_state_dict
from rnnlab.training.curves import plot_curves
from rnnlab.training.trainer import EvalResult, FitResult

CONFIG = "config.yaml"
SPEC = "model_spec.json"
LABELS = "labels.json"
ENCODER = "encoder"
METRICS = "metrics.jsonl"
MODEL = "model.pt"
SUMMARY = "summary.json"
CURVES = "curves.png"
REQUIRED = (SUMMARY, CONFIG, SPEC, LABELS, MODEL)
DEFAULT_OUT = Path("runs")


# ----- creating a folder -----------------------------------------------------------------------
def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def check_name_free(out: Path | str | None, name: str | None) -> None:
    """Fail early (before loading data) when `out/name` already holds a run."""
    if name is None:
        return
    path = (Path(out) if out is not None else DEFAULT_OUT) / name
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise RnnlabError(f"{path} already exists; pick another --name or remove that folder")


def new_run_dir(out: Path | str | None, name: str | None, *, default: str = "run") -> Path:
    """Create `out/name` (out defaults to ./runs, name to `<timestamp>-<default>`).

    A given name that already holds files is an error (nothing is overwritten); a generated
    name gets a numeric suffix instead.
    """
    root = Path(out) if out is not None else DEFAULT_OUT
    if name is not None:
        if not name or "/" in name or name in (".", ".."):
            raise RnnlabError(
                f"run name {name!r} is not a plain folder name; use letters, digits, -"
            )
        check_name_free(root, name)
        path = root / name
        path.mkdir(parents=True, exist_ok=True)
        return path
    base = f"{timestamp()}-{default}"
    for i in range(1, 1000):
        path = root / (base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise RnnlabError(f"could not create a fresh run folder under {root}; pass --name")


def dataset_slug(config: RunConfig) -> str:
    """`imdb`, `reviews` (for data/reviews.csv), `synthetic-parity`."""
    dataset = config.data.dataset
    dataset = Path(dataset).stem if "/" in dataset or "." in dataset else dataset
    return dataset.replace(":", "-")


def default_run_name(config: RunConfig) -> str:
    return f"{config.model.name}-{dataset_slug(config)}"


def start_run(
    run_dir: Path, config: RunConfig, splits: EncodedSplits, model: torch.nn.Module
) -> None:
    """Write what is known before training: config, model spec, labels and the encoder."""
    run_dir = Path(run_dir)
    config.save_yaml(run_dir / CONFIG)
    write_json_atomic(run_dir / SPEC, model.spec.to_dict())  # type: ignore[union-attr, operator]
    write_json_atomic(run_dir / LABELS, list(splits.label_names))
    if splits.encoder is not None:
        save_encoder(run_dir / ENCODER, splits.encoder)


def save_encoder(path: Path, encoder: Any) -> None:
    """encoder.save() into a temporary folder, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=".encoder-", dir=path.parent))
    try:
        encoder.save(tmp)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ----- finishing a run -------------------------------------------------------------------------
def library_versions() -> dict[str, str]:
    try:
        rnnlab_version = version("rnnlab")
    except PackageNotFoundError:
        rnnlab_version = "unknown"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "rnnlab": rnnlab_version,
    }


def dataset_summary(splits: EncodedSplits) -> dict[str, Any]:
    return {
        **splits.info,
        "task": splits.task,
        "label_names": list(splits.label_names),
        "num_classes": splits.num_classes,
        "vocab_size": splits.vocab_size,
        "input_dim": splits.input_dim,
        "sizes": {name: len(splits.split(name)) for name in ("train", "val", "test")},
        "train_tokens": int(splits.train.lengths.sum()),
    }


def build_summary(
    *,
    config: RunConfig,
    splits: EncodedSplits,
    model: torch.nn.Module,
    fit: FitResult,
    test: EvalResult | None,
    name: str,
) -> dict[str, Any]:
    """Everything summary.json holds (JSON-ready)."""
    best = next((r for r in fit.history if r["epoch"] == fit.best_epoch), None)
    return {
        "name": name,
        "status": fit.status,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {
            "name": config.model.name,
            "kind": model.spec.kind,  # type: ignore[union-attr]
            "parameters": count_parameters(model),  # type: ignore[arg-type]
            "embedding_coverage": getattr(model, "embedding_coverage", None),
        },
        "test": test.to_dict(splits.label_names) if test is not None else None,
        "best_val": {k: v for k, v in best.items() if k.startswith("val_")} if best else None,
        **fit.to_dict(),
        "seed": config.train.seed,
        "deterministic": config.train.deterministic,
        "threads": torch.get_num_threads()
        if config.train.threads is None
        else config.train.threads,
        "dataset": {"dataset": config.data.dataset, **dataset_summary(splits)},
        "encoder": ENCODER if splits.encoder is not None else None,
        "versions": library_versions(),
    }


def finish_run(run_dir: Path, model: torch.nn.Module, summary: dict[str, Any]) -> None:
    """Save the weights, the learning curves and (last) summary.json."""
    run_dir = Path(run_dir)
    save_state_dict(run_dir / MODEL, model)
    history = read_metrics(run_dir)
    if history:
        plot_curves(history, run_dir / CURVES, title=summary.get("name", run_dir.name))
    write_json_atomic(run_dir / SUMMARY, summary)


def mark_failed(run_dir: Path, name: str, message: str) -> None:
    """A run that raised: summary.json says so (and load_run refuses it)."""
    write_json_atomic(
        Path(run_dir) / SUMMARY,
        {"name": name, "status": "failed", "error": message, "versions": library_versions()},
    )


# ----- reading a folder ------------------------------------------------------------------------
def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    """The records of metrics.jsonl ([] if there are none yet)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def read_summary(run_dir: Path | str) -> dict[str, Any]:
    run_dir = check_run_dir(run_dir, need=(SUMMARY,))
    try:
        summary = read_json(run_dir / SUMMARY)
    except (OSError, ValueError):
        raise RnnlabError(f"{run_dir / SUMMARY} is not valid JSON; train the run again") from None
    if not isinstance(summary, dict):
        raise RnnlabError(f"{run_dir / SUMMARY} is not a JSON object; train the run again")
    return summary


def check_run_dir(run_dir: Path | str, need: tuple[str, ...] = REQUIRED) -> Path:
    """The folder as a Path, or RnnlabError naming what is missing."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RnnlabError(
            f"run folder {run_dir} does not exist; give the folder `rnnlab train` made"
        )
    if not run_dir.is_dir():
        raise RnnlabError(f"{run_dir} is not a folder; give the run folder `rnnlab train` made")
    for file in need:
        if not (run_dir / file).exists():
            hint = "the run did not finish" if file == SUMMARY else "the folder is incomplete"
            raise RnnlabError(f"{run_dir} has no {file} ({hint}); train it again")
    return run_dir


@dataclass
class LoadedRun:
    """A saved run rebuilt from its folder alone."""

    run_dir: Path
    model: torch.nn.Module
    """The model with the saved weights, on the CPU, in eval mode."""
    encoder: Any
    """The TextEncoder (None for synthetic runs)."""
    label_names: list[str]
    config: RunConfig
    summary: dict[str, Any]

    @property
    def task(self) -> str:
        return str(self.model.spec.task)  # type: ignore[union-attr]


def load_run(run_dir: Path | str) -> LoadedRun:
    """Rebuild model + encoder + label names from a run folder."""
    run_dir = check_run_dir(run_dir, need=(SUMMARY,))
    summary = read_summary(run_dir)
    if summary.get("status") == "failed":
        raise RnnlabError(f"{run_dir} is a failed run ({summary.get('error')}); train it again")
    check_run_dir(run_dir)
    config = RunConfig.load_yaml(run_dir / CONFIG)
    try:
        model = RecurrentClassifier.from_spec(read_json(run_dir / SPEC))
        label_names = [str(x) for x in read_json(run_dir / LABELS)]
    except (OSError, ValueError, TypeError):
        raise RnnlabError(f"{run_dir} has a damaged {SPEC} or {LABELS}; train it again") from None
    try:
        model.load_state_dict(load_state_dict(run_dir / MODEL))
    except RuntimeError:
        raise RnnlabError(f"{run_dir / MODEL} does not match {SPEC}; train the run again") from None
    model.eval()
    encoder = None
    if summary.get("encoder"):
        check_run_dir(run_dir, need=(ENCODER,))
        encoder = TextEncoder.load(run_dir / ENCODER)
    return LoadedRun(run_dir, model, encoder, label_names, config, summary)
