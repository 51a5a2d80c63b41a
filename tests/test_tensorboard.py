"""TensorBoard logging: the event files read back with tensorboard's own reader hold the
scalars the loop computed, at the right steps; without --tensorboard nothing changes and
nothing is imported; without the package, one line and exit 2 before any folder exists."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rnnlab import api
from rnnlab.cli import build_parser, main
from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rnnlab.errors import RnnlabError
from rnnlab.study import study_settings
from rnnlab.training import Callback, StepStats, TrainState
from rnnlab.training import tensorboard as tb

WORDS = ["good", "bad", "great", "awful", "film", "plot", "actor", "the", "a", "and"]
TINY = ["--max-len", "16", "--embed-dim", "8", "--hidden-dim", "8", "--batch-size", "16"]


@pytest.fixture
def corpus(write_csv: Any) -> Path:
    """200 texts of 20 words, label = whether "good" outnumbers "bad" (learnable, not trivial)."""
    rng = np.random.default_rng(0)
    rows: list[list[Any]] = [["text", "label"]]
    for _ in range(200):
        words = list(rng.choice(WORDS, 20))
        rows.append(
            [" ".join(words), "pos" if words.count("good") >= words.count("bad") else "neg"]
        )
    return write_csv(rows)


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] as TensorBoard reads the folder."""
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


class _Recorder(Callback):
    """What the loop did, step by step, measured independently of the logger."""

    def __init__(self) -> None:
        self.norms: list[float] = []
        self.stats: list[StepStats] = []
        self.lrs: list[float] = []

    def on_after_backward(self, state: TrainState, batch: Any) -> None:
        grads = [p.grad.double() for p in state.model.parameters() if p.grad is not None]
        self.norms.append(math.sqrt(sum(float((g**2).sum()) for g in grads)))

    def on_batch_end(self, state: TrainState, stats: StepStats) -> None:
        self.stats.append(stats)
        self.lrs.append(float(state.optimizer.param_groups[0]["lr"]))


def config(corpus: Path, **train: Any) -> RunConfig:
    return RunConfig(
        DataConfig(dataset=str(corpus), max_len=16),
        ModelConfig(name="lstm", embed_dim=8, hidden_dim=8),
        TrainConfig(
            epochs=3, batch_size=16, lr=0.01, device="cpu", progress=False, patience=None,
            schedule="cosine", **train,
        ),
    )  # fmt: skip


def test_train_writes_the_scalars_at_their_steps(corpus: Path, tmp_path: Path) -> None:
    recorder = _Recorder()
    cfg = config(corpus, tensorboard=True, tensorboard_every=4)
    run = api.train(cfg, out=tmp_path, name="tb", callbacks=[recorder], verbose=False)
    found = scalars(run.run_dir / "tensorboard")
    history = run.history
    steps = len(recorder.stats)
    per_epoch = steps // len(history)
    assert steps == 3 * per_epoch and per_epoch == 10  # 160 training texts, batches of 16

    # per epoch: step = epoch, values = metrics.jsonl's
    epochs = [r["epoch"] for r in history]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1", "lr"):
        assert [s for s, _ in found[f"epoch/{key}"]] == epochs
        assert [v for _, v in found[f"epoch/{key}"]] == pytest.approx([r[key] for r in history])
    tokens = [v for _, v in found["epoch/tokens_per_s"]]
    assert tokens == pytest.approx([r["train_tokens_per_s"] for r in history], rel=1e-6)
    epoch_norms = [v for _, v in found["epoch/grad_norm"]]
    expected = [np.mean(recorder.norms[i * per_epoch : (i + 1) * per_epoch]) for i in range(3)]
    assert epoch_norms == pytest.approx(expected, rel=1e-5)

    # every 4 optimizer steps: step = the global step, values over those 4 steps
    window = list(range(4, steps + 1, 4))
    for tag in ("loss", "accuracy", "lr", "grad_norm", "tokens_per_s"):
        assert [s for s, _ in found[f"step/{tag}"]] == window, tag
    for i, (step, loss) in enumerate(found["step/loss"]):
        part = recorder.stats[step - 4 : step]
        mean = sum(s.loss * s.examples for s in part) / sum(s.examples for s in part)
        assert loss == pytest.approx(mean, rel=1e-5)
        correct = sum(s.correct or 0 for s in part) / sum(s.examples for s in part)
        assert found["step/accuracy"][i][1] == pytest.approx(correct, rel=1e-6)
        assert found["step/grad_norm"][i][1] == pytest.approx(
            np.mean(recorder.norms[step - 4 : step]), rel=1e-5
        )
        assert found["step/lr"][i][1] == pytest.approx(recorder.lrs[step - 1], rel=1e-6)
        assert found["step/tokens_per_s"][i][1] > 0
    lrs = [v for _, v in found["step/lr"]]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > lrs[-1]  # the cosine schedule


