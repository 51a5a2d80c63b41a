"""A compare folder: one run folder per model plus compare.json and compare_curves.png.

```
<compare>/<model>/      a run folder per model (rnnlab.runs.folder); with several seeds
                        <model>-seed<S>/ per model and seed
<compare>/compare.json  dataset, models, seeds, rows (one per run, with 95% intervals),
                        by_model (with several seeds: mean ± std over them and each seed's
                        value), paired (McNemar's test for each pair of models on the same
                        test texts, per seed), over_seeds (with several seeds: one test per
                        pair of models over all its seeds, `seeds_mcnemar`, and with 3 or
                        more seeds `left_out`: the same test with each seed left out in
                        turn), config, histories
<compare>/compare_curves.png   the learning curves (with several seeds: the first seed's runs)
```
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rnnlab.config import RunConfig
from rnnlab.errors import RnnlabError
from rnnlab.formatting import MISSING, fixed
from rnnlab.io import write_json_atomic
from rnnlab.layout import COMPARE, COMPARE_CURVES
from rnnlab.runs.folder import (
    DEFAULT_OUT,
    check_name,
    is_run_folder,
    read_metrics,
    read_predictions,
    read_summary,
)
from rnnlab.stats import SIGNIFICANT, describe_p, mean_std, seed_interval, seeds_mcnemar
from rnnlab.tables import Table
from rnnlab.training.curves import plot_compare_curves


def run_name(model: str, seed: int, seeds: int) -> str:
    """The folder of one model's run in a comparison: `<model>`, or `<model>-seed<S>` when
    every model is trained with several seeds."""
    return model if seeds == 1 else f"{model}-seed{seed}"


def compare_row(model: str, summary: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """One row of the comparison table, from a run's summary.json."""
    test = summary.get("test") or {}
    return {
        "model": model,
        "seed": summary.get("seed"),
        "status": summary.get("status"),
        "parameters": ((summary.get("model") or {}).get("parameters") or {}).get("total"),
        "test_accuracy": test.get("accuracy"),
        "test_accuracy_interval": test.get("accuracy_interval"),
        "test_macro_f1": test.get("macro_f1"),
        "test_macro_f1_interval": test.get("macro_f1_interval"),
        "test_examples": test.get("examples"),
        "test_mse": test.get("mse"),
        "best_epoch": summary.get("best_epoch"),
        "epochs_run": summary.get("epochs_run"),
        "seconds_per_epoch": summary.get("seconds_per_epoch"),
        "train_tokens_per_s": summary.get("train_tokens_per_s"),
        "run_dir": run_dir,
    }


def write_compare(
    folder: Path,
    models: Sequence[str],
    done: Sequence[str],
    dataset: str,
    config: RunConfig,
    seeds: Sequence[int] = (),
) -> dict[str, Any]:
    """compare.json and compare_curves.png from the saved runs `folder/<run>` of `done` (the
    runs finished so far, in order: `run_name(model, seed, len(seeds))`); returns what
    compare.json holds. `seeds`: the seeds every model trains with (default: the config's)."""
    seeds = list(seeds) or [config.train.seed]
    runs = {run_name(m, s, len(seeds)): (m, s) for m in models for s in seeds}
    rows, histories = [], {}
    for run in done:
        model, _ = runs[run]
        rows.append(compare_row(model, read_summary(folder / run), run))
        histories[run] = read_metrics(folder / run)
    paired = []
    for seed in seeds:  # the same texts and the same seed: one test per pair of models
        same_seed = {run: [folder / run] for run in done if runs[run][1] == seed}
        for pair in paired_tests(same_seed):
            pair.update(model_a=runs[pair["a"]][0], model_b=runs[pair["b"]][0], seed=seed)
            paired.append(pair)
    over_seeds = over_seeds_tests(folder, models, seeds, done)
    data = {
        "dataset": dataset,
        "models": list(models),
        "seeds": seeds,
        "rows": rows,
        "by_model": seed_rows(rows) if len(seeds) > 1 else [],
        "paired": paired,
        "over_seeds": over_seeds,
        "config": config.to_dict(),
        "histories": histories,
    }
    write_json_atomic(folder / COMPARE, data)
    # the figure: one line per run of the first seed (every seed's lines in one legend hide the
    # axes); compare.json keeps every run's history
    shown = {run: h for run, h in histories.items() if runs[run][1] == seeds[0]}
    if any(shown.values()):
        title = folder.name if len(seeds) == 1 else f"{folder.name} (seed {seeds[0]})"
        plot_compare_curves(shown, folder / COMPARE_CURVES, title=title)
    return data


