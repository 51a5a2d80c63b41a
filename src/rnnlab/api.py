"""Plain functions for notebooks and scripts; the CLI calls exactly these.

result = rnnlab.api.train(RunConfig(...), out="runs", name="lstm-imdb")
table = rnnlab.api.compare(config, ["rnn", "lstm", "gru"])
metrics = rnnlab.api.evaluate_run("runs/lstm-imdb", split="test")
rnnlab.api.predict("runs/lstm-imdb", ["a wonderful film", "dull and far too long"])
why = rnnlab.api.explain("runs/lstm-imdb", "a wonderful film")   # token attributions
flow = rnnlab.api.diagnose("gradient-flow", models=["rnn", "lstm"], seq_len=100)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnlab import runs
from rnnlab.config import RunConfig
from rnnlab.data.encoded import EncodedSplit
from rnnlab.diagnostics import Inputs, Result, registry, suite
from rnnlab.diagnostics.explain import Explanation, explain_texts
from rnnlab.errors import RnnlabError
from rnnlab.runs import LoadedRun, check_out_dir, load_run
from rnnlab.runs.comparison import CompareResult, compare
from rnnlab.runs.job import RunResult, check_job, free_run_name, resume, train
from rnnlab.training import metrics
from rnnlab.training.device import flush_denormal, flush_wanted, resolve_device
from rnnlab.training.evaluation import EvalResult, evaluate, predict_logits

__all__ = [
    "CompareResult",
    "Explanation",
    "LoadedRun",
    "Prediction",
    "RunResult",
    "check_job",
    "compare",
    "diagnose",
    "evaluate_run",
    "explain",
    "free_run_name",
    "load_run",
    "predict",
    "resume",
    "train",
]


# ----- saved runs ------------------------------------------------------------------------------
def _loaded(run: Path | str | LoadedRun) -> LoadedRun:
    return run if isinstance(run, LoadedRun) else load_run(run)


def evaluate_run(
    run: Path | str | LoadedRun,
    *,
    split: str = "test",
    dataset: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    encoding: str = "utf-8",
    batch_size: int | None = None,
    device: str = "auto",
) -> EvalResult:
    """Metrics of a saved model on a split of its own data, or on another dataset or file.

    Without `dataset` (or with the run's own), the run's DataConfig rebuilds the split (from
    the cache). Any other dataset name or local file is read whole and encoded with the run's
    saved encoder; its label names must match the run's.
    """
    loaded = _loaded(run)
    data = loaded.config.data
    if dataset is None or runs.same_dataset(dataset, data.dataset):
        encoded = runs.own_splits(loaded).split(split)
    else:
        encoded = runs.foreign_split(loaded, dataset, text_column, label_column, encoding=encoding)
    target = resolve_device(device)
    loaded.model.to(target)
    edges = metrics.length_edges(data.max_len)
    return evaluate(loaded.model, encoded, batch_size=batch_size, device=target, length_edges=edges)


@dataclass
class Prediction:
    """The model's answer for one text."""

    text: str
    label: str | None
    """The most likely class name (None for regression)."""
    label_id: int | None
    probabilities: dict[str, float]
    """Class name -> probability ({} for regression)."""
    value: float | None = None
    """The predicted value for regression runs."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def predict(
    run: Path | str | LoadedRun, texts: str | Sequence[str], *, batch_size: int = 256
) -> list[Prediction]:
    """Label and class probabilities for each text (an empty text is an error)."""
    loaded = _loaded(run)
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise RnnlabError("no texts to predict; give a text or --file with one text per line")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            where = "the text" if len(texts) == 1 else f"text {i + 1}"
            raise RnnlabError(f"{where} is empty; give some words to classify")
    if loaded.encoder is None:
        raise RnnlabError(
            f"{loaded.run_dir} has no text encoder (synthetic inputs); it cannot read text"
        )
    split = EncodedSplit.from_sequences(
        loaded.encoder.encode_many(texts), np.zeros(len(texts), np.int64)
    )
    model = loaded.model
    logits = predict_logits(model, split, batch_size=batch_size)  # (N, C)
    with torch.no_grad():
        if loaded.task == "regression":
            values = model.predict(logits).numpy()  # type: ignore[operator]
            return [
                Prediction(t, None, None, {}, float(v)) for t, v in zip(texts, values, strict=True)
            ]
        probs = model.probabilities(logits).numpy()  # type: ignore[operator]  # (N, K)
    names = loaded.label_names
    out = []
    for text, row in zip(texts, probs, strict=True):
        best = int(row.argmax())
        out.append(
            Prediction(
                text, names[best], best, {n: float(p) for n, p in zip(names, row, strict=True)}
            )
        )
    return out


def explain(
    run: Path | str | LoadedRun,
    texts: str | Sequence[str],
    *,
    n_steps: int = 50,
    target: str | None = None,
    device: str = "cpu",
) -> list[Explanation]:
    """Prediction plus the attribution of every token toward the predicted class (or `target`):
    integrated gradients from an all-<pad> baseline (rnnlab.diagnostics.attribution)."""
    loaded = _loaded(run)
    if loaded.task == "regression":
        raise RnnlabError(
            f"{loaded.run_dir} is a regression run; explanations need a classification run"
        )
    predict(loaded, texts)  # the same checks of the texts and the encoder as predict
    with flush_denormal(flush_wanted(loaded.config.train.flush_denormal)):
        return explain_texts(
            loaded.model, loaded.encoder, loaded.label_names,
            [texts] if isinstance(texts, str) else list(texts),
            target=target, n_steps=n_steps, device=resolve_device(device),
        )  # fmt: skip


# ----- diagnostics -----------------------------------------------------------------------------
def diagnose(
    name: str,
    *,
    models: Sequence[str] | None = None,
    runs: Sequence[Path | str] | None = None,
    config: RunConfig | None = None,
    seed: int = 0,
    device: str = "auto",
    out: Path | str | None = None,
    **settings: Any,
) -> Result:
    """Run one registered diagnostic (rnnlab.diagnostics.registry) on fresh presets (`models`)
    or trained `runs`, with its full preset and `settings` changed; saved to `out` if given.

    `config` gives the data (default: bundled IMDB) and the sweeps' training settings.
    """
    entry = registry.get(name)
    try:
        chosen = entry.settings(**settings)
    except TypeError as exc:
        raise RnnlabError(f"unknown {entry.name} setting ({exc})") from None
    inputs = Inputs(
        config or RunConfig(), models=models, runs=runs, seed=seed, device=device,
        dataset_given=config is not None,
    )  # fmt: skip
    result = suite.run_one(entry, chosen, inputs)
    if out is not None:
        result.save(check_out_dir(out, entry.name))
    return result
