"""Diagnostics that show, on real text, why vanilla RNNs struggle and gated ones do not.

Each diagnostic is one module with a frozen `Settings` dataclass (typed, documented fields;
its defaults are the full preset, `QUICK` the quick one), a computation, its `Result` (tables,
figures with captions, save/load) and a registry entry `DIAGNOSTIC`; `registry.REGISTRY` lists
them all, and the CLI, `diagnose all`, the study and the report are built from it:

| name           | CLI                           | result kind     |
|----------------|-------------------------------|-----------------|
| parameters     | rnnlab diagnose parameters    | parameters      |
| gradient-flow  | rnnlab diagnose gradient-flow | gradient_flow   |
| embedding-grad | rnnlab diagnose embedding-grad| embedding_grad  |
| hidden-states  | rnnlab diagnose hidden-states | hidden_states   |
| attribution    | rnnlab diagnose attribution   | attribution     |
| seq-len        | rnnlab sweep seq-len          | seq_len         |
| hidden-size    | rnnlab sweep hidden           | hidden_size     |
| timing         | rnnlab bench timing           | timing          |
| padding        | rnnlab diagnose padding       | padding         |
| synthetic      | rnnlab synthetic TASK         | synthetic       |
| memory-capacity| rnnlab diagnose memory-capacity | memory_capacity |

From Python:

    from rnnlab.config import DataConfig, RunConfig
    from rnnlab.diagnostics import Inputs, registry, suite
    inputs = Inputs(RunConfig(data=DataConfig(dataset="imdb")), models=["rnn", "lstm"])
    entry = registry.get("gradient-flow")
    result = suite.run_one(entry, entry.settings(seq_len=100), inputs)
    result.save("runs/gradient-flow")     # result.json + PNGs; result.figures()[0].draw() shows one
"""

from rnnlab.diagnostics import registry, suite
from rnnlab.diagnostics.entry import Diagnostic
from rnnlab.diagnostics.inputs import Inputs, ModelEntry, fresh_models, run_models
from rnnlab.diagnostics.registry import REGISTRY, read_result
from rnnlab.diagnostics.result import FigureSpec, Result

__all__ = [
    "REGISTRY",
    "Diagnostic",
    "FigureSpec",
    "Inputs",
    "ModelEntry",
    "Result",
    "fresh_models",
    "read_result",
    "registry",
    "run_models",
    "suite",
]