def over_seeds_tests(
    folder: Path, models: Sequence[str], seeds: Sequence[int], done: Sequence[str]
) -> list[dict[str, Any]]:
    """compare.json's `over_seeds`: with several seeds, McNemar's test for each pair of models
    whose every seed has finished (`done`), over all the seeds together; [] with one seed."""
    if len(seeds) < 2:
        return []
    every_seed = {
        m: [folder / run_name(m, s, len(seeds)) for s in seeds]
        for m in models
        if all(run_name(m, s, len(seeds)) in done for s in seeds)
    }
    return [
        {**pair, "model_a": pair["a"], "model_b": pair["b"], "seeds": list(seeds)}
        for pair in paired_tests(every_seed)
    ]


def seed_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model over its seeds' rows: mean and (population) standard deviation of the
    test accuracy and macro-F1, each seed's value, and the 95% interval of the mean accuracy
    (mean ± 1.96 std / sqrt(seeds))."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        row: dict[str, Any] = {"model": model, "seeds": [r["seed"] for r in mine]}
        for metric in ("test_accuracy", "test_macro_f1", "test_mse"):
            values = [r.get(metric) for r in mine]
            row[f"{metric}_values"] = values
            row[metric], row[f"{metric}_std"] = mean_std(values)
        scored = [v for v in row["test_accuracy_values"] if v is not None]
        row["test_accuracy_interval"] = (
            list(seed_interval(row["test_accuracy"], row["test_accuracy_std"], len(scored)))
            if len(scored) > 1
            else None
        )
        for field in ("parameters", "seconds_per_epoch", "train_tokens_per_s"):
            row[field] = mean_std([r.get(field) for r in mine])[0]
        statuses = {str(r.get("status")) for r in mine}
        row["status"] = statuses.pop() if len(statuses) == 1 else "mixed"
        out.append(row)
    return out


def clear_compare(out: Path | str | None, name: str) -> None:
    """--overwrite for compare: remove `out/name` if it is a compare folder (compare.json, or
    only run folders inside), refuse anything else."""
    check_name(name)
    path = (Path(out) if out is not None else DEFAULT_OUT) / name
    if not path.exists():
        return
    children = list(path.iterdir()) if path.is_dir() else []
    if not path.is_dir() or not (
        (path / COMPARE).is_file() or all(is_run_folder(child) for child in children)
    ):
        raise RnnlabError(
            f"{path} exists and is not an rnnlab compare folder; --overwrite only replaces "
            "compare folders, pick another --name"
        )
    shutil.rmtree(path)


def paired_tests(runs: Mapping[str, Sequence[Path]]) -> list[dict[str, Any]]:
    """McNemar's test for every pair of labels (label -> its run folders: one, or one per seed,
    the same seeds in the same order for every label) whose saved test labels are the same
    texts' (same labels in the same order): the runs of one comparison. Over several seeds
    each text's correctness is averaged over the seeds (`seeds_mcnemar`)."""
    correct, truth = {}, {}
    for label, run_dirs in runs.items():
        found = [read_predictions(run_dir) for run_dir in run_dirs]
        present = [f for f in found if f is not None]
        texts = {tuple(labels) for labels, _ in present}
        if len(present) != len(found) or len(texts) != 1:
            continue  # a run without saved predictions, or seeds on other texts
        truth[label] = texts.pop()
        correct[label] = [  # (S, N)
            [a == b for a, b in zip(labels, predictions, strict=True)]
            for labels, predictions in present
        ]
    out = []
    names = list(correct)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if truth[a] != truth[b] or len(correct[a]) != len(correct[b]):
                continue  # not the same test texts
            test = seeds_mcnemar(correct[a], correct[b])
            pair = {
                "a": a, "b": b, "only_a": test.only_a, "only_b": test.only_b,
                "p_value": test.p_value, "method": test.method, "examples": len(correct[a][0]),
            }  # fmt: skip
            if others := left_out_indices(len(correct[a])):
                pair["left_out"] = [
                    seeds_mcnemar([correct[a][j] for j in kept], [correct[b][j] for j in kept])
                    .p_value for kept in others
                ]  # fmt: skip
            out.append(pair)
    return out


