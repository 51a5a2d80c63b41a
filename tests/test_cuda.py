"""CUDA: train / evaluate / predict for every preset, bf16 autocast, cuDNN padded == packed, the
gradient diagnostics through cuDNN, no CPU kernels on CUDA tensors, fused Adam, deterministic
reruns, a CUDA-trained run predicting on the CPU, batches gathered on the GPU with no sync.

Tests marked `cuda` are skipped where `torch.cuda.is_available()` is False (CI has no GPU);
`make gpu-check` runs them on a GPU machine. Where a property can be checked without a GPU the
same test also runs on the CPU (the `cpu` parameter) or has a CPU twin (on the meta device,
whose tensors have no values), so the logic is exercised in CI too.

On CUDA, float32 comparisons with the CPU run with TF32 off (`exact_float32`): cuDNN may
otherwise compute the recurrent matmuls in TF32 (10-bit mantissa), which is not a bug.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnlab import api
from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rnnlab.data.batching import DeviceSplit, collate, iterate_batches
from rnnlab.data.encoded import EncodedSplit, EncodedSplits
from rnnlab.models import create_model, kernels, list_models, preset_family
from rnnlab.training import Callback, StepStats, TrainState, fit, predict_logits, snapshot
from rnnlab.training.trainer import make_optimizer, train_one_epoch

HAS_CUDA = torch.cuda.is_available()
NO_GPU = (
    "needs a CUDA GPU: torch.cuda.is_available() is False here; "
    "`make gpu-check` runs these on a GPU machine"
)
ON_CUDA = [pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason=NO_GPU)]
DEVICES = ["cpu", pytest.param("cuda", marks=ON_CUDA)]
PRESETS = list_models()
PACKED = [p for p in PRESETS if "packed" in preset_family(p).sequence_modes]
"""The presets whose family also runs packed sequences (rnn, lstm, gru and their variants)."""

POSITIVE = ["good", "great", "fun", "wonderful", "brilliant", "moving", "superb", "lovely"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "weak", "poor", "tedious"]
NEUTRAL = ["the", "movie", "plot", "actor", "film", "scene", "story", "cast", "and", "a"]


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """TF32 off for cuDNN and cuBLAS inside (restored after), so float32 on the GPU is float32."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def review_rows(n: int, seed: int, words: tuple[int, int] = (30, 50)) -> list[list[Any]]:
    """Header + n reviews of 30-50 words: a quarter polar (by label), the rest neutral."""
    rng = np.random.default_rng(seed)
    rows: list[list[Any]] = [["text", "label"]]
    for i in range(n):
        polar = POSITIVE if i % 2 else NEGATIVE
        size = int(rng.integers(*words))
        text = [*rng.choice(polar, size // 4), *rng.choice(NEUTRAL, size - size // 4)]
        rng.shuffle(text)
        rows.append([" ".join(text), ("negative", "positive")[i % 2]])
    return rows


@pytest.fixture
def reviews(write_csv: Any) -> Path:
    return write_csv(review_rows(160, seed=0), "reviews.csv")


def run_config(dataset: Path, preset: str, device: str, **train: Any) -> RunConfig:
    settings: dict[str, Any] = {
        "epochs": 2,
        "batch_size": 16,
        "lr": 1e-2,
        "patience": None,
        "progress": False,
        "device": device,
    }
    return RunConfig(
        DataConfig(dataset=str(dataset), max_len=40),
        ModelConfig(name=preset, embed_dim=8, hidden_dim=16),
        TrainConfig(**{**settings, **train}),
    )


def random_batch(vocab: int = 30, lengths: tuple[int, ...] = (9, 1, 5, 9, 3, 7)) -> Any:
    rng = np.random.default_rng(1)
    seqs = [rng.integers(2, vocab, n) for n in lengths]
    split = EncodedSplit.from_sequences(seqs, np.arange(len(lengths)) % 2)
    return collate(split, np.arange(len(lengths)))


TEXTS = ["a wonderful and moving film", "dull , tedious and far too long", "the plot"]


# ----- train, evaluate, predict ---------------------------------------------------------------
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("device", DEVICES)
def test_train_evaluate_and_predict_every_preset(
    device: str, preset: str, reviews: Path, tmp_path: Path
) -> None:
    result = api.train(
        run_config(reviews, preset, device), out=tmp_path, name=preset, verbose=False
    )
    assert result.status == "completed" and result.fit.device.startswith(device)
    assert all(p.device.type == device for p in result.model.parameters())
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) for r in result.history)
    assert result.test is not None and 0 <= (result.test.accuracy or 0) <= 1

    metrics = api.evaluate_run(result.run_dir, device=device)
    assert metrics.examples == result.test.examples and np.isfinite(metrics.loss)

    loaded = api.load_run(result.run_dir)
    loaded.model.to(device)
    predictions = api.predict(loaded, TEXTS)  # on `device`: predict follows the model
    assert len(predictions) == len(TEXTS)
    for p in predictions:
        assert p.label in ("negative", "positive")
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_a_run_trained_on_the_device_loads_and_predicts_on_the_cpu(
    device: str, reviews: Path, tmp_path: Path
) -> None:
    """load_run maps the weights to the CPU; the CPU predictions are the device model's."""
    result = api.train(run_config(reviews, "lstm", device), out=tmp_path, name="run", verbose=False)
    with exact_float32():
        loaded = api.load_run(result.run_dir)
        assert all(p.device.type == "cpu" for p in loaded.model.parameters())
        on_cpu = api.predict(loaded, TEXTS)
        loaded.model.to(device)
        on_device = api.predict(loaded, TEXTS)
    for a, b in zip(on_cpu, on_device, strict=True):
        assert a.label == b.label
        for name in a.probabilities:
            assert a.probabilities[name] == pytest.approx(b.probabilities[name], abs=1e-4)


