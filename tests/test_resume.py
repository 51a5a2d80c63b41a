"""Never lose a run: per-epoch checkpoints, resume after SIGKILL and SIGTERM in real processes
(bit-identical to a run that never stopped), a second signal while saving, --overwrite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rnnlab import api
from rnnlab.cli import build_parser, main
from rnnlab.cli.options import run_config_from_args
from rnnlab.errors import RnnlabError
from rnnlab.training import Callback, TrainState
from rnnlab.training.checkpoint import Checkpoint, load_state_dict

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
EPOCHS = 4
TIMING = {"seconds", "train_seconds", "train_tokens_per_s"}
WORDS = {
    "positive": ["good", "great", "fun", "wonderful", "brilliant", "moving"],
    "negative": ["bad", "awful", "boring", "dull", "terrible", "weak"],
}
NEUTRAL = ["the", "movie", "plot", "actor", "film", "scene", "story", "cast", "and", "a"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,600 labelled texts of 40 words: a few tenths of a second per epoch."""
    rng = np.random.default_rng(0)
    lines = ["text,label"]
    for i in range(1600):
        label = "positive" if i % 2 else "negative"
        words = [*rng.choice(WORDS[label], 4), *rng.choice(NEUTRAL, 36)]
        rng.shuffle(words)
        lines.append(f"{' '.join(words)},{label}")
    path = tmp_path_factory.mktemp("data") / "texts.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train_args(corpus: Path, out: Path, name: str) -> list[str]:
    return [
        "train", "--dataset", str(corpus), "--model", "lstm", "--embed-dim", "16",
        "--hidden-dim", "32", "--max-len", "40", "--epochs", str(EPOCHS), "--batch-size", "32",
        "--patience", "none", "--dropout", "0.2", "--threads", "1", "--no-progress",
        "--out", str(out), "--name", name,
    ]  # fmt: skip


def rnnlab(args: list[str], cache: Path, **kw: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "RNNLAB_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "rnnlab", *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def stop_after_first_epoch(proc: subprocess.Popen[str], run_dir: Path) -> int:
    """Freeze the process as soon as epoch 1's checkpoint exists; return its epoch."""
    deadline = time.monotonic() + 240
    while not (run_dir / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGSTOP)
    return Checkpoint.load(run_dir / "checkpoint.pt").epoch


def records(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in lines]


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = load_state_dict(a / "model.pt"), load_state_dict(b / "model.pt")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (a / "model.pt").read_bytes() == (b / "model.pt").read_bytes()
    assert records(a) == records(b) and len(records(a)) == EPOCHS
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sa["status"] == sb["status"] == "completed"
    assert sa["test"] == sb["test"] and sa["best_epoch"] == sb["best_epoch"]


@pytest.fixture(scope="module")
def uninterrupted(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    cache = tmp_path_factory.mktemp("cache")
    code, _, err = finish(rnnlab(train_args(corpus, out, "full"), cache))
    assert code == 0, err
    return out / "full"


@pytest.mark.slow
def test_sigkill_after_an_epoch_then_resume_is_bit_identical(
    corpus: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    cache = uninterrupted.parent.parent / "cache-kill"
    run_dir = tmp_path / "killed"
    proc = rnnlab(train_args(corpus, tmp_path, "killed"), cache)
    epoch = stop_after_first_epoch(proc, run_dir)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert 1 <= epoch < EPOCHS, "the run must be killed in the middle"
    assert not (run_dir / "summary.json").exists() and not (run_dir / "model.pt").exists()
    code, _, err = finish(rnnlab(["train", "--resume", str(run_dir)], cache))
    assert code == 0, err
    assert_same_run(uninterrupted, run_dir)


@pytest.mark.slow
def test_sigterm_saves_like_ctrl_c_and_the_run_resumes(
    corpus: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    cache = uninterrupted.parent.parent / "cache-term"
    run_dir = tmp_path / "stopped"
    proc = rnnlab(train_args(corpus, tmp_path, "stopped"), cache)
    stop_after_first_epoch(proc, run_dir)
    os.kill(proc.pid, signal.SIGTERM)
    os.kill(proc.pid, signal.SIGCONT)
    code, _, err = finish(proc)
    assert code == 130 and "--resume" in err and "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert api.load_run(run_dir).model is not None  # the best weights so far are usable
    code, _, err = finish(rnnlab(["train", "--resume", str(run_dir)], cache))
    assert code == 0, err
    assert_same_run(uninterrupted, run_dir)


@pytest.mark.slow
def test_a_second_signal_while_saving_never_leaves_an_unloadable_run(
    corpus: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    run_dir = tmp_path / "twice"
    proc = rnnlab(train_args(corpus, tmp_path, "twice"), cache)
    stop_after_first_epoch(proc, run_dir)
    os.kill(proc.pid, signal.SIGTERM)
    os.kill(proc.pid, signal.SIGCONT)
    time.sleep(0.05)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
    code, _, err = finish(proc)
    # 130, or killed by the SIGINT when it lands after the files were written, at exit
    assert code in (130, -signal.SIGINT) and "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    api.load_run(run_dir)  # loadable, and resumable:
    code, _, err = finish(rnnlab(["train", "--resume", str(run_dir)], cache))
    assert code == 0, err


def test_resume_and_overwrite_from_the_cli(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = train_args(corpus, tmp_path, "run")
    args[args.index("--epochs") + 1] = "1"
    assert main(args) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "run")]) == 2
    assert "completed run; nothing to resume" in capsys.readouterr().err
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err  # the name is taken: say how to replace it
    assert main([*args, "--overwrite"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "run"), "--epochs", "3"]) == 2
    assert "drop --epochs" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    named = [*args[:-1], "mine", "--overwrite"]
    assert main(named) == 2
    assert "not an rnnlab run folder" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


class FailAtEpoch(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        if state.epoch == self.epoch:
            raise RnnlabError("the disk filled up (simulated)")


def test_a_failed_run_resumes_without_removing_anything(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = train_args(corpus, tmp_path, "failed")
    config = run_config_from_args(build_parser().parse_args(args))
    with pytest.raises(RnnlabError, match="disk filled up"):
        api.train(config, out=tmp_path, name="failed", callbacks=[FailAtEpoch(2)], verbose=False)
    run_dir = tmp_path / "failed"
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    assert Checkpoint.load(run_dir / "checkpoint.pt").epoch == 2  # finished epochs are kept
    with pytest.raises(RnnlabError, match=r"failed run .* resume it"):
        api.load_run(run_dir)
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert len(records(run_dir)) == EPOCHS


def test_identical_runs_write_identical_model_files(corpus: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        args = train_args(corpus, tmp_path, name)
        args[args.index("--epochs") + 1] = "1"
        assert main(args) == 0
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()
    assert (tmp_path / "a" / "checkpoint.pt").is_file()


def test_interrupt_once_holds_the_second_signal_until_the_block_ends() -> None:
    from rnnlab.training.signals import interrupt_once

    finished = False
    with pytest.raises(KeyboardInterrupt), interrupt_once() as received:
        with pytest.raises(KeyboardInterrupt):  # the first stops the work
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGINT)  # the second is held ...
        time.sleep(0.05)
        finished = True  # ... so the saving goes on
    assert finished and received == [signal.SIGTERM, signal.SIGINT]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored
