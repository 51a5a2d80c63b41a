"""The "After gates" chapter and the memory-capacity findings, from made-up results."""

from __future__ import annotations

from pathlib import Path

from rnnlab.diagnostics.memory_capacity import CapacityCell, MemoryCapacityResult
from rnnlab.report.after_gates import after_gates_section
from rnnlab.report.collect import Collection, ResultFolder
from rnnlab.report.findings import HOLDS, NOT_SETTLED, by_id, findings


def capacity(values: dict[tuple[str, int], list[float]]) -> Collection:
    models = list(dict.fromkeys(m for m, _ in values))
    pairs = sorted({n for _, n in values})
    result = MemoryCapacityResult(
        pairs, models, [0, 1, 2], 0.125,
        {"state_size": 16, "vocab_size": 8, "epochs": 1, "num_examples": 1000},
    )  # fmt: skip
    for (model, n), accuracies in values.items():
        for seed, value in enumerate(accuracies):
            result.cells.append(
                CapacityCell(model, n, seed, value, 1000, 1, 1, 0.1, 100, "completed")
            )
    result.summarize()
    folder = ResultFolder(Path("capacity"), "memory_capacity", {}, [], None, result)
    return Collection(roots=[], results=[folder])


def test_memory_capacity_findings_follow_every_seed() -> None:
    c = capacity({
        ("gru", 1): [0.99, 0.97, 1.0], ("gru", 4): [0.5, 0.95, 0.4],
        ("transformer", 1): [1.0, 1.0, 1.0], ("transformer", 4): [0.3, 0.2, 0.25],
    })  # fmt: skip
    found = by_id(findings(c))
    assert found["memory_capacity:gru:N=1"].verdict == HOLDS
    assert found["memory_capacity:gru:N=1"].winner == "recalls"
    assert found["memory_capacity:gru:N=4"].verdict == NOT_SETTLED  # one seed of three recalls
    assert found["memory_capacity:transformer:N=4"].winner == "falls short"


def test_the_chapter_shows_each_model_with_its_state_and_recall() -> None:
    c = capacity({("lstm", 2): [0.9, 0.95, 0.92], ("transformer", 2): [1.0, 1.0, 0.99]})
    section = after_gates_section(c)
    assert section is not None and section.id == "after-gates"
    (table,) = section.tables
    rows = {row[0]: row for row in table.rows}
    assert rows["lstm"][1] == "LSTM" and rows["lstm"][2] == "1997"
    assert rows["lstm"][3] == "32"  # h and c at the diagnostic's state size 16
    assert rows["transformer"][3] == "not fixed"
    assert rows["lstm"][-1] == "92.3%" and table.columns[-1].endswith("N=2")
    assert any("lstm at N=2: recalls with each of 3 seeds" in line for line in section.lead)
    assert after_gates_section(Collection(roots=[])) is None  # nothing after gates: no chapter


def test_transformer_flops_per_token_match_torchs_count() -> None:
    """The efficiency benchmark's FLOPs for the Transformer: FlopCounterMode's matmuls, plus
    attention's Q Kᵀ and A V (2 T D multiply-adds per token and layer), which it does not count
    inside the CPU's scaled_dot_product_attention with a mask."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from rnnlab.models import create_model

    model = create_model("transformer", vocab_size=50, num_classes=2, dropout=0.0)
    steps, batch = 12, 3
    tokens = torch.randint(1, 50, (batch, steps))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(tokens, torch.full((batch,), steps))
    head = 2 * model.spec.hidden_dim * 2  # the classifier head, outside the encoder
    per_token = (counter.get_total_flops() - batch * head) / (batch * steps)
    attention = model.spec.num_layers * 2 * 2 * steps * model.spec.hidden_dim
    assert per_token + attention == model.spec.flops_per_token(steps)