# ----- bf16 autocast --------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.known_answer
@pytest.mark.skipif(not HAS_CUDA, reason=NO_GPU)
@pytest.mark.parametrize("preset", ["lstm", "gru", "bilstm-max"])
def test_bf16_autocast_trains_in_bfloat16_and_learns(preset: str, reviews: Path) -> None:
    from rnnlab.data import load_splits

    config = run_config(reviews, preset, "cuda", amp=True, epochs=6)
    splits = load_splits(config.data)
    torch.manual_seed(0)
    model = create_model(
        preset, vocab_size=splits.vocab_size, num_classes=2, embed_dim=8, hidden_dim=16
    )
    dtypes: set[torch.dtype] = set()
    hook = model.head.register_forward_hook(lambda _m, _i, out: dtypes.add(out.dtype))
    result = fit(model, splits, config.train)
    hook.remove()
    assert result.amp is True and torch.bfloat16 in dtypes  # the head ran under autocast
    assert all(np.isfinite(r["train_loss"]) for r in result.history)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    logits = predict_logits(model, splits.test, amp=True)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    plain = predict_logits(model, splits.test)  # float32
    gap = (logits.softmax(-1) - plain.softmax(-1)).abs().max()
    assert gap < 0.1  # bf16 keeps 8 bits of mantissa: close, not equal (so the same label
    # wherever float32 is surer than that; how often it is depends on the trajectory)


# ----- cuDNN: padded == packed ----------------------------------------------------------------
@pytest.mark.parametrize("preset", PACKED)
@pytest.mark.parametrize("device", DEVICES)
def test_padded_logits_and_gradients_equal_the_packed_path(device: str, preset: str) -> None:
    """On CUDA the padded path is cuDNN on the padded batch (read at length - 1, bidirectional
    runs reversed within each length); packing gives the same logits and gradients."""
    sizes: dict[str, Any] = {"vocab_size": 30, "num_classes": 2, "embed_dim": 8, "hidden_dim": 16}
    torch.manual_seed(0)
    padded = create_model(preset, **sizes, dropout=0.0)
    packed = create_model(preset, **sizes, dropout=0.0, sequence_mode="packed")
    packed.load_state_dict(padded.state_dict())
    batch = random_batch().to(device)
    results = []
    with exact_float32():
        for model in (padded, packed):
            model.to(device).train()  # cuDNN backward needs train mode; dropout is off
            logits = model(batch.tokens, batch.lengths)  # (B, C)
            F.cross_entropy(logits, batch.labels).backward()
            grads = {n: p.grad.detach().cpu() for n, p in model.named_parameters()}
            results.append((logits.detach().cpu(), grads))
    (a, grads_a), (b, grads_b) = results
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for name, grad in grads_a.items():
        torch.testing.assert_close(grad, grads_b[name], rtol=1e-4, atol=1e-6, msg=name)


