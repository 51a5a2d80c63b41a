"""An extension costs one module: a model family and a diagnostic, defined and registered here
alone, go through train, compare, predict, the CLI, `diagnose all` and the report."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from rnnlab import api
from rnnlab.cli import main
from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rnnlab.diagnostics import REGISTRY, Diagnostic, Inputs, Result, register, registry, suite
from rnnlab.diagnostics.result import NotApplicableResult
from rnnlab.models import (
    FAMILIES,
    ModelSpec,
    Preset,
    TextClassifier,
    family,
    register_family,
    register_preset,
)
from rnnlab.models import registry as presets
from rnnlab.models.family import SCAN
from rnnlab.models.sequence import clean_lengths
from rnnlab.report.html import render
from rnnlab.tables import Table

KIND, PRESET = "toy-ema", "toy"


class ToyMovingAverage(TextClassifier):
    """embedding -> h_t = a h_{t-1} + (1 - a) tanh(W x_t), a = 0.5 -> h at the last real step
    -> linear head: a linear recurrence, the smallest family that still reads word order."""

    family = "toy moving average"
    poolings = ("last",)
    has_states = False
    reads_hidden_dim = True

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.check_spec(spec)
        self._token_embedding(spec)
        self.project = nn.Linear(spec.input_dim or spec.embed_dim, spec.hidden_dim)
        self.head = nn.Linear(spec.hidden_dim, spec.num_outputs)

    def parts(self) -> dict[str, nn.Module | None]:
        return {"embedding": self.embedding, "recurrent": self.project, "head": self.head}

    def forward_embedded(self, x: Tensor, lengths: Tensor) -> Tensor:
        lengths = clean_lengths(lengths, x.shape[1])
        inputs = torch.tanh(self.project(x))  # (B, T, H)
        state, states = torch.zeros_like(inputs[:, 0]), []
        for t in range(x.shape[1]):
            state = 0.5 * state + 0.5 * inputs[:, t]  # (B, H)
            states.append(state)
        stacked = torch.stack(states, dim=1)  # (B, T, H)
        last = stacked[torch.arange(len(lengths)), lengths.to(x.device) - 1]  # (B, H)
        return self.head(last)


@pytest.fixture
def toy_family() -> Iterator[None]:
    """The extension's whole wiring: one family declaration and one preset line."""
    register_family(KIND, display="toy EMA", group=SCAN, colour="tab:cyan")(ToyMovingAverage)
    register_preset(Preset(PRESET, "toy moving average", {"kind": KIND, "pooling": "last"}))
    yield
    FAMILIES.pop(KIND)  # leave the registries as the other tests expect them
    presets._PRESETS.pop(PRESET)


@dataclasses.dataclass(frozen=True)
class NormSettings:
    """How the toy diagnostic reads the embeddings."""

    power: float = 2.0
    """The norm of each embedding row (2: Euclidean)."""


@dataclasses.dataclass
class NormRow:
    label: str
    mean_norm: float


@dataclasses.dataclass
class NormResult(Result):
    kind = "embedding_norm"

    power: float = 2.0
    models: list[NormRow] = dataclasses.field(default_factory=list)

    def tables(self) -> list[Table]:
        rows = [[m.label, f"{m.mean_norm:.4f}"] for m in self.models]
        return [Table(f"Mean embedding norm (p = {self.power:g})", ["model", "norm"], rows)]


def embedding_norms(settings: NormSettings, inputs: Inputs) -> NormResult:
    rows = []
    for entry in inputs.entries():
        weight = entry.model.embedding.weight.detach()  # type: ignore[union-attr]  # (V, E)
        rows.append(NormRow(entry.label, float(weight.norm(p=settings.power, dim=1).mean())))
    return NormResult(settings.power, rows)


NORM = Diagnostic(
    name="embedding-norm", command=("diagnose", "embedding-norm"),
    help="mean norm of each model's embedding rows", title="Embedding norms",
    how_to_read=("How large the word vectors grew.",), settings=NormSettings,
    quick=NormSettings(), result=NormResult, run=embedding_norms,
)  # fmt: skip


@pytest.fixture
def toy_diagnostic() -> Iterator[None]:
    """The extension's whole wiring: one register call."""
    register(NORM)
    yield
    REGISTRY.remove(NORM)


