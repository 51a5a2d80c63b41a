"""The findings: every difference the report calls a finding, as data, under one seed rule.

`findings(collection)` is the one place they are computed, from the saved results only: the
report renders them and the study stores them in study.json (`"findings"`), so two studies can
be compared finding by finding (`compare_findings`, `rnnlab report A --compare-findings B`).

The rule (`rnnlab.runs.compare.seed_rule`, the one `rnnlab compare --seeds` uses): a
difference holds only when every seed goes the same way and the test over all the seeds
together says p < 0.05, with 3 or more seeds also with any one seed left out; otherwise it is "not settled with N seeds", and the per-seed values
show the spread.

- `compare:<a>-vs-<b>`: two compared models, McNemar's test on the same test texts over the
  seeds (each text's correctness averaged over them; compare.json's `over_seeds`);
- `seq_len:<model>`, `hidden_size:<model>`: a sweep's first against its last setting, a
  two-proportion test on the cells' counts added over the seeds;
- `synthetic:<task>:<model>:T=<n>`: a synthetic cell above chance or at chance, every seed;
- `memory_capacity:<model>:N=<pairs>`: recall of at least 90% of the queries, every seed (or
  short of it with every seed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.diagnostics.memory_capacity import RECALL_BAR, MemoryCapacityResult
from rnnlab.diagnostics.sweep_runs import seed_change
from rnnlab.diagnostics.synthetic import SyntheticResult, seeds_at_chance
from rnnlab.errors import RnnlabError
from rnnlab.formatting import is_num, pct
from rnnlab.report.collect import Collection, collect
from rnnlab.runs.compare import paired_tests, same_models, seed_leads, seeds_winner
from rnnlab.stats import describe_p, mean_std

HOLDS = "holds"
NOT_SETTLED = "not settled"
SWEEPS = {"seq_len": ("max_len", "L"), "hidden_size": ("hidden_dim", "H")}
"""Sweep result kind -> (the cell field that varies, its short name)."""


@dataclass(frozen=True)
class Finding:
    """One claim of the report, tested seed by seed."""

    id: str
    """Stable across studies: what is compared, never the outcome (`compare:gru-vs-rnn`)."""
    claim: str
    """What is tested, in words."""
    verdict: str
    """`holds` (under `seed_rule`) or
    `not settled`."""
    winner: str | None
    """When it holds: the winning model, or the direction ("falls", "above chance")."""
    seeds: list[int | None]
    p_values: list[float | None]
    """One per seed (None where the rule is a margin, not a test: the synthetic cells)."""
    values: dict[str, list[float | None]] = field(default_factory=dict)
    """The per-seed numbers behind it (test accuracies), by model or setting."""
    reading: str = ""
    """The sentence the report shows."""
    p_value: float | None = None
    """The test over all the seeds together (None for the synthetic cells)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def findings(c: Collection) -> list[Finding]:
    """Every finding of the saved results in `c`: compared pairs, sweeps, synthetic cells."""
    return [
        *compare_findings(c), *sweep_findings(c), *synthetic_findings(c), *capacity_findings(c)
    ]  # fmt: skip


def findings_of(paths: Sequence[Path | str]) -> list[Finding]:
    """The findings of the saved results under `paths` (what study.json keeps)."""
    return findings(collect(paths))


def by_id(found: Sequence[Finding]) -> dict[str, Finding]:
    return {f.id: f for f in found}


# ----- compared models -----------------------------------------------------------------------
def pair_id(a: str, b: str) -> str:
    x, y = sorted((a, b))
    return f"compare:{x}-vs-{y}"


def compare_findings(c: Collection) -> list[Finding]:
    """One finding per pair of compared models over the seeds (compare.json's `over_seeds`
    and `paired`; for plain run folders, McNemar's test computed afresh, one seed)."""
    several = len(c.compares) > 1  # then each id names its compare folder: `...@<folder>`
    out = []
    for compare in c.compares:
        paired = compare.data.get("paired") or []
        one_seed = len({p.get("seed") for p in paired}) <= 1  # then each pair's own test
        pooled = paired if one_seed else compare.data.get("over_seeds") or []
        where = f"@{compare.path.name}" if several else ""
        for over in pooled:
            pairs = same_models(over, paired) or [over]
            out.append(_pair_finding(over, pairs, compare.rows, where))
    if not c.compares and c.main_runs:
        names = {r.label: r for r in c.main_runs if r.dataset == c.main_runs[0].dataset}
        rows = [
            {"model": label, "seed": r.summary.get("seed"), "test_accuracy": r.test.get("accuracy")}
            for label, r in names.items()
        ]
        for p in paired_tests({label: [r.path] for label, r in names.items()}):
            pair = {
                **p,
                "model_a": p["a"],
                "model_b": p["b"],
                "seed": names[p["a"]].summary.get("seed"),
            }
            out.append(_pair_finding(pair, [pair], rows, ""))
    return out


