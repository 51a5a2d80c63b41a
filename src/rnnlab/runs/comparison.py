"""Several models trained on the same data, seeds and settings into one compare folder (the
folder itself: rnnlab.runs.compare). rnnlab.api re-exports `compare` and `CompareResult`."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rnnlab.config import RunConfig
from rnnlab.data import load_splits
from rnnlab.errors import RnnlabError
from rnnlab.models import get_preset
from rnnlab.runs.compare import clear_compare, compare_table, run_name, write_compare
from rnnlab.runs.folder import check_name_free, dataset_slug, new_run_dir
from rnnlab.runs.job import RunResult, train
from rnnlab.tables import Table, html_block
from rnnlab.training import distributed, tensorboard
from rnnlab.training.callbacks import Callback
from rnnlab.training.device import resolve_device


@dataclass
class CompareResult:
    """Several models trained on the same data with the same seed and settings."""

    compare_dir: Path
    runs: dict[str, RunResult] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    """One table row per model (compare.json's `rows`)."""
    paired: list[dict[str, Any]] = field(default_factory=list)
    """McNemar's test for each pair of models on the same test texts (compare.json's `paired`),
    per seed."""
    by_model: list[dict[str, Any]] = field(default_factory=list)
    """With several seeds: one row per model, mean ± std over the seeds and each seed's value."""
    over_seeds: list[dict[str, Any]] = field(default_factory=list)
    """With several seeds: McNemar's test for each pair of models over all its seeds
    (compare.json's `over_seeds`), which decides the pair under the seed rule."""

    def table(self) -> Table:
        """The comparison table (over the seeds when there are several), with the paired tests'
        readings under it."""
        return compare_table(self.rows, self.paired, self.by_model, self.over_seeds)

    def _repr_html_(self) -> str:
        """A notebook shows the comparison table, with the paired tests' readings under it."""
        table = self.table()
        return html_block(f"comparison {self.compare_dir}", [table])


def compare(
    config: RunConfig,
    models: Sequence[str],
    *,
    out: Path | str | None = None,
    name: str | None = None,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    stream: TextIO | None = None,
    overwrite: bool = False,
    seeds: int = 1,
) -> CompareResult:
    """Train each model on the same data (loaded once), seed and settings.

    Writes `out/name/<model>/` per run plus compare.json and compare_curves.png. `seeds` > 1
    trains every model with seeds `config.train.seed`, +1, ... into `<model>-seed<S>/`, and the
    table gives mean ± std over them (`CompareResult.by_model`). Ctrl-C stops after saving the
    interrupted run; the table holds the runs done so far. Under torchrun every rank calls it,
    each model trains data-parallel (`train`), and rank 0 writes.
    """
    if seeds < 1:
        raise RnnlabError(f"--seeds must be at least 1 (got {seeds}); e.g. --seeds 3")
    seed_list = [config.train.seed + k for k in range(seeds)]
    models = [m.strip() for m in models if m.strip()]
    if not models:
        raise RnnlabError("no models to compare; pass e.g. --models rnn,lstm,gru")
    if len(set(models)) != len(models):
        raise RnnlabError(f"--models lists a model twice ({','.join(models)}); name each once")
    for model_name in models:
        get_preset(model_name)  # fail before any training on an unknown name
    resolve_device(config.train.device)
    if config.train.tensorboard:
        tensorboard.check_available()
    with distributed.session() as world:
        main = world is None or world.main

        def claim_name() -> None:
            if overwrite and name is not None:
                clear_compare(out, name)
            check_name_free(out, name)

        distributed.on_main(world, claim_name)
        splits = load_splits(config.data)
        compare_dir = distributed.on_main(
            world,
            lambda: new_run_dir(out, name, default=f"compare-{dataset_slug(config)}"),
        )
        result = CompareResult(compare_dir)
        jobs = [(m, s) for m in models for s in seed_list]
        for model_name, seed in jobs:
            folder_name = run_name(model_name, seed, seeds)
            model_cfg = dataclasses.replace(config.model, name=model_name, kind=None)
            train_cfg = dataclasses.replace(config.train, seed=seed)
            run_cfg = dataclasses.replace(config, model=model_cfg, train=train_cfg)
            if verbose and main:
                print(f"== {folder_name}", file=stream or sys.stdout, flush=True)
            run = train(
                run_cfg, out=compare_dir, name=folder_name, splits=splits, callbacks=callbacks,
                verbose=verbose, stream=stream,
            )  # fmt: skip
            result.runs[folder_name] = run
            if run.status == "interrupted":
                break
        dataset = str(splits.info.get("dataset", config.data.dataset))
        written = distributed.on_main(
            world,
            lambda: write_compare(
                compare_dir, models, list(result.runs), dataset, config, seed_list
            ),
        )
    result.rows, result.paired = written["rows"], written["paired"]
    result.by_model, result.over_seeds = written["by_model"], written["over_seeds"]
    return result
