"""The run folder: writing it as training goes (start, checkpoints, finish) and reading it
back. What it holds, and each file's name, is defined in `rnnlab.layout`: config, model spec,
labels and encoder first, metrics.jsonl and checkpoint.pt as training goes, the weights,
predictions and curves at the end, and summary.json last, so a folder without it is an
unfinished run. An unfinished, interrupted or failed run is resumed with `rnnlab train --resume
DIR` (from checkpoint.pt, else from the start) or replaced with `--overwrite`.

Every file is written through `layout.manifest.write_files` and checked against the folder's
manifest before it is read (`check_files`): a damaged or edited file is one line, exit 2.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnlab.config import RunConfig
from rnnlab.data.encoded import EncodedSplits
from rnnlab.data.text import WORD_TOKENIZERS
from rnnlab.data.text_encoder import TextEncoder
from rnnlab.errors import RnnlabError, disk_error
from rnnlab.io import (
    MAX_JSON_BYTES,
    check_writable,
    dumps_json,
    read_bounded,
    read_json,
    remove_stale_temps,
)
from rnnlab.layout import (
    CHECKPOINT,
    CONFIG,
    CURVES,
    ENCODER,
    LABELS,
    LOCK,
    MANIFEST,
    METRICS,
    MODEL,
    PREDICTIONS,
    SPEC,
    SUMMARY,
)
from rnnlab.layout.manifest import check_files, remove_stale_staging, write_files
from rnnlab.models import ModelSpec, count_parameters, from_spec
from rnnlab.models.memory import check_memory, estimate_memory, parameter_shapes
from rnnlab.runs.tables import run_tables
from rnnlab.tables import html_block
from rnnlab.training.checkpoint import load_state_dict, snapshot, torch_bytes
from rnnlab.training.curves import plot_curves
from rnnlab.training.trainer import EvalResult, FitResult

REQUIRED = (SUMMARY, CONFIG, SPEC, LABELS, MODEL)
WRITTEN = (CONFIG, SPEC, LABELS, METRICS, MODEL, SUMMARY, CURVES, PREDICTIONS, CHECKPOINT, MANIFEST)
"""The files rnnlab writes atomically into a run folder: opening the folder removes the
temporary files (`.<file>.XXXXXXXX.tmp`) that a killed write of one of them left."""
RUN_MARKERS = (CONFIG, SUMMARY, CHECKPOINT, SPEC)
"""Files only an rnnlab run folder holds: --overwrite removes a folder only if it has one."""
MAX_NAME = 120
"""Longest run name: file systems allow 255 bytes, and the name is a prefix of other names."""
DEFAULT_OUT = Path("runs")


# ----- creating a folder -----------------------------------------------------------------------
def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def check_name(name: str) -> None:
    """A run name is one plain folder name of reasonable length."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise RnnlabError(f"run name {name!r} is not a plain folder name; use letters, digits, -")
    if len(name.encode()) > MAX_NAME:
        raise RnnlabError(
            f"run name is {len(name.encode())} bytes long; use at most {MAX_NAME} (--name)"
        )


def check_name_free(out: Path | str | None, name: str | None) -> None:
    """Fail early (before loading data) on a bad name, an output folder that cannot be
    written, or `out/name` that already holds something."""
    root = Path(out) if out is not None else DEFAULT_OUT
    check_writable(root, flag="--out")
    if name is None:
        return
    check_name(name)
    path = root / name
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        hint = (
            "resume it with --resume, replace it with --overwrite, or pick another --name"
            if is_run_folder(path)
            else "pick another --name"
        )
        raise RnnlabError(f"{path} already exists; {hint}")


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and any((path / marker).exists() for marker in RUN_MARKERS)


def clear_run(out: Path | str | None, name: str) -> None:
    """--overwrite: remove `out/name` if it is an rnnlab run folder (refuse anything else)."""
    check_name(name)
    path = (Path(out) if out is not None else DEFAULT_OUT) / name
    if not path.exists():
        return
    if not is_run_folder(path):
        raise RnnlabError(
            f"{path} exists and is not an rnnlab run folder; --overwrite only replaces run "
            "folders, pick another --name"
        )
    with lock_run(path):
        shutil.rmtree(path)