def _pair_finding(
    pooled: dict[str, Any], pairs: list[dict[str, Any]], rows: list[dict[str, Any]], where: str
) -> Finding:
    a, b = str(pooled["model_a"]), str(pooled["model_b"])
    seeds = [p.get("seed") for p in pairs]
    winner = seeds_winner(pooled, pairs)
    values = {m: [_accuracy(rows, m, s) for s in seeds] for m in (a, b)}
    p_values = [float(p["p_value"]) for p in pairs]
    n = len(pairs)
    tests = f"McNemar: {describe_p(float(pooled['p_value']))}" + (
        " over the seeds; per seed " + ", ".join(describe_p(p) for p in p_values) if n > 1 else ""
    )
    if winner is not None:
        loser = b if winner == a else a
        reading = (
            f"{winner} beats {loser}{', ahead' * (n > 1)} {with_seeds(n)} ({_spread(values, winner)}"
            f" vs {_spread(values, loser)}; {tests})"
        )
    else:
        ahead = sum(lead > 0 for lead in seed_leads(pooled, pairs))
        reading = (
            f"{a} vs {b}: not settled with {n} seed{'s' * (n > 1)} ({a} ahead with {ahead} of "
            f"{n}; {_spread(values, a)} vs {_spread(values, b)}; {tests})"
        )
    return Finding(
        pair_id(a, b) + where,
        f"{a} vs {b}: test accuracy on the same {pooled.get('examples', 0):,} test texts",
        HOLDS if winner else NOT_SETTLED, winner, seeds, list(p_values), values, reading,
        float(pooled["p_value"]),
    )  # fmt: skip


def with_seeds(n: int) -> str:
    return f"with each of {n} seeds" if n > 1 else "with its one seed"


def _accuracy(rows: Sequence[Mapping[str, Any]], model: str, seed: Any) -> float | None:
    found = next((r for r in rows if r.get("model") == model and r.get("seed") == seed), None)
    value = found.get("test_accuracy") if found else None
    return float(value) if is_num(value) else None


def _spread(values: Mapping[str, Sequence[float | None]], name: str) -> str:
    """'87.1% ± 0.4 (87.5 / 86.6 / 87.2)', or the one value with one seed."""
    scored = [v for v in values.get(name, []) if v is not None]
    if not scored:
        return f"{name} —"
    if len(scored) == 1:
        return f"{name} {pct(scored[0])}"
    mean, std = mean_std(scored)
    per_seed = " / ".join(f"{100 * v:.1f}" for v in scored)
    return f"{name} {pct(mean or 0.0)} ± {100 * (std or 0.0):.1f} ({per_seed})"


# ----- sweeps --------------------------------------------------------------------------------
def sweep_findings(c: Collection) -> list[Finding]:
    """One finding per model of each sweep: first against last setting, seed by seed."""
    out = []
    for folder in c.results:
        if folder.kind not in SWEEPS or folder.result is None:
            continue
        setting, name = SWEEPS[folder.kind]
        result: Any = folder.result
        for model in result.models:
            change = seed_change(model, name, result.cells, setting)
            if change is None:
                continue
            out.append(
                Finding(
                    f"{folder.kind}:{model}",
                    f"{model}: test accuracy at {name}={change.first} against {name}={change.last}",
                    HOLDS if change.way else NOT_SETTLED, change.way, list(change.seeds),
                    list(change.p_values),
                    {f"{name}={change.first}": list(change.before),
                     f"{name}={change.last}": list(change.after)},
                    change.reading(), change.p_value,
                )
            )  # fmt: skip
    return out


# ----- synthetic tasks -----------------------------------------------------------------------
def synthetic_findings(c: Collection) -> list[Finding]:
    """One finding per (model, length) of each synthetic task: above chance (or at chance)
    with every seed, else not settled."""
    out = []
    for folder in c.results:
        result = folder.result
        if not isinstance(result, SyntheticResult):
            continue
        for model in result.models:
            for length in result.lengths:
                cells = [x for x in result.cells if x.model == model and x.length == length]
                if not cells:
                    continue
                out.append(_synthetic_finding(result, model, length, cells))
    return out


