"""What rnnlab's folders hold, and the name of each file and folder in them, defined once.
Ground floor: the training loop (checkpoint.pt), the run folder, compare folders, the
diagnostics, the report and the study all take their file names from here (a diagnostic's PNGs
are named by its own `figures()`).

A training run (`rnnlab train`; `rnnlab.runs.folder` writes and reads it):
```
runs/<name>/
  config.yaml       the resolved RunConfig
  model_spec.json   ModelSpec.to_dict(): rebuilds the model
  labels.json       class names in id order ([] for regression)
  encoder/          the TextEncoder (absent for synthetic runs)
  metrics.jsonl     one JSON object per epoch, rewritten as training goes
  checkpoint.pt     the whole training state after the last finished epoch (resume from it)
  tensorboard/      TensorBoard event files (only with --tensorboard)
  model.pt          state_dict of the best epoch (torch.load(..., weights_only=True))
  predictions.json  the test split's labels and predictions in split order (classification)
  curves.png        learning curves
  summary.json      status, test metrics, timings, parameters, versions; written last
  manifest.json     size and sha256 of every file above but tensorboard/ (`layout.manifest`)
  .lock             held (flock) by the process training into the folder
```
Every file is written atomically; summary.json is written last, so a folder without it is an
unfinished run. Every write of a file of RECORDED goes through `layout.manifest.write_files`,
which keeps manifest.json true at every instant, and every reader checks what it reads against
it (`layout.manifest.check_files`). An unfinished, interrupted or failed run is resumed with `rnnlab train --resume
DIR` (from checkpoint.pt, else from the start) or replaced with `--overwrite`.

A comparison (`rnnlab compare`; `rnnlab.runs.compare`, which documents compare.json):
```
<compare>/
  <model>/ or <model>-seed<S>/   a training run per model (and seed, with --seeds)
  compare.json                   rows, by_model, paired and over-seeds tests, config, histories
  compare_curves.png             the learning curves
```

A diagnostic (`rnnlab diagnose ...`, `sweep`, `bench`, `synthetic`; `rnnlab.diagnostics`):
```
<out>/                one diagnostic (--out): result.json (with its "kind"; written last) + the
                      PNG figures
<out>/<diagnostic>/   diagnose all: the same, one folder per diagnostic
<out>/result.json     diagnose all: the index (kind "diagnose_all"), written last
```

A study (`rnnlab study`; `rnnlab.study.steps` says which step writes what):
```
<study>/
  dataset.json    dataset summary + example texts
  compare/        the comparison above: one run per model and seed, compare.json
  <diagnostic>/   one folder per registered diagnostic, as above
  report.html     the report
  study.json      settings, the state of every step, the findings
```
"""

from __future__ import annotations

# ----- a training run ----------------------------------------------------------------------------
CONFIG = "config.yaml"
SPEC = "model_spec.json"
LABELS = "labels.json"
ENCODER = "encoder"
"""A folder: the TextEncoder's own files."""
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
TENSORBOARD = "tensorboard"
"""A folder: the TensorBoard event files."""
MODEL = "model.pt"
PREDICTIONS = "predictions.json"
"""The test split's labels and predictions, in split order: paired tests between runs."""
CURVES = "curves.png"
SUMMARY = "summary.json"
MANIFEST = "manifest.json"
"""The size and sha256 of every file of RECORDED: `rnnlab.layout.manifest`."""
LOCK = ".lock"
RECORDED = (CONFIG, SPEC, LABELS, ENCODER, METRICS, CHECKPOINT, MODEL, PREDICTIONS, CURVES, SUMMARY)
"""The run folder's files that readers trust, each recorded in MANIFEST (ENCODER: each file in
it, as `encoder/<file>`)."""

# ----- a comparison ------------------------------------------------------------------------------
COMPARE = "compare.json"
COMPARE_CURVES = "compare_curves.png"

# ----- a diagnostic ------------------------------------------------------------------------------
RESULT = "result.json"

# ----- a study -----------------------------------------------------------------------------------
DATASET = "dataset.json"
COMPARE_DIR = "compare"
"""The study's comparison folder."""
REPORT = "report.html"
"""Also the default file name of `rnnlab report`."""
STUDY = "study.json"