@contextmanager
def lock_run(run_dir: Path) -> Iterator[None]:
    """Hold the folder's lock: a second process training into it fails at once, in one line."""
    try:
        import fcntl  # POSIX only; elsewhere runs are not locked
    except ImportError:
        yield
        return
    path = Path(run_dir) / LOCK
    try:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise disk_error(exc, fix=COPY_TO_RESUME) or RnnlabError(
            f"cannot lock {run_dir} ({exc.strerror or exc}); {COPY_TO_RESUME}"
        ) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RnnlabError(
                f"{run_dir} is being trained by another process; wait for it or pick another --name"
            ) from None
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # the folder keeps no trace of the lock
            fcntl.flock(handle, fcntl.LOCK_UN)


def new_run_dir(out: Path | str | None, name: str | None, *, default: str = "run") -> Path:
    """Create `out/name` (out defaults to ./runs, name to `<timestamp>-<default>`).

    A given name that already holds files is an error (nothing is overwritten); a generated
    name gets a numeric suffix instead.
    """
    root = Path(out) if out is not None else DEFAULT_OUT
    if name is not None:
        check_name_free(root, name)
        path = root / name
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RnnlabError(
                f"cannot create {path} ({exc.strerror or exc}); choose another --out"
            ) from None
        return path
    base = f"{timestamp()}-{default}"
    for i in range(1, 1000):
        path = root / (base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise RnnlabError(
                f"cannot create {path} ({exc.strerror or exc}); choose another --out"
            ) from None
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
    """Write what is known before training: config, model spec, labels and the encoder. The
    temporary files and staging folders of writes that a kill interrupted (SIGKILL, a power
    cut) go first: the caller holds the folder's lock, so no live write owns them."""
    run_dir = Path(run_dir)
    remove_stale_temps(run_dir, WRITTEN)
    remove_stale_staging(run_dir)
    for stale in run_dir.glob(".encoder-*"):  # left by rnnlab before the manifest
        shutil.rmtree(stale, ignore_errors=True)
    encoder = splits.encoder
    write_files(
        run_dir,
        {
            CONFIG: config.save_yaml,
            SPEC: json_bytes(model.spec.to_dict()),  # type: ignore[union-attr, operator]
            LABELS: json_bytes(list(splits.label_names)),
            **({ENCODER: encoder.save} if encoder is not None else {}),
        },
    )


def json_bytes(obj: Any) -> bytes:
    """The bytes `io.write_json_atomic` writes for obj."""
    return (dumps_json(obj) + "\n").encode("utf-8")


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
            "parameters": count_parameters(model),
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
        "dataset": {
            "dataset": config.data.dataset,
            **dataset_summary(splits),
            **({"tokenizer": splits.encoder.tokenizer} if splits.encoder is not None else {}),
        },
        "encoder": ENCODER if splits.encoder is not None else None,
        "versions": library_versions(),
    }


def finish_run(
    run_dir: Path, model: torch.nn.Module, summary: dict[str, Any], test: EvalResult | None = None
) -> None:
    """Save the weights, the test predictions, the learning curves and (last) summary.json, in
    one transaction of the manifest (summary.json renamed into place last)."""
    run_dir = Path(run_dir)
    files: dict[str, bytes | Callable[[Path], object]] = {MODEL: torch_bytes(snapshot(model))}
    if test is not None and test.task == "classification":
        files[PREDICTIONS] = json_bytes(
            {
                "split": "test",
                "labels": test.labels.tolist(),
                "predictions": test.predictions.tolist(),
            }
        )
    history = read_metrics(run_dir)
    if history:
        title = summary.get("name", run_dir.name)
        files[CURVES] = lambda path: plot_curves(history, path, title=title)
    files[SUMMARY] = json_bytes(summary)
    write_files(run_dir, files)


def reopen_run(run_dir: Path) -> None:
    """A run about to be resumed reads as unfinished again: its old summary, weights and curves
    go (the checkpoint and the files start_run writes stay)."""
    write_files(run_dir, {SUMMARY: None, MODEL: None, CURVES: None})