def _synthetic_finding(
    result: SyntheticResult, model: str, length: int, cells: Sequence[Any]
) -> Finding:
    at_chance = seeds_at_chance(result, model, length)
    winner = None if at_chance is None else ("at chance" if at_chance else "above chance")
    shown = " / ".join(f"{v:.3f}" if v is not None else "—" for v in (x.value for x in cells))
    n = len(cells)
    state = f"{winner} {with_seeds(n)}" if winner else (
        f"not settled with {n} seeds (some at chance, others not)"
    )  # fmt: skip
    return Finding(
        f"synthetic:{result.task}:{model}:T={length}",
        f"{model} on {result.task} at T={length}: test {result.metric} against chance "
        f"({result.chance:g})",
        HOLDS if winner else NOT_SETTLED, winner, [x.seed for x in cells], [None] * n,
        {result.metric: [x.value for x in cells]},
        f"{model} at T={length}: {state} ({result.metric} per seed {shown})",
    )  # fmt: skip


# ----- memory capacity ----------------------------------------------------------------------
def capacity_findings(c: Collection) -> list[Finding]:
    """One finding per (model, pairs) of memory capacity: recalls at least RECALL_BAR of the
    test queries with every seed, or falls short with every seed; else not settled."""
    out = []
    for folder in c.results:
        result = folder.result
        if not isinstance(result, MemoryCapacityResult):
            continue
        for model in result.models:
            for pairs in result.pairs:
                cells = [x for x in result.cells if x.model == model and x.pairs == pairs]
                values = [x.test_accuracy for x in cells]
                if not cells or any(v is None for v in values):
                    continue
                above = {float(v) >= RECALL_BAR for v in values if v is not None}
                way = None if len(above) > 1 else ("recalls" if above.pop() else "falls short")
                shown = " / ".join(f"{float(v):.3f}" for v in values if v is not None)
                state = f"{way} {with_seeds(len(cells))}" if way else (
                    f"not settled with {len(cells)} seeds"
                )  # fmt: skip
                out.append(
                    Finding(
                        f"memory_capacity:{model}:N={pairs}",
                        f"{model} recalls at least {RECALL_BAR:.0%} of the queries with "
                        f"{pairs} key-value pairs",
                        HOLDS if way else NOT_SETTLED, way, [x.seed for x in cells],
                        [None] * len(cells), {"accuracy": [float(v) for v in values if v is not None]},
                        f"{model} at N={pairs}: {state} (accuracy per seed {shown})",
                    )
                )  # fmt: skip
    return out


# ----- two studies ---------------------------------------------------------------------------
def read_findings(data: Any, where: str) -> list[dict[str, Any]]:
    """The findings list of a study.json's contents, checked; a one-line error otherwise."""
    found = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(found, list) or not all(
        isinstance(f, dict) and isinstance(f.get("id"), str) and "verdict" in f for f in found
    ):
        raise RnnlabError(
            f"{where} has no findings list; run the study again with this version of rnnlab"
        )
    return found


def outcome(finding: Mapping[str, Any]) -> str:
    """'holds: gru' or 'not settled'."""
    if finding.get("verdict") == HOLDS:
        return f"{HOLDS}: {finding.get('winner')}"
    return str(finding.get("verdict"))


def compare_findings_lines(
    a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], names: tuple[str, str]
) -> list[str]:
    """One line per finding id of either study: `agree`, `differ` (one holds, the other is not
    settled), `reversed` (both hold, other winners) or `only in <study>`; a count at the end."""
    first, second = ({f["id"]: f for f in found} for found in (a, b))
    lines, tally = [], {"agree": 0, "differ": 0, "reversed": 0, "only in one": 0}
    for key in [*first, *(k for k in second if k not in first)]:
        x, y = first.get(key), second.get(key)
        if x is None or y is None:
            where = names[0] if y is None else names[1]
            lines.append(f"only in {where}  {key}: {outcome(x or y or {})}")
            tally["only in one"] += 1
            continue
        if outcome(x) == outcome(y):
            state = "agree"
        elif x.get("verdict") == HOLDS and y.get("verdict") == HOLDS:
            state = "reversed"
        else:
            state = "differ"
        tally[state] += 1
        both = outcome(x) if state == "agree" else f"{outcome(x)} | {outcome(y)}"
        lines.append(f"{state:<8}  {key}: {both}")
    lines.append(", ".join(f"{k} {v}" for k, v in tally.items()) + f" ({names[0]} | {names[1]})")
    return lines