def paired_reading(pair: dict[str, Any]) -> str:
    """'lstm beats rnn on the same 2,490 test texts (McNemar, p < 0.001)', or 'within noise'."""
    a, b, p = pair["a"], pair["b"], float(pair["p_value"])
    winner = pair_winner(pair)
    if winner is not None:
        loser = b if winner == a else a
        return (
            f"{winner} beats {loser} on the same {pair['examples']:,} test texts "
            f"(McNemar, {describe_p(p)})"
        )
    return f"{a} vs {b}: the difference is within noise (McNemar, {describe_p(p)})"


def seed_rule(leads: Sequence[float], p_value: float, left_out: Sequence[float] = ()) -> int:
    """The seed rule of every finding. `leads`: per seed, how far the first side is ahead (a
    count or an accuracy difference); `p_value`: the test over all the seeds together;
    `left_out`: with 3 or more seeds, the test over the others with seed i left out, for each i.
    1 (the first side) or -1 (the second) when every seed puts that side ahead, p < 0.05, and
    with 3 or more seeds p < 0.05 again with any one seed left out (a finding never rests on
    one seed), else 0: not settled with these seeds. With one seed: that seed's test alone."""
    signs = {(lead > 0) - (lead < 0) for lead in leads}
    if len(signs) != 1 or 0 in signs or p_value >= SIGNIFICANT:
        return 0
    if len(leads) >= MIN_LEFT_OUT and (len(left_out) != len(leads) or max(left_out) >= SIGNIFICANT):
        return 0
    return signs.pop()


MIN_LEFT_OUT = 3
RULE = (
    "every seed goes the same way and the test over the seeds together says p < 0.05, "
    "also with any one seed left out"
)
"""The seed rule in words, for help texts and the report (`seed_rule`)."""
"""From this many seeds on, a finding must also hold with any one seed left out."""


def left_out_indices(seeds: int) -> list[list[int]]:
    """For each seed i, the other seeds' indices (empty below MIN_LEFT_OUT seeds)."""
    if seeds < MIN_LEFT_OUT:
        return []
    return [[j for j in range(seeds) if j != i] for i in range(seeds)]


def pair_winner(pair: dict[str, Any], a: str = "a", b: str = "b") -> str | None:
    """The winner of one McNemar test (pair[a] or pair[b]: the run names, or with a="model_a"
    the model names), or None when the difference is within noise (p >= 0.05 or a tie)."""
    side = seed_rule([pair["only_a"] - pair["only_b"]], float(pair["p_value"]))
    return None if side == 0 else str(pair[a] if side == 1 else pair[b])


def seed_leads(pooled: dict[str, Any], pairs: Sequence[dict[str, Any]]) -> list[int]:
    """Per seed (`pairs`: compare.json's `paired` tests of one pair of models): how many more
    test texts `pooled["model_a"]` got right than `pooled["model_b"]`."""
    return [
        (p["only_a"] - p["only_b"]) * (1 if p["model_a"] == pooled["model_a"] else -1)
        for p in pairs
    ]


def seeds_winner(pooled: dict[str, Any], pairs: Sequence[dict[str, Any]]) -> str | None:
    """The winning model of `pooled` (compare.json's `over_seeds` entry of a pair of models)
    under `seed_rule`, given the per-seed tests `pairs` of the same models; else None."""
    left_out = [float(p) for p in pooled.get("left_out") or []]
    side = seed_rule(seed_leads(pooled, pairs), float(pooled["p_value"]), left_out)
    return None if side == 0 else str(pooled["model_a"] if side == 1 else pooled["model_b"])