# ----- diagnostics through cuDNN --------------------------------------------------------------
@pytest.fixture
def long_reviews(write_csv: Any) -> Path:
    return write_csv(review_rows(80, seed=3, words=(40, 60)), "long.csv")


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_flow_and_hidden_states_run_on_the_device(device: str, long_reviews: Path) -> None:
    """cuDNN refuses RNN backward in eval mode; the diagnostics take gradients in train mode
    with dropout off (diagnostics.gradients.gradient_mode). float32 runs through cuDNN; the
    figures equal the CPU's."""
    config = RunConfig(DataConfig(dataset=str(long_reviews)))
    models = ["rnn", "lstm", "gru"]
    flows, states = {}, {}
    with exact_float32():
        for where in dict.fromkeys(["cpu", device]):
            flows[where] = api.diagnose(
                "gradient-flow", models=models, config=config, device=where, seq_len=32,
                batch_size=4, dtype="float32",
            )  # fmt: skip
            states[where] = api.diagnose(
                "hidden-states", models=models, config=config, device=where, per_class=2,
                min_len=30, max_steps=32,
            )  # fmt: skip
    flow, state = flows[device], states[device]
    assert flow.device.startswith(device) and [m.label for m in flow.models] == models
    for model in flow.models:
        x = np.asarray(model.grad_x, dtype=float)
        assert len(x) == 32 and np.isfinite(x).all() and (x > 0).any()
    for ours, cpu in zip(flow.models, flows["cpu"].models, strict=True):
        x, ref = np.asarray(ours.grad_x, float), np.asarray(cpu.grad_x, float)
        np.testing.assert_allclose(x, ref, rtol=2e-3, atol=1e-6 * ref.max())
    for ours, cpu in zip(state.models, states["cpu"].models, strict=True):
        for h, ref_h in zip(ours.h_norms, cpu.h_norms, strict=True):
            np.testing.assert_allclose(h, ref_h, rtol=1e-4, atol=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason=NO_GPU)
def test_cudnn_refuses_backward_in_eval_mode_which_gradient_mode_avoids() -> None:
    """Why the diagnostics use gradient_mode: the failure they avoid is real on this GPU."""
    from rnnlab.diagnostics.gradients import gradient_mode

    model = create_model("lstm", vocab_size=30, num_classes=2, embed_dim=8, hidden_dim=16)
    model.to("cuda").eval()
    batch = random_batch().to("cuda")
    with pytest.raises(RuntimeError, match="training mode"):
        model(batch.tokens, batch.lengths).sum().backward()
    with gradient_mode(model):
        model(batch.tokens, batch.lengths).sum().backward()
    assert not model.training  # restored