COPY_TO_RESUME = "copy the run folder somewhere writable and resume the copy"
RESTORE = "restore the folder from a copy of the run, or train the run again"
"""What to do about a finished run's damaged file."""
RESTORE_TO_RESUME = "resume from a copy of the run, or start over with --overwrite"
"""What to do about a damaged file of a run to resume."""
RESUME_READS = (SUMMARY, CONFIG, LABELS, ENCODER, CHECKPOINT)
"""summary.json is checked when present: a folder without it is unfinished (the resume writes
it), whether a kill or a hand removed it."""
LOAD_READS = (SUMMARY, CONFIG, SPEC, LABELS, ENCODER, MODEL)
REPORT_READS = (SUMMARY, CONFIG, SPEC, METRICS, CURVES)


def check_report_reads(run_dir: Path) -> None:
    """The files of a finished run the report reads, checked against its manifest."""
    check_files(run_dir, REPORT_READS, fix=RESTORE)


def check_resumable(run_dir: Path | str) -> Path:
    """The folder of a run that can be resumed: unfinished, interrupted or failed, in a folder
    this process can write (checked before any data is loaded; its lock file too)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RnnlabError(
            f"run folder {run_dir} does not exist; give the folder `rnnlab train` made"
        )
    if not (run_dir / CONFIG).is_file():
        raise RnnlabError(f"{run_dir} has no {CONFIG}; it is not a run folder to resume")
    reads = RESUME_READS if (run_dir / SUMMARY).exists() else RESUME_READS[1:]
    check_files(run_dir, reads, fix=RESTORE_TO_RESUME)
    if (run_dir / SUMMARY).is_file():
        status = read_summary(run_dir).get("status")
        if status == "completed":
            raise RnnlabError(
                f"{run_dir} is a completed run; nothing to resume (--overwrite trains it again)"
            )
    check_writable(run_dir, flag="--resume", fix=COPY_TO_RESUME)
    lock = run_dir / LOCK
    if lock.exists() and not os.access(lock, os.W_OK):
        raise RnnlabError(f"cannot use {lock}: permission denied; {COPY_TO_RESUME}")
    return run_dir


def check_same_data(run_dir: Path, splits: EncodedSplits) -> None:
    """The data rebuilt to resume a run must be the data it was trained on."""
    try:
        labels = read_json(run_dir / LABELS) if (run_dir / LABELS).is_file() else None
    except (OSError, ValueError):
        raise RnnlabError(f"{run_dir / LABELS} is damaged; train the run again") from None
    if labels is not None and list(labels) != list(splits.label_names):
        raise RnnlabError(
            f"the data rebuilt for {run_dir} has labels {splits.label_names}, the run "
            f"{labels}; it cannot be resumed, train it again with --overwrite"
        )
    if (run_dir / ENCODER).is_dir() and splits.encoder is not None:
        saved = load_encoder(run_dir, fix=RESTORE_TO_RESUME)
        if list(saved.itos) != list(splits.encoder.itos):
            raise RnnlabError(
                f"the data rebuilt for {run_dir} has another vocabulary than the run; it cannot "
                "be resumed, train it again with --overwrite"
            )


def mark_failed(run_dir: Path, name: str, message: str) -> bool:
    """A run that raised: summary.json says so (and load_run refuses it). On a full or
    read-only disk that write may fail too: then the folder stays unfinished (no summary.json,
    which `--resume` treats the same), and this returns False instead of hiding the first
    error under a second."""
    failed = {"name": name, "status": "failed", "error": message, "versions": library_versions()}
    try:
        write_files(run_dir, {SUMMARY: json_bytes(failed)})
    except (OSError, RnnlabError):  # a full disk, or a manifest damaged under the run
        return False
    return True


# ----- reading a folder ------------------------------------------------------------------------
def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    """The records of metrics.jsonl ([] if there are none yet)."""
    path = Path(run_dir) / METRICS
    check_files(path.parent, [METRICS], fix=RESTORE)
    if not path.is_file():
        return []
    try:
        lines = read_bounded(path, MAX_JSON_BYTES).decode("utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
    except (ValueError, RecursionError):  # a device, too large, not UTF-8 or JSON, nested
        raise RnnlabError(f"{path} is damaged; {RESTORE}") from None
    if not all(isinstance(record, dict) for record in records):
        raise RnnlabError(f"{path} holds a line that is not a JSON object; {RESTORE}")
    return records


def read_predictions(run_dir: Path | str) -> tuple[list[int], list[int]] | None:
    """(labels, predictions) of the test split, or None for runs without them."""
    path = Path(run_dir) / PREDICTIONS
    check_files(path.parent, [PREDICTIONS], fix=RESTORE)
    if not path.is_file():
        return None
    try:
        data = read_json(path)
        return [int(v) for v in data["labels"]], [int(v) for v in data["predictions"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise RnnlabError(f"{path} is damaged; train the run again") from None


def read_summary(run_dir: Path | str) -> dict[str, Any]:
    run_dir = check_run_dir(run_dir, need=(SUMMARY,))
    check_files(run_dir, [SUMMARY], fix=RESTORE)
    try:
        summary = read_json(run_dir / SUMMARY)
    except (OSError, ValueError):
        raise RnnlabError(f"{run_dir / SUMMARY} is not valid JSON; train the run again") from None
    if not isinstance(summary, dict):
        raise RnnlabError(f"{run_dir / SUMMARY} is not a JSON object; train the run again")
    check_summary(summary, run_dir / SUMMARY)
    return summary


NUMBER, TEXT, OBJECT = "a number", "a string", "an object"
SUMMARY_FIELDS: dict[str, str] = {
    "name": TEXT, "status": TEXT, "monitor": TEXT, "device": TEXT, "encoder": TEXT,
    "epochs_run": NUMBER, "best_epoch": NUMBER, "best_value": NUMBER, "fit_seconds": NUMBER,
    "seconds_per_epoch": NUMBER, "train_tokens_per_s": NUMBER, "seed": NUMBER,
    "threads": NUMBER, "world_size": NUMBER,
    "model": OBJECT, "test": OBJECT, "best_val": OBJECT, "dataset": OBJECT, "versions": OBJECT,
    "model.name": TEXT, "model.kind": TEXT, "model.parameters": OBJECT,
    "test.examples": NUMBER, "test.loss": NUMBER, "test.accuracy": NUMBER,
    "test.macro_f1": NUMBER, "test.mse": NUMBER,
}  # fmt: skip
"""The summary.json fields readers rely on, with their type (any may be missing or null)."""


def check_summary(summary: dict[str, Any], where: Path) -> None:
    """One line naming the first field of SUMMARY_FIELDS with the wrong type (an edited or
    damaged file), before a reader trips over it."""
    for key, kind in SUMMARY_FIELDS.items():
        parent, _, name = key.rpartition(".")
        holder = summary.get(parent) if parent else summary
        value = holder.get(name) if isinstance(holder, dict) else None
        ok = (
            value is None
            or {
                NUMBER: isinstance(value, (int, float)) and not isinstance(value, bool),
                TEXT: isinstance(value, str),
                OBJECT: isinstance(value, dict),
            }[kind]
        )
        if not ok:
            raise RnnlabError(
                f"{where}: {key} must be {kind}, not {type(value).__name__} {str(value)[:40]!r}; "
                "the file was edited or damaged, run the step that wrote it again"
            )


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

    def _repr_html_(self) -> str:
        """A notebook shows the saved run as tables: scores and timings, per class, per epoch."""
        tables = run_tables(self.summary, read_metrics(self.run_dir))
        return html_block(f"run {self.run_dir}", tables)


def load_run(run_dir: Path | str) -> LoadedRun:
    """Rebuild model + encoder + label names from a run folder.

    The spec is checked against the weights' shapes (read memory-mapped) and the memory it
    needs before the model is built, so an edited model_spec.json cannot exhaust the machine.
    """
    run_dir = Path(run_dir)
    if run_dir.is_dir() and not (run_dir / SUMMARY).exists() and (run_dir / CONFIG).exists():
        raise RnnlabError(
            f"{run_dir} is an unfinished run (no {SUMMARY}); resume it with "
            f"`rnnlab train --resume {run_dir}`"
        )
    run_dir = check_run_dir(run_dir, need=(SUMMARY,))
    summary = read_summary(run_dir)
    if summary.get("status") == "failed":
        raise RnnlabError(
            f"{run_dir} is a failed run ({summary.get('error')}); fix the cause and resume it "
            f"(`rnnlab train --resume {run_dir}`) or train it again"
        )
    check_run_dir(run_dir, need=(*REQUIRED, *((ENCODER,) if summary.get("encoder") else ())))
    checked = check_files(run_dir, LOAD_READS, fix=RESTORE)
    config = RunConfig.load_yaml(run_dir / CONFIG)
    try:
        spec = ModelSpec.from_dict(read_json(run_dir / SPEC))
        label_names = [str(x) for x in read_json(run_dir / LABELS)]
    except (OSError, ValueError, TypeError, RnnlabError) as exc:
        reason = f" ({exc})" if isinstance(exc, RnnlabError) else ""
        raise RnnlabError(
            f"{run_dir} has a damaged {SPEC} or {LABELS}{reason}; train it again"
        ) from None
    if spec.task == "classification" and len(label_names) != spec.num_classes:
        raise RnnlabError(
            f"{run_dir / LABELS} names {len(label_names)} labels but the model has "
            f"{spec.num_classes} classes; the folder is damaged, train the run again"
        )
    weights = _weights_matching(run_dir, spec, checked=checked)
    check_memory(
        estimate_memory(spec, batch_size=256, max_len=config.data.max_len, training=False),
        torch.device("cpu"),
        None,
        fix=f"the spec in {run_dir / SPEC} is not the one the run was trained with",
    )
    model = from_spec(spec)
    model.load_state_dict(weights)
    model.eval()
    encoder = None
    if summary.get("encoder"):
        encoder = load_encoder(run_dir, fix="train the run again")
        if spec.input_dim is None and encoder.vocab_size != spec.vocab_size:
            raise RnnlabError(
                f"{run_dir / ENCODER} has {encoder.vocab_size:,} tokens but the model's embedding "
                f"has {spec.vocab_size:,} rows; the folder is damaged or edited, train the run again"
            )
    return LoadedRun(run_dir, model, encoder, label_names, config, summary)


def load_encoder(run_dir: Path, *, fix: str) -> TextEncoder:
    """The run's saved TextEncoder; a damaged one (a file that does not parse, a setting of the
    wrong type) is one line, whatever its parser says."""
    try:
        encoder = TextEncoder.load(run_dir / ENCODER)
    except RnnlabError:
        raise
    except Exception as exc:  # a damaged file: JSON, tokenizers, types
        raise RnnlabError(f"{run_dir / ENCODER} is damaged ({type(exc).__name__}); {fix}") from None
    normalizer = encoder.normalizer
    max_len = encoder.max_len
    sound = (
        isinstance(encoder.tokenizer, str)
        and (encoder.tokenizer in WORD_TOKENIZERS) == (encoder.vocab is not None)
        and all(isinstance(v, bool) for v in vars(normalizer).values())
        and (max_len is None or (type(max_len) is int and max_len > 0))
        and encoder.truncate in ("head", "tail")
    )
    if not sound:
        raise RnnlabError(f"{run_dir / ENCODER} has a setting of the wrong type; {fix}")
    return encoder


def check_checkpoint_fits(run_dir: Path, checkpoint: Any, model: torch.nn.Module) -> None:
    """Before resuming: the checkpoint's weights must have the names and shapes of the model
    that config.yaml builds (an edited config.yaml would otherwise fail deep inside torch)."""
    saved = {name: tuple(t.shape) for name, t in checkpoint.model.items()}
    built = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    if saved != built:
        differ = sorted(n for n in set(saved) | set(built) if saved.get(n) != built.get(n))
        raise RnnlabError(
            f"{run_dir / CHECKPOINT} holds another model than {run_dir / CONFIG} describes "
            f"(e.g. {differ[0]}); undo the edit of {CONFIG}, or start over with --overwrite"
        )


def _weights_matching(run_dir: Path, spec: ModelSpec, *, checked: bool) -> dict[str, torch.Tensor]:
    """model.pt's tensors (memory-mapped), refused unless names and shapes are the spec's
    (`checked`: the bytes matched the manifest, so its CRC-32 pass is skipped)."""
    weights = load_state_dict(run_dir / MODEL, mmap=True, checked=checked)
    expected = parameter_shapes(spec)
    found = {name: tuple(t.shape) for name, t in weights.items()}
    if found != {name: tuple(shape) for name, shape in expected.items()}:
        differ = sorted(
            n for n in set(found) | set(expected) if found.get(n) != tuple(expected.get(n, ()))
        )
        raise RnnlabError(
            f"{run_dir / MODEL} does not match {SPEC} (e.g. {differ[0]}); the folder is damaged "
            "or edited, train the run again"
        )
    return weights