def config(corpus: Path, model: str = PRESET) -> RunConfig:
    return RunConfig(
        DataConfig(dataset=str(corpus), max_len=20),
        ModelConfig(name=model, embed_dim=8, hidden_dim=8),
        TrainConfig(epochs=1, batch_size=32, lr=1e-2, progress=False, patience=None),
    )


def test_a_registered_family_is_listed_and_refused_twice(toy_family: None) -> None:
    assert family(KIND).builder is ToyMovingAverage and family(KIND).parallel
    assert ModelSpec(kind=KIND, vocab_size=10, num_classes=2).recurrent_flops_per_token == 0
    with pytest.raises(Exception, match="registered twice"):
        register_family(KIND, display="again", group=SCAN, colour="k")(ToyMovingAverage)
    with pytest.raises(Exception, match="already exists"):
        register_preset(Preset(PRESET, "again", {"kind": KIND}))


def test_an_extension_family_goes_through_every_command(
    toy_family: None,
    toy_diagnostic: None,
    sentiment_csv: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    corpus = sentiment_csv(neutral=12)  # texts of 17 tokens: long enough for every diagnostic
    compared = api.compare(config(corpus), [PRESET, "bow"], out=tmp_path, name="cmp", verbose=False)
    run_dir = compared.runs[PRESET].run_dir
    assert api.load_run(run_dir).model.spec.kind == KIND
    (prediction,) = api.predict(run_dir, "good great fun film")
    assert prediction.label in ("negative", "positive")
    assert compared.rows[0]["model"] == PRESET and compared.rows[0]["test_accuracy"] is not None

    inputs = Inputs(config(corpus), runs=[run_dir], device="cpu", dataset_given=True)
    tiny = {
        "gradient-flow": dict(split="train", seq_len=12, batch_size=2),
        "embedding-grad": dict(split="train", lengths=(4, 8), batch_size=2),
        "hidden-states": dict(split="train", per_class=1, min_len=8, max_steps=8),
        "attribution": dict(split="train", texts=2, min_len=10, max_tokens=16, n_steps=4, show=1),
        "seq-len": dict(models=(PRESET,), lengths=(8, 16), limit=60, epochs=1, seeds=1),
        "hidden-size": dict(sizes=(4, 8), max_len=16, limit=60, epochs=1, seeds=1),
        "timing": dict(lengths=(4, 8), modes=("padded",), batch_size=2, repeats=1, warmup=0),
        "padding": dict(batch_size=8),
        "synthetic": dict(lengths=(4,), models=(PRESET,), num_examples=60, epochs=1,
                          hidden_dim=4, seeds=1),
        "memory-capacity": dict(pairs=(1,), models=(PRESET,), state_size=4, vocab_size=2,
                                seeds=1, epochs=1, num_examples=30),
    }  # fmt: skip
    chosen = {
        name: dataclasses.replace(preset, **tiny.get(name, {}))
        for name, preset in suite.presets(quick=True).items()
    }
    everything = suite.run_all(inputs, tmp_path / "diagnose", settings=chosen)
    assert len(everything.parts) == len(chosen)
    for part in everything.parts:  # each ran on the toy, or says in one line why it cannot
        result = (tmp_path / "diagnose" / part.name / "result.json").read_text()
        if registry.get(part.name).reads != "data":
            assert PRESET in result or NotApplicableResult.kind in result, part.name

    norms = registry.read_result(tmp_path / "diagnose" / "embedding-norm")
    assert isinstance(norms, NormResult) and [m.label for m in norms.models] == [PRESET]
    with pytest.raises(Exception, match="registered twice"):
        register(NORM)

    # the CLI verb and its flag come from the entry and its settings' field docstrings
    out = tmp_path / "norm-cli"
    args = ["diagnose", "embedding-norm", "--run", str(run_dir), "--power", "1", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    assert "Mean embedding norm (p = 1)" in " ".join(capsys.readouterr().out.split())
    one = registry.read_result(out)
    assert isinstance(one, NormResult)  # the L1 norm of a row is at least its L2 norm
    assert one.models[0].mean_norm > norms.models[0].mean_norm > 0

    page = render([tmp_path], tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="beyond"' in page and "parallel scan" in page  # its group, from the registry
    assert PRESET in page
    assert 'id="embedding-norm"' in page and "Embedding norms" in page