def same_models(pooled: dict[str, Any], pairs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-seed tests (compare.json's `paired`) of the pair of models in `pooled`."""
    models = {pooled["model_a"], pooled["model_b"]}
    return [p for p in pairs if {p["model_a"], p["model_b"]} == models]


def seeds_reading(pooled: dict[str, Any], pairs: Sequence[dict[str, Any]]) -> str:
    """One pair of models over several seeds: a finding only under `seed_rule` (McNemar's
    test over the seeds)."""
    a, b = pooled["model_a"], pooled["model_b"]
    n, winner = len(pairs), seeds_winner(pooled, pairs)
    tests = (
        f"McNemar over the seeds: {describe_p(float(pooled['p_value']))}; per seed: "
        + ", ".join(describe_p(float(pair["p_value"])) for pair in pairs)
    )
    if winner is not None:
        loser = b if winner == a else a
        return f"{winner} beats {loser}, ahead with each of {n} seeds ({tests})"
    ahead = sum(lead > 0 for lead in seed_leads(pooled, pairs))
    return f"{a} vs {b}: not settled with {n} seeds ({a} ahead with {ahead} of {n}; {tests})"


def readings(
    paired: Sequence[dict[str, Any]], over_seeds: Sequence[dict[str, Any]] = ()
) -> list[str]:
    """The paired tests' sentences: one per pair of runs with one seed, or one per pair of
    models over its seeds (compare.json's `over_seeds`)."""
    if len({pair.get("seed") for pair in paired}) <= 1:
        return [paired_reading(pair) for pair in paired]
    if not over_seeds:
        return [
            "not settled: this compare.json has no test over the seeds (it was written by an "
            "older rnnlab); run the comparison again"
        ]
    return [seeds_reading(pooled, same_models(pooled, paired)) for pooled in over_seeds]


def compare_table(
    rows: Sequence[dict[str, Any]],
    paired: Sequence[dict[str, Any]] = (),
    by_model: Sequence[dict[str, Any]] = (),
    over_seeds: Sequence[dict[str, Any]] = (),
) -> Table:
    """One row per model (compare.json's rows): parameters, test scores with the accuracy's
    95% interval, s/epoch, tokens/s; the paired tests' readings under it. With `by_model`
    (several seeds), one row per model over its seeds: mean ± std and each seed's value."""
    if by_model:
        return _seeds_table(by_model, readings(paired, over_seeds))
    regression = any(r.get("test_mse") is not None for r in rows)
    scores = ["test mse"] if regression else ["test acc", "95% interval", "macro-F1"]
    body = []
    for r in rows:
        values = [fixed(r.get("test_mse"), ".4f")] if regression else [
            fixed(r.get("test_accuracy"), ".4f"),
            _interval(r.get("test_accuracy_interval")),
            fixed(r.get("test_macro_f1"), ".4f"),
        ]  # fmt: skip
        body.append(
            [r["model"], f"{r.get('parameters') or 0:,}", *values,
             fixed(r.get("seconds_per_epoch"), ".1f"), fixed(r.get("train_tokens_per_s"), ",.0f"),
             str(r.get("best_epoch") or MISSING), str(r.get("status"))]
        )  # fmt: skip
    columns = ["model", "parameters", *scores, "s/epoch", "tokens/s", "best", "status"]
    return Table(
        "compare", columns, body, readings(paired),
        numeric=[c not in ("model", "status") for c in columns],
    )  # fmt: skip


def _interval(interval: Sequence[float] | None) -> str:
    return f"{interval[0]:.3f}–{interval[1]:.3f}" if interval else MISSING


def _mean_std(row: dict[str, Any], metric: str) -> str:
    mean, std = row.get(metric), row.get(f"{metric}_std")
    return MISSING if mean is None else f"{mean:.4f} ± {std or 0.0:.4f}"


def _seeds_table(by_model: Sequence[dict[str, Any]], notes: list[str]) -> Table:
    regression = any(r.get("test_mse") is not None for r in by_model)
    metric = "test_mse" if regression else "test_accuracy"
    scores = ["test mse, mean ± std"] if regression else [
        "test acc, mean ± std", "95% interval", "macro-F1, mean ± std",
    ]  # fmt: skip
    body = []
    for r in by_model:
        values = [_mean_std(r, metric)] if regression else [
            _mean_std(r, metric), _interval(r.get("test_accuracy_interval")),
            _mean_std(r, "test_macro_f1"),
        ]  # fmt: skip
        per_seed = " ".join(fixed(v, ".3f") for v in r[f"{metric}_values"])
        body.append(
            [r["model"], f"{r.get('parameters') or 0:,.0f}", *values, per_seed,
             fixed(r.get("seconds_per_epoch"), ".1f"), fixed(r.get("train_tokens_per_s"), ",.0f"),
             str(r.get("status"))]
        )  # fmt: skip
    seeds = ", ".join(str(s) for s in by_model[0]["seeds"])
    columns = ["model", "parameters", *scores, f"per seed ({seeds})", "s/epoch", "tokens/s",
               "status"]  # fmt: skip
    return Table(
        f"compare over {len(by_model[0]['seeds'])} seeds", columns, body, notes,
        numeric=[c not in ("model", "status") and not c.startswith("per seed") for c in columns],
    )  # fmt: skip
