"""The study's steps: the dataset summary, one training run per model, the comparison table,
then every registered diagnostic on the trained models. Each step is done when its marker file
exists, so an interrupted study resumes where it stopped.

```
<out>/dataset.json                  dataset summary + example texts      (data.summary)
<out>/compare/<model>-seed<S>/summary.json  one training run per model and seed (api.train)
<out>/compare/compare.json          the comparison table + curves        (runs.write_compare)
<out>/<diagnostic>/result.json      parameters, gradient-flow, ..., synthetic (the registry)
<out>/report.html                   the report                           (report.render)
<out>/study.json                    settings, the state of every step, the findings
```
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab import api
from rnnlab.data import load_splits
from rnnlab.data.summary import summarize
from rnnlab.diagnostics import REGISTRY, Diagnostic, Inputs, suite
from rnnlab.io import read_json, write_json_atomic
from rnnlab.layout import COMPARE, COMPARE_DIR, CONFIG, DATASET, RESULT, SUMMARY
from rnnlab.runs import is_run_folder, write_compare
from rnnlab.runs.compare import run_name
from rnnlab.study.settings import StudySettings


@dataclass
class Context:
    out: Path
    settings: StudySettings
    log: Callable[[str], None]
    callbacks: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    marker: str
    """Path (under the study folder) of the file whose presence means the step is done."""
    run: Callable[[Context], None]
    folder: str | None = None
    """A folder that only this step writes: removed before the step is (re)run, unless the
    step can resume what it holds."""
    resumes: bool = False
    """The step continues a half-done folder (a training run, from its last epoch)."""

    def done(self, out: Path) -> bool:
        path = out / self.marker
        if not path.is_file():
            return False
        if path.name == SUMMARY:  # a training run: only a completed one counts
            try:
                return read_json(path).get("status") == "completed"
            except (OSError, ValueError, AttributeError):
                return False
        return True


SETTINGS_OF_A_CELL = ("max_len", "hidden_dim", "length", "pairs")
"""The field that tells a sweep's (or the synthetic task's, or memory capacity's) summary rows
apart, besides the model."""


def uncertainty(path: Path) -> dict[str, Any]:
    """What a finished step's output says about its certainty, for study.json: the seeds it
    trained with and the 95% interval of each accuracy it reports (empty where it has none)."""
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    seeds = data.get("seeds") if isinstance(data.get("seeds"), list) else None
    if seeds is None and data.get("seed") is not None:
        seeds = [data["seed"]]
    intervals: dict[str, Any] = {}
    if path.name == SUMMARY:  # a training run
        test = data.get("test") or {}
        intervals = {k: test[k] for k in ("accuracy_interval", "macro_f1_interval") if k in test}
    elif path.name == COMPARE:
        rows = data.get("by_model") or data.get("rows") or []
        intervals = {r["model"]: r.get("test_accuracy_interval") for r in rows}
    else:  # a diagnostic's result.json: its summary rows with an interval
        for row in data.get("summary") or []:
            interval = row.get("accuracy_interval") or row.get("interval")
            setting = next((k for k in SETTINGS_OF_A_CELL if k in row), None)
            if interval and setting:
                intervals[f"{row['model']} {setting}={row[setting]}"] = interval
    return {"seeds": seeds or [], "intervals": intervals}


def write_dataset(ctx: Context) -> None:
    """dataset.json: the summary of the data, and one test text per label as the model reads it."""
    cfg = ctx.settings.run_config().data
    summary = summarize(cfg).to_dict()
    splits = load_splits(cfg)
    examples = []
    if splits.encoder is not None:
        for label, name in enumerate(splits.label_names):
            rows = [i for i in range(len(splits.test)) if int(splits.test.labels[i]) == label]
            if rows:
                text = splits.encoder.decode(splits.test.token_ids(rows[0]))
                examples.append({"text": text, "label": name, "split": "test", "row": rows[0]})
    summary["examples"] = examples[:2]
    summary["examples_note"] = "decoded from token ids, as the model reads them"
    write_json_atomic(ctx.out / DATASET, summary)


def train(model: str, seed: int) -> Callable[[Context], None]:
    """One compared model with one seed, into `compare/<model>-seed<S>` (as `rnnlab compare
    --seeds N` names it; `compare/<model>` with one seed); the data split is the study's."""

    def run(ctx: Context) -> None:
        name = run_name(model, seed, ctx.settings.seeds)
        folder = ctx.out / COMPARE_DIR / name
        if is_run_folder(folder) and (folder / CONFIG).is_file():  # killed or interrupted
            result = api.resume(folder, callbacks=ctx.callbacks, verbose=False)
        else:
            shutil.rmtree(folder, ignore_errors=True)  # nothing worth keeping
            config = ctx.settings.run_config()
            config = dataclasses.replace(
                config,
                model=dataclasses.replace(config.model, name=model),
                train=dataclasses.replace(config.train, seed=seed),
            )
            result = api.train(
                config, out=ctx.out / COMPARE_DIR, name=name, callbacks=ctx.callbacks, verbose=False
            )
        if result.status == "interrupted":
            raise KeyboardInterrupt

    return run


def write_comparison(ctx: Context) -> None:
    s = ctx.settings
    done = [run_name(m, seed, s.seeds) for m in s.models for seed in s.seed_list]
    write_compare(ctx.out / COMPARE_DIR, s.models, done, s.dataset, s.run_config(), s.seed_list)


def diagnose(entry: Diagnostic) -> Callable[[Context], None]:
    """One registered diagnostic on the compared models: the first seed's run of each."""

    def run(ctx: Context) -> None:
        s = ctx.settings
        first = [ctx.out / COMPARE_DIR / run_name(m, s.seed, s.seeds) for m in s.models]
        inputs = Inputs(
            s.run_config(), runs=first, seed=s.seed,
            device=s.device, threads=s.threads, log=ctx.log,
        )  # fmt: skip
        result = suite.run_one(entry, s.diagnostics[entry.name], inputs)
        if getattr(result, "status", "completed") == "interrupted":
            raise KeyboardInterrupt
        for line in result.notices():
            ctx.log(line)
        result.save(ctx.out / entry.name)

    return run


def build_steps(settings: StudySettings) -> list[Step]:
    steps = [Step("dataset", "dataset summary", DATASET, write_dataset)]
    for seed in settings.seed_list:  # every model's first seed before any second one
        for model in settings.models:
            name = run_name(model, seed, settings.seeds)
            steps.append(
                Step(f"train-{name}", f"train {name}", f"{COMPARE_DIR}/{name}/{SUMMARY}",
                     train(model, seed), folder=f"{COMPARE_DIR}/{name}", resumes=True)
            )  # fmt: skip
    steps.append(Step("compare", "comparison table", f"{COMPARE_DIR}/{COMPARE}", write_comparison))
    for entry in REGISTRY:
        steps.append(
            Step(entry.name, entry.name.replace("-", " "), f"{entry.name}/{RESULT}",
                 diagnose(entry), folder=entry.name)
        )  # fmt: skip
    return steps
