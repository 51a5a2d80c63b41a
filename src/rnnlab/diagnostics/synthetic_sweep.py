"""Synthetic-task sweep: train every model at every sequence length with equal budgets and see
how far each one can carry information (`rnnlab synthetic TASK`).

Each (model, length, seed) cell generates the task's data at that length (`load_synthetic`,
seeded with the cell's seed), trains the preset with `rnnlab.training.fit` (same epochs, batch
size, learning rate and hidden size for every model; no early stopping, the best validation
epoch's weights are kept) and measures on the test split:

- the test metric: accuracy (classification) or MSE (regression, the adding problem);
- the first-step gradient ||dL/dx_1||: for the first `GRAD_BATCH` test examples, the norm of
  each example's own loss gradient w.r.t. its first input (the embedded token, or the raw
  features), averaged over the batch; after training, and for the same model at
  initialisation. It runs in train mode with every dropout off, in float64 (the value easily
  drops below float32's range at long lengths: ~1e-45 at T=200 was measured).

result.json (`"kind": "synthetic"`):
  task, metric ("accuracy" | "mse"), chance (accuracy of guessing, or the MSE of predicting the
  mean), lengths, models, seeds, settings (epochs, num_examples, hidden_dim, batch_size, lr,
  vocab_size, device, threads, split sizes), status ("completed" | "interrupted"),
  total_seconds,
  cells: one object per (model, length, seed): model, length, seed, value (the test metric, also
    under the metric's own name), first_step_grad (trained model), first_step_grad_init (the
    same model before training), train_seconds (training steps only), fit_seconds (with
    validation), epochs_run, best_epoch, test_loss, parameters, status,
  summary: one object per (model, length): model, length, runs, mean, std, first_step_grad_mean,
    first_step_grad_std, first_step_grad_init_mean, train_seconds_mean (std 0 with one seed),
  reading: plain-words sentences ("rnn at chance from T=100").
Figures: accuracy_vs_length.png (mse_vs_length.png for regression), first_step_grad.png.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnlab.config import DataConfig, TrainConfig
from rnnlab.data.batching import collate
from rnnlab.data.encoded import EncodedSplit, EncodedSplits
from rnnlab.data.synthetic import PREFIX, get_task, load_synthetic, split_sizes
from rnnlab.diagnostics.common import (
    Result,
    Table,
    finite,
    gradient_mode,
    parse_names,
    prepare,
    sum_loss,
)
from rnnlab.diagnostics.sweep_runs import mean_std, pm
from rnnlab.errors import RnnlabError, check

DEFAULT_LENGTHS = (10, 50, 100, 200, 400)
DEFAULT_MODELS = ("rnn", "lstm", "gru")
DEFAULT_EPOCHS = 5
DEFAULT_NUM_EXAMPLES = 3000
DEFAULT_HIDDEN_DIM = 64
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 3e-3
DEFAULT_THREADS = 1
DEFAULT_GATE_BIAS = 5.0
"""Initial LSTM forget-gate / GRU update-gate bias. With PyTorch's default init (forget gate
near 0.5) every model sat at chance from T=50 on remember-first in our runs; a strongly
remembering start lets the gated cells learn over distance (the vanilla RNN has no gate)."""
"""CPU threads: these small models gain nothing from more, and lose a lot on a busy machine."""
GRAD_BATCH = 256
"""Test examples used for the first-step gradient."""
MIN_MARGIN = 0.05
"""Accuracy within max(MIN_MARGIN, two binomial standard errors) of chance reads as chance."""
MIN_SKILL = 0.1
"""Regression: an MSE above (1 - MIN_SKILL) x chance reads as no better than the mean."""


# ----- results ---------------------------------------------------------------------------------
@dataclass
class SyntheticCell:
    """One trained (model, length, seed)."""

    model: str
    length: int
    seed: int
    value: float | None
    """Test accuracy, or test MSE for regression."""
    first_step_grad: float | None
    """Mean over test examples of ||d loss_i / d x_{i,1}||, after training."""
    first_step_grad_init: float | None
    """The same at initialisation (before any training step)."""
    train_seconds: float
    fit_seconds: float
    epochs_run: int
    best_epoch: int | None
    test_loss: float | None
    parameters: int
    status: str


@dataclass
class SyntheticSummary:
    """Mean and std over seeds of one (model, length)."""

    model: str
    length: int
    runs: int
    mean: float | None
    std: float | None
    first_step_grad_mean: float | None
    first_step_grad_std: float | None
    first_step_grad_init_mean: float | None
    train_seconds_mean: float | None


@dataclass
class SyntheticSweepResult(Result):
    """What `run_synthetic_sweep` measured; `to_json` / `from_json` round-trip result.json."""

    kind = "synthetic"

    task: str
    metric: str
    chance: float
    lengths: list[int]
    models: list[str]
    seeds: list[int]
    settings: dict[str, Any]
    cells: list[SyntheticCell] = field(default_factory=list)
    summary: list[SyntheticSummary] = field(default_factory=list)
    reading: list[str] = field(default_factory=list)
    status: str = "completed"
    total_seconds: float = 0.0

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for cell in out["cells"]:
            cell[self.metric] = cell["value"]
        return out

    def to_json(self) -> dict[str, Any]:
        return self.to_dict()

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SyntheticSweepResult:
        return cls.from_dict(raw)

    # -- derived ------------------------------------------------------------------------------
    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    def summary_for(self, model: str, length: int) -> SyntheticSummary | None:
        return next((s for s in self.summary if s.model == model and s.length == length), None)

    def summarize(self) -> None:
        """Fill `summary` and `reading` from `cells`."""
        self.summary = []
        for model in self.models:
            for length in self.lengths:
                cells = [c for c in self.cells if c.model == model and c.length == length]
                if not cells:
                    continue
                value = mean_std([c.value for c in cells])
                grad = mean_std([c.first_step_grad for c in cells])
                init = mean_std([c.first_step_grad_init for c in cells])[0]
                secs = mean_std([c.train_seconds for c in cells])[0]
                self.summary.append(
                    SyntheticSummary(model, length, len(cells), *value, *grad, init, secs)
                )
        self.reading = read_result(self)

    def at_chance(self, mean: float | None) -> bool | None:
        """Whether a mean test metric is indistinguishable from chance (None: no value)."""
        if mean is None:
            return None
        if self.metric == "accuracy":
            n = int(self.settings.get("test_examples") or 0)
            noise = 2 * math.sqrt(self.chance * (1 - self.chance) / n) if n else 0.0
            return mean <= self.chance + max(MIN_MARGIN, noise)
        return mean >= (1 - MIN_SKILL) * self.chance

    # -- output -------------------------------------------------------------------------------
    def tables(self) -> list[Table]:
        rows = []
        name = "test accuracy" if self.metric == "accuracy" else "test MSE"
        for model in self.models:
            values, grads, inits, secs = [], [], [], []
            for length in self.lengths:
                s = self.summary_for(model, length)
                values.append(pm(s.mean, s.std) if s else "-")
                grads.append(_sci(s.first_step_grad_mean) if s else "-")
                inits.append(_sci(s.first_step_grad_init_mean) if s else "-")
                secs.append(pm(s.train_seconds_mean, None, ".1f") if s else "-")
            rows.append([model, name, *values])
            rows.append(["", "||dL/dx_1|| trained", *grads])
            rows.append(["", "||dL/dx_1|| at init", *inits])
            rows.append(["", "train seconds", *secs])
        st = self.settings
        title = (
            f"{PREFIX}{self.task}: {name} by length ({st['epochs']} epochs, "
            f"{st['num_examples']} examples, hidden {st['hidden_dim']}, batch "
            f"{st['batch_size']}, lr {st['lr']:g}, {len(self.seeds)} seed(s); "
            f"chance {self.chance:.3g})"
        )
        return [Table(title, ["model", "", *(f"T={n}" for n in self.lengths)], rows, self.reading)]

    def figures(self, folder: Path) -> list[Path]:
        return plot_synthetic(self, folder)


def _sci(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def read_result(result: SyntheticSweepResult) -> list[str]:
    """Plain words per model: from which length it is at chance, or how well it holds out."""
    lines = []
    unit = "accuracy" if result.metric == "accuracy" else "MSE"
    chance_words = "at chance" if result.metric == "accuracy" else "no better than the mean"
    for model in result.models:
        rows = [s for s in result.summary if s.model == model and s.mean is not None]
        if not rows:
            continue
        flags = [bool(result.at_chance(s.mean)) for s in rows]
        lengths = [s.length for s in rows]
        if all(flags):
            lines.append(f"{model} {chance_words} at every length (T={_list(lengths)})")
        elif not any(flags):
            sign = 1.0 if result.higher_is_better else -1.0
            worst = min(rows, key=lambda s: sign * float(s.mean or 0.0))
            lines.append(
                f"{model} beats chance at every length (worst {unit} {worst.mean:.3f} at "
                f"T={worst.length})"
            )
        else:
            first = next(i for i, f in enumerate(flags) if f)
            if all(flags[first:]):
                lines.append(f"{model} {chance_words} from T={lengths[first]}")
            else:
                bad = [n for n, f in zip(lengths, flags, strict=True) if f]
                lines.append(f"{model} {chance_words} at T={_list(bad)} only")
    longest = max((s.length for s in result.summary), default=None)
    grads = [
        (s.model, s.first_step_grad_mean)
        for s in result.summary
        if s.length == longest and s.first_step_grad_mean is not None
    ]
    if len(grads) > 1:
        parts = ", ".join(f"{m} {_sci(g)}" for m, g in grads)
        lines.append(f"gradient reaching t=1 at T={longest}: {parts}")
    return lines


def _list(values: Sequence[int]) -> str:
    return ", ".join(str(v) for v in values)


# ----- figures ---------------------------------------------------------------------------------
COLORS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
PALETTE = ("tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def plot_synthetic(result: SyntheticSweepResult, folder: Path) -> list[Path]:
    """The test metric (mean ± std over seeds) and the first-step gradient against length."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    folder = Path(folder)
    colors = {m: COLORS.get(m, PALETTE[i % len(PALETTE)]) for i, m in enumerate(result.models)}
    several = len(result.seeds) > 1
    name = "accuracy" if result.metric == "accuracy" else "MSE"
    paths = []
    for fname, attr, ylabel in (
        (f"{result.metric}_vs_length.png", "mean", f"test {name}"),
        ("first_step_grad.png", "first_step_grad_mean", "||dL/dx_1|| (mean over test examples)"),
    ):
        fig = Figure(figsize=(6.0, 4.0), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for model in result.models:
            rows = [s for s in result.summary if s.model == model]
            x = [s.length for s in rows]
            y = [_nan(getattr(s, attr)) for s in rows]
            std_attr = "std" if attr == "mean" else "first_step_grad_std"
            if attr != "mean":  # log scale: only positive values can be drawn
                x, y, rows = _positive(x, y, rows)
            if several:
                err = [getattr(s, std_attr) or 0.0 for s in rows]
                if attr != "mean":  # keep the lower bar above zero on a log axis
                    err = [[min(e, 0.99 * v) for e, v in zip(err, y, strict=True)], err]
                ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=model, color=colors[model])
            else:
                ax.plot(x, y, marker="o", label=model, color=colors[model])
            if attr != "mean":  # the same at initialisation, dashed
                rows = [s for s in result.summary if s.model == model]
                x0 = [s.length for s in rows]
                y0 = [_nan(s.first_step_grad_init_mean) for s in rows]
                x0, y0, _ = _positive(x0, y0, rows)
                ax.plot(x0, y0, marker=".", linestyle="--", color=colors[model], alpha=0.6,
                        label=f"{model} at init")  # fmt: skip
        if attr == "mean":
            ax.axhline(result.chance, color="gray", linestyle="--", linewidth=1, label="chance")
            title = f"{PREFIX}{result.task}: test {name} vs length"
        else:
            ax.set_yscale("log")
            title = f"{PREFIX}{result.task}: gradient reaching t=1"
        if len(result.lengths) > 1 and result.lengths[-1] / result.lengths[0] > 8:
            ax.set_xscale("log")
        ax.set_xticks(result.lengths, [str(n) for n in result.lengths])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("sequence length T")
        ax.set_ylabel(ylabel)
        seeds = f"\nmean ± std over {len(result.seeds)} seeds" if several else ""
        ax.set_title(title + seeds, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        paths.append(_save(fig, folder / fname))
    return paths


def _save(fig: Any, path: Path) -> Path:
    from rnnlab.io import write_with

    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    return path


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _positive(
    x: list[int], y: list[float], rows: list[Any]
) -> tuple[list[int], list[float], list[Any]]:
    keep = [i for i, v in enumerate(y) if v > 0 and math.isfinite(v)]
    return [x[i] for i in keep], [y[i] for i in keep], [rows[i] for i in keep]


# ----- the measurement -------------------------------------------------------------------------
def first_step_gradient(
    model: nn.Module, split: EncodedSplit, *, batch_size: int = GRAD_BATCH
) -> float | None:
    """Mean over the first `batch_size` examples of ||d loss_i / d x_{i,1}|| (x = model.embed).

    Runs on a float64 copy of the model (the caller's model is untouched), in train mode with
    dropout off; each row's gradient is that example's own loss gradient (`sum_loss`).
    """
    param = next(model.parameters())
    twin = prepare(model, param.device, torch.float64)
    rows = np.arange(min(batch_size, len(split)))
    batch = collate(split, rows).to(param.device)
    tokens = batch.tokens.double() if batch.tokens.is_floating_point() else batch.tokens
    with gradient_mode(twin):
        x = twin.embed(tokens)  # type: ignore[operator]  # (B, T, E)
        if not x.requires_grad:  # continuous inputs: embed is the identity
            x = x.detach().clone().requires_grad_(True)
        x.retain_grad()
        logits = twin.forward_embedded(x, batch.lengths)  # type: ignore[operator]  # (B, C)
        sum_loss(twin, logits, batch.labels).backward()
    assert x.grad is not None
    first = x.grad[:, 0, :]  # (B, E)
    return finite(first.norm(dim=1).mean().item())


@dataclass
class SweepProgress:
    """Passed to the progress callback before every cell (cell None) and after it."""

    done: int
    total: int
    model: str
    length: int
    seed: int
    cell: SyntheticCell | None = None


Progress = Callable[[SweepProgress], None]


def _train_cell(
    model_name: str,
    splits: EncodedSplits,
    train_cfg: TrainConfig,
    *,
    length: int,
    hidden_dim: int,
    gate_bias: float | None,
) -> SyntheticCell:
    from rnnlab.models import count_parameters, create_model
    from rnnlab.training import evaluate, fit, seed_everything

    seed_everything(train_cfg.seed)
    model = create_model(
        model_name,
        vocab_size=splits.vocab_size,
        num_classes=splits.num_classes,
        input_dim=splits.input_dim,
        task=splits.task,
        hidden_dim=hidden_dim,
        gate_bias=gate_bias,
    )
    grad_init = first_step_gradient(model, splits.test)
    fitted = fit(model, splits, train_cfg)
    test = evaluate(model, splits.test, batch_size=max(train_cfg.batch_size, 256))
    value = test.accuracy if splits.task == "classification" else test.mse
    return SyntheticCell(
        model=model_name,
        length=length,
        seed=train_cfg.seed,
        value=finite(value),
        first_step_grad=first_step_gradient(model, splits.test),
        first_step_grad_init=grad_init,
        train_seconds=float(sum(r["train_seconds"] for r in fitted.history)),
        fit_seconds=float(fitted.seconds),
        epochs_run=fitted.epochs_run,
        best_epoch=fitted.best_epoch,
        test_loss=finite(test.loss),
        parameters=int(count_parameters(model)["total"]),
        status=fitted.status,
    )


def check_lengths(lengths: Sequence[int]) -> list[int]:
    """Sorted distinct lengths, each at least 2 (RnnlabError otherwise)."""
    check(len(lengths) > 0, "no lengths given; pass e.g. --lengths 10,50,100")
    for n in lengths:
        check(
            isinstance(n, (int, np.integer)) and n >= 2,
            f"every length must be an integer of at least 2 (got {n}); e.g. --lengths 10,50,100",
        )
    return sorted({int(n) for n in lengths})


def run_synthetic_sweep(
    task: str,
    lengths: Sequence[int] = DEFAULT_LENGTHS,
    models: Sequence[str] | str = DEFAULT_MODELS,
    *,
    seeds: int | Sequence[int] = 1,
    epochs: int = DEFAULT_EPOCHS,
    num_examples: int = DEFAULT_NUM_EXAMPLES,
    hidden_dim: int = DEFAULT_HIDDEN_DIM,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    vocab_size: int = 10,
    device: str = "auto",
    seed: int = 0,
    threads: int | None = DEFAULT_THREADS,
    gate_bias: float | None = DEFAULT_GATE_BIAS,
    progress: Progress | None = None,
) -> SyntheticSweepResult:
    """Train every model at every length (and seed) on `task` with equal budgets.

    `seeds` is a count (seeds seed, seed+1, ...) or explicit seeds; a cell's seed sets both its
    data and its weights. Everything is checked before the first cell trains. Ctrl-C stops after
    the cell in progress (its best weights so far are measured) and returns the cells done, with
    status "interrupted".
    """
    spec = get_task(task)
    lengths = check_lengths(lengths)
    names = parse_names(models if models else None)
    seed_list = list(range(seed, seed + seeds)) if isinstance(seeds, int) else list(seeds)
    check(len(seed_list) > 0, f"seeds must be at least 1 (got {seeds}); e.g. --seeds 3")
    check(epochs >= 1, f"epochs must be at least 1 (got {epochs}); e.g. --epochs 5")
    check(hidden_dim >= 1, f"hidden_dim must be positive (got {hidden_dim}); e.g. --hidden-dim 64")
    check(num_examples > 0, f"num_examples must be positive (got {num_examples})")
    check(vocab_size >= 2, f"vocab_size must be at least 2 (got {vocab_size})")
    data = DataConfig(
        dataset=PREFIX + spec.name, num_examples=num_examples, vocab_size=vocab_size, seed=seed
    )
    sizes = split_sizes(num_examples, data.val_fraction, data.test_fraction)
    monitor = "val_loss" if spec.task == "regression" else "val_accuracy"
    train = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, patience=None, monitor=monitor,
        device=device, threads=threads, progress=False,
    )  # fmt: skip
    from rnnlab.training import resolve_device

    resolve_device(device)  # an unavailable device fails now, not after the first cell
    result = SyntheticSweepResult(
        task=spec.name,
        metric="accuracy" if spec.task == "classification" else "mse",
        chance=spec.chance,
        lengths=lengths,
        models=names,
        seeds=seed_list,
        settings={
            "epochs": epochs, "num_examples": num_examples, "hidden_dim": hidden_dim,
            "batch_size": batch_size, "lr": lr, "vocab_size": vocab_size if spec.inputs ==
            "tokens" else None, "device": device, "threads": threads, "gate_bias": gate_bias, "train_examples":
            sizes[0], "val_examples": sizes[1], "test_examples": sizes[2],
            "grad_examples": min(GRAD_BATCH, sizes[2]),
        },
    )  # fmt: skip
    start = time.perf_counter()
    total = len(lengths) * len(names) * len(seed_list)
    done = 0
    threads_before = torch.get_num_threads()
    try:
        if threads is not None:  # for the gradients and the test pass too, not only fit's steps
            torch.set_num_threads(threads)
        for cell_seed in seed_list:
            for length in lengths:
                splits = load_synthetic(dataclasses.replace(data, length=length, seed=cell_seed))
                for name in names:
                    if progress:
                        progress(SweepProgress(done, total, name, length, cell_seed))
                    cfg = dataclasses.replace(train, seed=cell_seed)
                    cell = _train_cell(
                        name, splits, cfg, length=length, hidden_dim=hidden_dim, gate_bias=gate_bias
                    )
                    result.cells.append(cell)
                    done += 1
                    if progress:
                        progress(SweepProgress(done, total, name, length, cell_seed, cell))
                    if cell.status == "interrupted":
                        raise KeyboardInterrupt
    except KeyboardInterrupt:
        result.status = "interrupted"
    finally:
        torch.set_num_threads(threads_before)
    result.total_seconds = time.perf_counter() - start
    result.summarize()
    return result


def load_result(path: Path | str) -> SyntheticSweepResult:
    """Read a synthetic sweep's result.json (or the folder holding it)."""
    try:
        return SyntheticSweepResult.load(path)
    except FileNotFoundError:
        raise RnnlabError(f"{path} holds no result.json; run rnnlab synthetic first") from None