def test_cli_compare_writes_one_folder_per_model_and_train_without_the_flag_none(
    corpus: Path, tmp_path: Path
) -> None:
    code = main(
        ["compare", "--dataset", str(corpus), "--models", "rnn,gru", *TINY, "--epochs", "1",
         "--tensorboard", "--tensorboard-every", "3", "--out", str(tmp_path), "--name", "c",
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    for model in ("rnn", "gru"):
        found = scalars(tmp_path / "c" / model / "tensorboard")
        assert [s for s, _ in found["epoch/train_loss"]] == [1]
        assert [s for s, _ in found["step/loss"]] == [3, 6, 9]  # 10 steps, every 3
    assert main(["train", "--dataset", str(corpus), "--model", "rnn", *TINY, "--epochs", "1",
                 "--out", str(tmp_path), "--name", "plain", "--no-progress"]) == 0  # fmt: skip
    assert not (tmp_path / "plain" / "tensorboard").exists()


def test_no_import_cost_without_the_flag(corpus: Path, tmp_path: Path) -> None:
    script = (
        "import sys; from rnnlab.cli import main\n"
        f"code = main(['train', '--dataset', {str(corpus)!r}, '--model', 'rnn', '--max-len', '16',"
        f" '--embed-dim', '4', '--hidden-dim', '4', '--epochs', '1', '--out', {str(tmp_path)!r},"
        " '--name', 'r', '--no-progress'])\n"
        "loaded = [m for m in sys.modules if m == 'tensorboard' or m.startswith(('tensorboard.',"
        " 'torch.utils.tensorboard'))]\n"
        "print(code, loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "0 []"


@pytest.mark.parametrize("verb", ["train", "compare", "study"])
def test_missing_package_is_one_line_and_exit_2_before_any_folder(
    verb: str, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(tb, "available", lambda: False)
    out = tmp_path / "out"
    argv = {
        "train": ["train", "--model", "rnn", "--out", str(out), "--name", "x"],
        "compare": ["compare", "--models", "rnn", "--out", str(out), "--name", "x"],
        "study": ["study", "--quick", "--out", str(out / "x")],
    }[verb]
    assert main([*argv, "--dataset", str(corpus), "--tensorboard"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'rnnlab[tensorboard]'" in err
    assert not out.exists()


def test_settings_checks_and_the_study_passes_it_on() -> None:
    with pytest.raises(RnnlabError, match="tensorboard_every"):
        TrainConfig(tensorboard_every=0)
    args = build_parser().parse_args(["train", "--tensorboard", "--tensorboard-every", "7"])
    assert args.train__tensorboard is True and args.train__tensorboard_every == 7
    args = build_parser().parse_args(["study", "--tensorboard"])
    assert args.train__tensorboard is True
    settings = study_settings("imdb", quick=True, tensorboard=True, tensorboard_every=5)
    train = settings.run_config().train
    assert train.tensorboard is True and train.tensorboard_every == 5
    # an output option: a study resumed with or without it has the same settings
    assert settings.to_dict() == study_settings("imdb", quick=True).to_dict()
    assert study_settings("imdb").run_config().train.tensorboard is False


def test_gradient_flow_curve_goes_to_the_runs_tensorboard(corpus: Path, tmp_path: Path) -> None:
    run = api.train(with_epochs(config(corpus, tensorboard=True), 1), out=tmp_path, name="g")
    plain = api.train(with_epochs(config(corpus), 1), out=tmp_path, name="p")
    flow = api.diagnose(
        "gradient-flow", runs=[run.run_dir, plain.run_dir], seq_len=12, batch_size=4
    )
    found = scalars(run.run_dir / "tensorboard")
    model = flow.models[0]
    for key, values in (("x", model.grad_x), ("h", model.grad_h), ("c", model.grad_c)):
        assert values is not None
        series = found[f"gradient_flow/grad_{key}_T12"]
        assert [s for s, _ in series] == [t for t, v in enumerate(values) if v is not None]
        assert [v for _, v in series] == pytest.approx(
            [v for v in values if v is not None], rel=1e-6
        )
    assert not (plain.run_dir / "tensorboard").exists()  # a run trained without the flag: none


def with_epochs(cfg: RunConfig, epochs: int) -> RunConfig:
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=epochs))
