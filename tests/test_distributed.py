"""Data-parallel training (torch.distributed + DDP, launched by torchrun): the sharding of the
batches, 2 gloo processes equal to one process with the same global batch (every registry
model), the CLI's `--nproc` run folder, and the faults (a killed rank, SIGTERM, resume with the
same and another world size). Every multi-process test runs under a timeout."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from rnnlab import api
from rnnlab.cli import main
from rnnlab.config import TrainConfig
from rnnlab.data.batching import BucketBatchSampler, Shard, iterate_batches
from rnnlab.data.encoded import EncodedSplit, EncodedSplits
from rnnlab.errors import RnnlabError
from rnnlab.models import create_model, list_models
from rnnlab.training import distributed, evaluate, fit, launcher
from rnnlab.training.checkpoint import load_state_dict, snapshot

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="POSIX signals and /proc")
JOB_TIMEOUT = 120
VOCAB, CLASSES = 30, 3
CFG = TrainConfig(
    epochs=1, batch_size=16, lr=1e-2, clip_norm=0.05, patience=None, progress=False, threads=1
)
"""A global batch of 16 over 97 examples: 7 steps, the last with 1 example (a stand-in on
rank 1); clipping at 0.05 acts at every step, so it must see the global gradient."""


# ----- the shares of the batches --------------------------------------------------------------
def test_slices_of_every_batch_cover_it_once_with_weights_that_make_the_global_mean() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.permutation(100)[:n] for n in (16, 16, 9, 3, 1)]
    for world in (2, 3, 4):
        shares = [Shard(rank, world).take(batches) for rank in range(world)]
        assert {len(s) for s in shares} == {len(batches)}  # the same number of steps everywhere
        for step, batch in enumerate(batches):
            parts = [shares[rank][step] for rank in range(world)]
            real = [p for p in parts if not p[2]]
            np.testing.assert_array_equal(np.concatenate([p[0] for p in real]), batch)
            # DDP averages over the ranks: sum(w_r * mean_r) / world is the global batch mean
            # when w_r = world * n_r / n
            assert all(w == pytest.approx(world * len(i) / len(batch)) for i, w, _ in real)
            assert sum(w for _, w, _ in parts) == pytest.approx(world)
            assert all(w == 0 and len(i) == 1 for i, w, stand_in in parts if stand_in)
            assert len(real) == min(world, len(batch))


def test_evaluation_deals_whole_batches_out_once() -> None:
    batches = [np.arange(i * 4, i * 4 + 4) for i in range(7)]
    dealt = [Shard(rank, 3, whole_batches=True).take(batches) for rank in range(3)]
    assert [len(d) for d in dealt] == [3, 2, 2]
    seen = sorted(int(x) for d in dealt for indices, w, _ in d for x in indices)
    assert seen == list(range(28))


def test_sharded_batches_are_the_single_process_batches_of_each_epoch() -> None:
    split = tiny_splits().train
    for epoch in (1, 2):
        whole = BucketBatchSampler(split.lengths, 16, seed=3)
        whole.set_epoch(epoch)
        ranks = [
            list(iterate_batches(split, 16, seed=3, epoch=epoch, shard=Shard(r, 2)))
            for r in range(2)
        ]
        assert len(ranks[0]) == len(ranks[1]) == len(whole)
        for step, expected in enumerate(whole.batches()):
            got = [b.indices.numpy() for b in (ranks[0][step], ranks[1][step]) if not b.stand_in]
            np.testing.assert_array_equal(np.concatenate(got), expected)


def test_a_broken_process_group_is_one_line_naming_the_rank() -> None:
    world = distributed.World(rank=0, size=2, local_rank=0)
    error = RuntimeError(
        "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer "
        "[127.0.0.1]:13977. This is typically caused by a remote worker crashing.\nmore"
    )
    with pytest.raises(distributed.PeerLost) as caught, distributed.peer_errors(world, "; r"):
        raise error
    message = str(caught.value)
    assert "\n" not in message and "rank 0 of 2" in message and message.endswith("; r")
    assert "Connection closed by peer [127.0.0.1]:13977" in message
    with pytest.raises(RuntimeError, match="unrelated"), distributed.peer_errors(world):
        raise RuntimeError("unrelated")


class _Failure:
    def __init__(self, exitcode: int, pid: int = 7, timestamp: int = 0) -> None:
        self.exitcode, self.pid, self.timestamp = exitcode, pid, timestamp

    def signal_name(self) -> str:
        return signal.Signals(-self.exitcode).name


def test_the_launcher_names_the_rank_that_died_and_leaves_reported_errors_alone() -> None:
    killed = {0: _Failure(-signal.SIGTERM), 1: _Failure(-signal.SIGKILL, pid=42)}
    with pytest.raises(RnnlabError, match=r"rank 1 of 2 \(pid 42\) was killed by SIGKILL"):
        launcher._report(killed, 2, "runs/x")
    assert launcher._report({0: _Failure(2), 1: _Failure(-signal.SIGTERM)}, 2, None) == 2
    assert launcher._report({0: _Failure(130), 1: _Failure(130)}, 2, None) == 130


def test_study_says_in_one_line_that_it_runs_in_one_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["study", "--nproc", "2", "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "runs in one process" in err and "--nproc" in err


def test_nproc_is_refused_inside_a_torchrun_job(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--dataset", "imdb", "--nproc", "2"]) == 2
    assert "under torchrun leave it out" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["abc", "0", "nan"])
def test_a_bad_dist_timeout_is_said_once(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RNNLAB_DIST_TIMEOUT", value)
    monkeypatch.setattr(launcher, "launch", lambda *a, **k: pytest.fail("ranks started"))
    assert main(["train", "--dataset", "missing.csv", "--nproc", "2"]) == 2  # before the data
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RNNLAB_DIST_TIMEOUT" in err, err
    monkeypatch.setenv("WORLD_SIZE", "2")  # under torchrun: rank 0 says it, the others do not
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(SystemExit) as quiet:  # a rank but the first exits with nothing said
        main(["train", "--dataset", "missing.csv"])
    assert quiet.value.code == 2 and not capsys.readouterr().err
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "--dataset", "missing.csv"]) == 2
    assert capsys.readouterr().err.count("RNNLAB_DIST_TIMEOUT") == 1


# ----- two gloo processes == one process ---------------------------------------------------------
def tiny_splits() -> EncodedSplits:
    """97 training texts (so the last global batch of 16 has one example), 40 val, 3 classes;
    the label is the most frequent of three marker ids."""
    rng = np.random.default_rng(0)

    def split(n: int) -> EncodedSplit:
        labels = rng.integers(0, CLASSES, n)
        texts = []
        for label in labels:
            text = rng.integers(4, VOCAB, int(rng.integers(1, 20)))
            text[rng.random(len(text)) < 0.4] = 1 + label
            texts.append(text)
        return EncodedSplit.from_sequences(texts, labels)

    names = [str(c) for c in range(CLASSES)]
    return EncodedSplits(split(97), split(40), split(24), names, VOCAB)


def tiny_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    settings: dict[str, Any] = {"embed_dim": 8, "hidden_dim": 8, "dropout": 0.0}
    if name == "transformer":
        settings["num_heads"] = 2
    if name == "bow":
        settings["hash_buckets"] = 64
    return create_model(name, vocab_size=VOCAB, num_classes=CLASSES, **settings)


def _rank(rank: int, size: int, port: int, out: str, commands: list[list[str]]) -> None:
    """One rank of the job: every registry model trained with `world`, and evaluated; then
    the rnnlab `commands`, as torchrun would run them on this rank."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port), RNNLAB_DIST_TIMEOUT="60",
    )  # fmt: skip
    torch.set_num_threads(1)
    splits = tiny_splits()
    results: dict[str, Any] = {}
    with distributed.session() as world:
        assert world is not None and world.size == size
        for name in list_models():
            model = tiny_model(name)
            fitted = fit(model, splits, CFG, world=world)
            ev = evaluate(model, splits.val, batch_size=8, world=world)
            results[name] = {
                "weights": snapshot(model),
                "history": fitted.history,
                "eval": (ev.loss, ev.accuracy, ev.predictions, ev.probabilities),
            }
        if world.main:
            torch.save(results, out)
        for command in commands:
            assert main(command) == 0