# ----- the CPU kernels are for CPU tensors only ------------------------------------------------
def forward_backward_without_cpu_kernels(device: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every preset, forward and backward on `device` with the kernels' entry point replaced by
    one that records its calls; returns the kinds that reached it."""
    calls: list[str] = []
    real = kernels.run_direction

    def recorded(kind: str, *args: Any) -> Any:
        calls.append(kind)
        return real(kind, *args)

    monkeypatch.setattr(kernels, "run_direction", recorded)
    batch = random_batch().to(device)
    for preset in PRESETS:
        model = create_model(preset, vocab_size=30, num_classes=2, embed_dim=8, hidden_dim=16)
        model.to(device).train()
        model(batch.tokens, batch.lengths).sum().backward()
    return calls


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason=NO_GPU)
def test_cpu_kernels_are_never_used_for_cuda_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    for kind in ("rnn", "lstm", "gru"):
        for dtype in (torch.float32, torch.float64, torch.bfloat16):
            assert not kernels.applies(kind, torch.zeros(2, 3, 4, device="cuda", dtype=dtype))
    assert forward_backward_without_cpu_kernels("cuda", monkeypatch) == []


def test_cpu_kernels_apply_only_to_cpu_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU side of the same check: another device type (meta) never reaches the kernels;
    on the CPU every kind the kernels cover does, where they are built (so the recorder above
    would see a misrouted call)."""
    for kind in ("rnn", "lstm", "gru"):
        assert not kernels.applies(kind, torch.zeros(2, 3, 4, device="meta"))
    assert forward_backward_without_cpu_kernels("meta", monkeypatch) == []
    built = kernels.applies("gru", torch.zeros(2, 3, 4))
    on_cpu = forward_backward_without_cpu_kernels("cpu", monkeypatch)
    if built:
        assert set(on_cpu) == set(kernels.KINDS) & {"rnn", "lstm", "gru"}
    else:
        assert on_cpu == []


# ----- fused Adam -----------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason=NO_GPU)
@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_fused_adam_on_cuda_follows_the_per_parameter_loop(name: str) -> None:
    torch.manual_seed(0)
    model = create_model("gru", vocab_size=40, num_classes=2, embed_dim=6, hidden_dim=5).cuda()
    twin = create_model("gru", vocab_size=40, num_classes=2, embed_dim=6, hidden_dim=5).cuda()
    twin.load_state_dict(model.state_dict())
    cfg = TrainConfig(optimizer=name, weight_decay=0.01)
    fast = make_optimizer(model, cfg)
    kind = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    loop = kind(twin.parameters(), lr=cfg.lr, weight_decay=0.01, foreach=False)
    assert isinstance(fast, kind) and fast.defaults["fused"] is True
    batch = random_batch(40).to("cuda")
    start = [p.detach().clone() for p in model.parameters()]
    with exact_float32():
        for _ in range(5):
            for net, opt in ((model, fast), (twin, loop)):
                opt.zero_grad()
                net(batch.tokens, batch.lengths).sum().backward()
                opt.step()
    apart = max(
        float((a - b).abs().max())
        for a, b in zip(model.parameters(), twin.parameters(), strict=True)
    )
    moved = max(float((a - b).abs().max()) for a, b in zip(model.parameters(), start, strict=True))
    assert moved > 1e-3 and apart < 1e-6


# ----- deterministic reruns -------------------------------------------------------------------
def tiny_splits(n: int = 192, seed: int = 0) -> EncodedSplits:
    rng = np.random.default_rng(seed)

    def make(count: int) -> EncodedSplit:
        labels = rng.integers(0, 2, count)
        seqs = [rng.integers(2 + 4 * y, 6 + 4 * y, rng.integers(2, 20)) for y in labels]
        return EncodedSplit.from_sequences(seqs, labels)

    return EncodedSplits(make(n), make(48), make(48), ["low", "high"], vocab_size=10)


@pytest.mark.parametrize("preset", ["lstm", "bigru-max"])
@pytest.mark.parametrize("device", DEVICES)
def test_deterministic_mode_gives_identical_reruns(device: str, preset: str) -> None:
    cfg = TrainConfig(
        epochs=2, batch_size=16, lr=1e-2, patience=None, progress=False, device=device,
        deterministic=True, seed=7,
    )  # fmt: skip

    def run() -> tuple[list[dict[str, Any]], dict[str, torch.Tensor]]:
        torch.manual_seed(7)
        model = create_model(preset, vocab_size=10, num_classes=2, embed_dim=8, hidden_dim=16)
        result = fit(model, tiny_splits(), cfg)
        timing = {"seconds", "train_seconds", "train_tokens_per_s"}
        return [{k: v for k, v in r.items() if k not in timing} for r in result.history], snapshot(
            model
        )

    (h1, w1), (h2, w2) = run(), run()
    assert h1 == h2
    for name, weight in w1.items():
        assert torch.equal(weight, w2[name]), name
    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") in (":4096:8", ":16:8")
    assert not torch.are_deterministic_algorithms_enabled()  # restored after fit


# ----- batches gathered on the GPU, no host-device sync in the step ---------------------------
@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason=NO_GPU)
def test_batches_gathered_on_the_gpu_equal_the_host_collate_without_a_sync() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 80, size=500)
    split = EncodedSplit.from_sequences(
        [rng.integers(2, 1000, n) for n in lengths], rng.integers(0, 4, 500)
    )
    resident = DeviceSplit(split, "cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        gathered = list(iterate_batches(resident, 64, seed=3))
        moved = [b.to("cuda") for b in iterate_batches(split, 64, seed=3)]  # pinned copies
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for a, b, c in zip(iterate_batches(split, 64, seed=3), gathered, moved, strict=True):
        assert b.tokens.is_cuda and b.labels.is_cuda and not b.lengths.is_cuda
        for name in ("tokens", "labels"):
            assert torch.equal(getattr(a, name), getattr(b, name).cpu()), name
            assert torch.equal(getattr(a, name), getattr(c, name).cpu()), name
        assert torch.equal(a.lengths, b.lengths) and torch.equal(a.indices, b.indices)


class MeanTokens(nn.Module):
    """A stand-in that never looks at `lengths` (so it makes no copy of its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 8, padding_idx=0)
        self.head = nn.Linear(8, 2)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (tokens != 0).unsqueeze(-1).float()  # (B, T, 1)
        return self.head((self.embedding(tokens) * mask).sum(1) / mask.sum(1).clamp(min=1))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.argmax(-1)


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason=NO_GPU)
def test_the_training_loop_syncs_only_when_it_reads_losses_back() -> None:
    """With sync_every=5 over 12 steps the loop reads back 3 times (2 transfers each: losses
    and correct counts); the steps themselves (gather, forward, backward, clipping, fused
    Adam) make no synchronizing call."""
    model = MeanTokens().cuda()
    cfg = TrainConfig(batch_size=16, progress=False)
    optimizer = make_optimizer(model, cfg)
    split = DeviceSplit(tiny_splits().train, "cuda")  # 192 texts: 12 steps
    seen: list[int] = []

    class Steps(Callback):
        def on_batch_end(self, state: TrainState, stats: StepStats) -> None:
            seen.append(state.step)

    state = TrainState(model, optimizer, torch.device("cuda"), "classification", 1, 12, "")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train_one_epoch(
                model, split, optimizer, cfg, callbacks=[Steps()], state=state, sync_every=5
            )
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert len(seen) == 12
    assert len(syncs) <= 3 * 2, [str(w.message) for w in syncs]


# ----- make gpu-check: the orchestration, exercised on the CPU ---------------------------------
ROOT = Path(__file__).resolve().parents[1]


def load_gpu_check() -> Any:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def ended(pid: int, wait: float = 10.0) -> bool:
    """Whether process `pid` is gone (or a zombie) within `wait` seconds: a SIGKILL is delivered
    at once but not synchronously."""
    import time

    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.05)
    return False


def test_gpu_check_reports_a_failure_and_a_timeout_and_runs_the_rest(tmp_path: Path) -> None:
    """Each part runs in its own process group under its own timeout: a failing part and one
    that hangs (with a child of its own) are reported, the next parts still run, and a part
    beyond the budget is reported as skipped."""
    import sys

    check = load_gpu_check()
    py = sys.executable
    child_pid = tmp_path / "child.pid"
    hang = (
        "import subprocess, sys; child = subprocess.Popen([sys.executable, '-c', "
        "'import time; time.sleep(120)']); "
        f"open({str(child_pid)!r}, 'w').write(str(child.pid)); child.wait()"
    )
    write = f"import json; json.dump({{'x': 1}}, open({str(tmp_path / 'train.json')!r}, 'w'))"
    parts = [
        check.Part("env", [py, "-c", "raise SystemExit(3)"], 60),
        check.Part("tests", [py, "-c", hang], 2),
        check.Part("train", [py, "-c", write], 60, tmp_path / "train.json"),
        check.Part("epochs", [py, "-c", "print('still runs')"], 60),
    ]
    said: list[str] = []
    outcomes = check.run_parts(parts, tmp_path, dict(os.environ), 120, said.append)
    assert ended(int(child_pid.read_text()))  # the hanging child was killed with its group
    assert [o.status for o in outcomes] == ["failed (exit 3)", "timed out after 2 s", "ok", "ok"]
    assert outcomes[2].data == {"x": 1} and outcomes[3].data is None
    assert "still runs" in (tmp_path / "epochs.log").read_text()
    late = check.run_parts(
        parts[3:], tmp_path, dict(os.environ), check.MIN_SECONDS - 1, said.append
    )
    assert late[0].status.startswith("skipped")
    text = check.table([*outcomes, *late], "all present", "heading")
    assert "failed (exit 3)" in text and "timed out after 2 s" in text and "skipped" in text
    assert text.count("\n| ") == 2 + len(outcomes) + 1  # header, packages, one row per part


def test_gpu_check_reads_junit_counts(tmp_path: Path) -> None:
    check = load_gpu_check()
    xml = tmp_path / "tests.xml"
    xml.write_text(
        '<testsuites><testsuite tests="4" failures="1" errors="0" skipped="1">'
        '<testcase name="a"/><testcase name="b"><failure message="boom&#10;more"/></testcase>'
        '<testcase name="c"><skipped/></testcase><testcase name="d"/></testsuite></testsuites>'
    )
    counts = check.read_result(xml)
    assert (counts["tests"], counts["failures"], counts["skipped"]) == (4, 1, 1)
    assert counts["failed_tests"] == ["b: boom"]
    rows = check.rows_for(check.Outcome("tests", "failed (exit 1)", 3.0, data=counts))
    assert rows[0] == ("cuda tests", "2 passed, 1 failed, 0 errors, 1 skipped")


def dry_run(out: Path, *extra: str) -> Any:
    """gpu_check.py --dry-run writing to `out`, with $OUT (what a lent machine returns) beside."""
    import subprocess
    import sys

    lent = out.parent / f"{out.name}-lent"
    lent.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run", "--out",
         str(out), *extra],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OUT": str(lent)},
    )  # fmt: skip


def test_gpu_check_dry_run_of_two_parts_writes_the_table(tmp_path: Path) -> None:
    """The quick end-to-end check of `gpu_check.py --dry-run` (the env and epoch parts only,
    on the CPU): the table on stdout and in the files, the figures from the child's JSON."""
    out = tmp_path / "out"
    done = dry_run(out, "--parts", "env,epochs")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    text = (out / "gpu-check.md").read_text()
    assert text in done.stdout and "| env | ok" in text and "| epochs | ok" in text
    assert "no CUDA device" in text and "torch " + torch.__version__ in text
    lines = [line for line in text.splitlines() if "s / epoch" in line]
    assert len(lines) == 3 and "target" not in text  # a limited run is not the target's
    assert "bf16 asked, float32 off CUDA" in lines[2]
    record = __import__("json").loads((out / "gpu-check.json").read_text())
    assert [p["name"] for p in record["parts"]] == ["env", "epochs"]
    epochs = record["parts"][1]["data"]
    assert epochs["max_len"] == 30 and epochs["examples"] == 160
    for row in epochs["presets"]:
        assert row["epoch_s"] > 0 and row["examples"] == 160 and 0 <= row["val_accuracy"] <= 1
    lent = tmp_path / "out-lent"  # $OUT: the table, the record and one log of every part
    assert (lent / "gpu-check.md").read_text() == text and (lent / "gpu-check.json").is_file()
    assert (lent / "gpu-check.log").read_text().count("\n===== ") == 2
    bad = dry_run(tmp_path / "x", "--parts", "env,nonsense")
    assert bad.returncode != 0 and "unknown part" in bad.stderr


@pytest.mark.gpu_dry_run
def test_gpu_check_dry_run_exercises_every_part_on_the_cpu(tmp_path: Path) -> None:
    """`gpu_check.py --dry-run`: every part on the CPU with tiny settings, one table."""
    done = dry_run(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    text = (tmp_path / "gpu-check.md").read_text()
    assert text in done.stdout
    record = __import__("json").loads((tmp_path / "gpu-check.json").read_text())
    assert [p["name"] for p in record["parts"]] == ["env", "tests", "epochs", "train", "efficiency"]
    assert all(p["status"] == "ok" for p in record["parts"]), record["parts"]
    tests = record["parts"][1]["data"]
    assert tests["tests"] == tests["skipped"] > 0 and tests["failures"] == tests["errors"] == 0
    assert "| tests | ok" in text and "skipped" in text
    assert "lstm, batch 8" in text and "s / epoch" in text and "GFLOP/s" in text
    epochs = record["parts"][2]["data"]
    assert [r["preset"] for r in epochs["presets"]] == ["lstm", "gru", "lstm"]
    assert all(r["epoch_s"] > 0 and r["examples"] == epochs["examples"] for r in epochs["presets"])
    assert (tmp_path.parent / f"{tmp_path.name}-lent" / "gpu-check.log").read_text().count(
        "\n===== "
    ) == 5
