"""Diagnostics that show, on real text, why vanilla RNNs struggle and gated ones do not.

Each diagnostic is a function returning a result dataclass (see its module docstring for the
JSON keys); `result.save(folder)` writes PNG figures and then result.json with a top-level
`"kind"`; `load_result(path)` reads any of them back:

| kind            | function                          | module          | CLI                          |
|-----------------|-----------------------------------|-----------------|------------------------------|
| gradient_flow   | gradient_flow(entries, ...)       | gradient_flow   | rnnlab diagnose gradient-flow |
| embedding_grad  | embedding_grad(entries, ...)      | embedding_grad  | rnnlab diagnose embedding-grad |
| hidden_states   | hidden_states(entries, ...)       | hidden_states   | rnnlab diagnose hidden-states |
| length_sweep    | length_sweep(config, ...)         | length_sweep    | rnnlab sweep seq-len         |
| capacity        | hidden_sweep(config, ...)         | capacity        | rnnlab sweep hidden          |
| timing          | bench_timing(models, ...)         | timing          | rnnlab bench timing          |
| padding         | padding_waste(split, ...)         | padding         | rnnlab diagnose padding      |
| parameters      | parameter_counts(entries)         | parameters      | (part of diagnose all)       |
| diagnose_all    | run_all(entries, config, out)     | diagnose_all    | rnnlab diagnose all          |

`entries` are `ModelEntry`s: `fresh_models(names, splits)` or `run_models(run_dirs)` (or
`resolve_entries(...)`, which picks one of the two), each with the whole-text data it reads.

    from rnnlab.config import DataConfig
    from rnnlab.diagnostics import gradient_flow, resolve_entries
    entries = resolve_entries(models="rnn,lstm,gru", runs=None, data=DataConfig(dataset="imdb"))
    result = gradient_flow(entries, seq_len=200)
    result.save("runs/gradient-flow")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnlab.diagnostics.capacity import CapacityResult, hidden_sweep
from rnnlab.diagnostics.common import (
    RESULT_FILE,
    ModelEntry,
    Result,
    Table,
    fresh_models,
    gradient_mode,
    resolve_entries,
    run_models,
)
from rnnlab.diagnostics.diagnose_all import AllResult, AllSettings, run_all
from rnnlab.diagnostics.embedding_grad import EmbeddingGradResult, embedding_grad
from rnnlab.diagnostics.gradient_flow import GradientFlowResult, gradient_flow, step_gradients
from rnnlab.diagnostics.hidden_states import HiddenStatesResult, hidden_states, state_norms
from rnnlab.diagnostics.length_sweep import LengthSweepResult, length_sweep
from rnnlab.diagnostics.padding import PaddingResult, padding_waste
from rnnlab.diagnostics.parameters import ParametersResult, parameter_counts
from rnnlab.diagnostics.timing import TimingResult, bench_timing
from rnnlab.errors import RnnlabError
from rnnlab.io import read_json

RESULT_TYPES: dict[str, type[Result]] = {
    cls.kind: cls
    for cls in (
        GradientFlowResult,
        EmbeddingGradResult,
        HiddenStatesResult,
        LengthSweepResult,
        CapacityResult,
        TimingResult,
        PaddingResult,
        ParametersResult,
        AllResult,
    )
}
"""kind -> result class."""


def load_result(path: Path | str) -> Any:
    """Any diagnostic's result.json (or the folder holding it), as its result dataclass."""
    path = Path(path)
    file = path / RESULT_FILE if path.is_dir() else path
    if not file.is_file():
        raise RnnlabError(f"{file} does not exist; give a folder written by rnnlab diagnose")
    try:
        raw = read_json(file)
    except ValueError:
        raise RnnlabError(f"{file} is not valid JSON; run the diagnostic again") from None
    kind = raw.get("kind") if isinstance(raw, dict) else None
    if kind not in RESULT_TYPES:
        raise RnnlabError(f"{file} has unknown kind {kind!r}; known: {', '.join(RESULT_TYPES)}")
    return RESULT_TYPES[kind].from_dict(raw)


__all__ = [
    "RESULT_TYPES",
    "AllResult",
    "AllSettings",
    "CapacityResult",
    "EmbeddingGradResult",
    "GradientFlowResult",
    "HiddenStatesResult",
    "LengthSweepResult",
    "ModelEntry",
    "PaddingResult",
    "ParametersResult",
    "Result",
    "Table",
    "TimingResult",
    "bench_timing",
    "embedding_grad",
    "fresh_models",
    "gradient_flow",
    "gradient_mode",
    "hidden_states",
    "hidden_sweep",
    "length_sweep",
    "load_result",
    "padding_waste",
    "parameter_counts",
    "resolve_entries",
    "run_all",
    "run_models",
    "state_norms",
    "step_gradients",
]