def run_job(size: int, out: Path, commands: list[list[str]]) -> dict[str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.start_processes(
        _rank, args=(size, port, str(out), commands), nprocs=size, join=False,
        start_method="spawn",
    )  # fmt: skip
    deadline = time.monotonic() + JOB_TIMEOUT
    try:
        while not context.join(timeout=1):
            assert time.monotonic() < deadline, "the job did not finish in time"
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return torch.load(out, weights_only=False)


@pytest.fixture(scope="module")
def job(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Two ranks: the registry models, then `rnnlab train` (batch 16 per rank) into ddp/ and
    `rnnlab compare` of two models into compare/."""
    root = tmp_path_factory.mktemp("job")
    compare = ["compare", "--models", "rnn,gru", *run_args(corpus, root, "compare", epochs=1)]
    results = run_job(2, root / "results.pt", [train_args(corpus, root, "ddp"), compare])
    return results, root / "ddp"


@pytest.fixture(scope="module")
def two_ranks(job: tuple[dict[str, Any], Path]) -> dict[str, Any]:
    return job[0]


@pytest.fixture(scope="module")
def ddp_run(job: tuple[dict[str, Any], Path]) -> Path:
    return job[1]


@pytest.mark.parametrize("name", list_models())
def test_two_ranks_train_the_weights_of_one_process_with_the_global_batch(
    name: str, two_ranks: dict[str, Any]
) -> None:
    splits = tiny_splits()
    model = tiny_model(name)
    fitted = fit(model, splits, CFG)
    ddp = two_ranks[name]
    for key, value in snapshot(model).items():
        got = ddp["weights"][key]
        if key.endswith("qkv.bias"):  # the attention key bias: zero gradient (softmax is
            keys = slice(len(value) // 3, 2 * len(value) // 3)  # shift-invariant), so Adam
            got, value = got.clone(), value.clone()  # steps on float noise of ~1e-10 that
            got[keys] = value[keys] = 0  # one and two processes sum differently
        torch.testing.assert_close(got, value, rtol=1e-4, atol=2e-6, msg=key)
    assert ddp["history"][0]["train_loss"] == pytest.approx(fitted.history[0]["train_loss"])
    assert ddp["history"][0]["train_tokens"] == fitted.history[0]["train_tokens"]
    assert ddp["history"][0]["train_accuracy"] == fitted.history[0]["train_accuracy"]

    # the same weights evaluated by one process: exactly the metrics the two ranks gathered
    model.load_state_dict(ddp["weights"])
    one = evaluate(model, splits.val, batch_size=8)
    loss, accuracy, predictions, probabilities = ddp["eval"]
    assert (one.loss, one.accuracy) == (loss, accuracy)
    np.testing.assert_array_equal(one.predictions, predictions)
    np.testing.assert_array_equal(one.probabilities, probabilities)


# ----- the CLI: `rnnlab train --nproc 2`, its run folder, faults, resume ------------------------------
EPOCHS = 5


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """900 labelled texts of 8-40 words: a few tenths of a second per epoch."""
    words = {"positive": ["good", "great", "fun", "moving"], "negative": ["bad", "dull", "weak"]}
    neutral = ["the", "movie", "plot", "actor", "film", "scene", "story", "cast", "and", "a"]
    rng = np.random.default_rng(0)
    lines = ["text,label"]
    for i in range(900):
        label = "positive" if i % 2 else "negative"
        text = [*rng.choice(words[label], 3), *rng.choice(neutral, int(rng.integers(5, 37)))]
        rng.shuffle(text)
        lines.append(f"{' '.join(text)},{label}")
    path = tmp_path_factory.mktemp("data") / "texts.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_args(
    corpus: Path, out: Path, name: str, batch_size: int = 16, epochs: int = EPOCHS
) -> list[str]:
    return [
        "--dataset", str(corpus), "--embed-dim", "8", "--hidden-dim", "16", "--max-len", "40",
        "--epochs", str(epochs), "--batch-size", str(batch_size), "--patience", "none",
        "--threads", "1", "--no-progress", "--out", str(out), "--name", name,
    ]  # fmt: skip


def train_args(corpus: Path, out: Path, name: str, batch_size: int = 16) -> list[str]:
    return ["train", "--model", "gru", *run_args(corpus, out, name, batch_size)]


def rnnlab(args: list[str], cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "RNNLAB_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "rnnlab", *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str], timeout: float = JOB_TIMEOUT) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out, err


def children(pid: int) -> dict[int, int]:
    """{RANK: pid} of the rank processes under the launcher `pid` (from /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        rank = [e for e in environ if e.startswith(b"RANK=")]
        if int(fields[1]) == pid and rank:
            found[int(rank[0][5:])] = int(stat.parent.name)
    return found


def wait_for_checkpoint(proc: subprocess.Popen[str], run_dir: Path) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT
    while not (run_dir / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.002)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_state_dict(run_dir / "model.pt")


def test_a_job_writes_the_run_folder_of_one_process_with_the_global_batch(
    ddp_run: Path, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*train_args(corpus, tmp_path, "one", batch_size=32)]) == 0
    one = tmp_path / "one"
    assert sorted(p.name for p in ddp_run.iterdir()) == sorted(p.name for p in one.iterdir())
    for key, value in weights(one).items():
        torch.testing.assert_close(weights(ddp_run)[key], value, rtol=1e-4, atol=1e-5, msg=key)
    summary = json.loads((ddp_run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2
    assert summary["batch_size_per_rank"] == 16 and "2 ranks (gloo)" in summary["device"]
    assert "batch_size: 32" in (ddp_run / "config.yaml").read_text()  # the global batch
    assert json.loads((one / "summary.json").read_text())["world_size"] == 1
    capsys.readouterr()
    assert main(["predict", str(ddp_run), "great fun", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] in ("positive", "negative")


def test_compare_in_a_job_trains_every_model_data_parallel(ddp_run: Path) -> None:
    compare = ddp_run.parent / "compare"
    rows = json.loads((compare / "compare.json").read_text())["rows"]
    assert [row["model"] for row in rows] == ["rnn", "gru"]
    for model in ("rnn", "gru"):
        summary = json.loads((compare / model / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["world_size"] == 2


@pytest.mark.slow
def test_a_killed_rank_ends_the_job_in_one_line_and_one_process_resumes_it(
    ddp_run: Path, corpus: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "killed"
    proc = rnnlab([*train_args(corpus, tmp_path, "killed"), "--nproc", "2"], tmp_path)
    wait_for_checkpoint(proc, run_dir)
    ranks = children(proc.pid)
    os.kill(ranks[0], signal.SIGSTOP)  # hold the job still while rank 1 dies
    os.kill(ranks[1], signal.SIGKILL)
    os.kill(ranks[0], signal.SIGCONT)
    code, _, err = finish(proc, timeout=60)  # raises TimeoutExpired if the job hangs
    lines = [line for line in err.splitlines() if line.startswith("rnnlab:")]
    assert code == 2 and len(lines) == 1, err
    assert "rank 1 of 2" in lines[0] and "SIGKILL" in lines[0]
    assert f"rnnlab train --resume {run_dir}" in lines[0]
    assert not any(p.exists() for p in (Path(f"/proc/{pid}") for pid in ranks.values()))
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"

    result = api.resume(run_dir, verbose=False)  # one process: the other world size
    assert result.status == "completed" and result.summary["world_size"] == 1
    assert len(result.history) == EPOCHS
    for key, value in weights(ddp_run).items():
        torch.testing.assert_close(weights(run_dir)[key], value, rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.slow
def test_sigterm_saves_like_one_process_and_the_same_world_size_resumes_bit_identically(
    ddp_run: Path, corpus: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "stopped"
    proc = rnnlab([*train_args(corpus, tmp_path, "stopped"), "--nproc", "2"], tmp_path)
    wait_for_checkpoint(proc, run_dir)
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc, timeout=60)
    assert code == 130, err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and (run_dir / "checkpoint.pt").exists()
    assert f"rnnlab train --resume {run_dir}" in err

    code, out, err = finish(rnnlab(["train", "--resume", str(run_dir), "--nproc", "2"], tmp_path))
    assert code == 0, err
    assert out.count("saved ") == 1 and out.count(f"epoch {EPOCHS}/") == 1  # rank 0 alone prints
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    for key, value in weights(ddp_run).items():
        assert torch.equal(weights(run_dir)[key], value), key
