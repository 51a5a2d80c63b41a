"""Pretrained vectors: bundled GloVe 6B 50-d and GloVe-format text files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rnnlab.errors import RnnlabError
from rnnlab.models import count_parameters, create_model
from rnnlab.models.embeddings import load_pretrained

ITOS = ["<pad>", "<unk>", "the", "movie", "Great", "zzqqxxunseen"]


def _glove_file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "vectors.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_text_file_rows_align_with_the_vocabulary(tmp_path: Path) -> None:
    path = _glove_file(
        tmp_path,
        ["the 1 2 3", "movie 4 5 6", "great 7 8 9", "Great 10 11 12", "other 0 0 1"],
    )
    matrix, coverage = load_pretrained(str(path), ITOS, 3)
    assert matrix.shape == (6, 3) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[0], 0)
    np.testing.assert_array_equal(matrix[2], [1, 2, 3])
    np.testing.assert_array_equal(matrix[3], [4, 5, 6])
    np.testing.assert_array_equal(matrix[4], [10, 11, 12])  # exact match beats lower-cased
    assert 0 < np.abs(matrix[5]).max() < 1  # not found: small random init
    assert coverage == pytest.approx(3 / 5)


def test_lower_case_fallback_and_word2vec_header(tmp_path: Path) -> None:
    path = _glove_file(tmp_path, ["2 3", "great 7 8 9", "the 1 2 3"])
    matrix, coverage = load_pretrained(str(path), ITOS, 3)
    np.testing.assert_array_equal(matrix[4], [7, 8, 9])
    assert coverage == pytest.approx(2 / 5)


def test_dimension_mismatch_names_the_fix(tmp_path: Path) -> None:
    path = _glove_file(tmp_path, ["the 1 2 3"])
    with pytest.raises(RnnlabError, match=r"dimension 3 but embed_dim is 5.*--embed-dim 3"):
        load_pretrained(str(path), ITOS, 5)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(RnnlabError, match="does not exist"):
        load_pretrained(str(tmp_path / "nope.txt"), ITOS, 3)
    bad = _glove_file(tmp_path, ["the 1 2 3", "movie 1 2"])
    with pytest.raises(RnnlabError, match="line 2"):
        load_pretrained(str(bad), ITOS, 3)


def test_bundled_glove() -> None:
    matrix, coverage = load_pretrained("glove-6b-50d", ITOS, 50)
    assert matrix.shape == (6, 50)
    np.testing.assert_allclose(matrix[2, :3], [0.418, 0.24968, -0.41242])  # row 0 of GloVe: "the"
    np.testing.assert_array_equal(matrix[0], 0)
    assert coverage == pytest.approx(3 / 5)  # the, movie, great (lower-cased)
    with pytest.raises(RnnlabError, match=r"dimension 50 .*--embed-dim 50"):
        load_pretrained("glove-6b-50d", ITOS, 100)


def test_create_model_loads_and_freezes(tmp_path: Path) -> None:
    path = _glove_file(tmp_path, ["the 1 2 3", "movie 4 5 6"])
    model = create_model(
        "gru",
        vocab_size=len(ITOS),
        num_classes=2,
        embed_dim=3,
        hidden_dim=4,
        embeddings=str(path),
        freeze_embeddings=True,
        itos=ITOS,
    )
    assert model.embedding is not None
    weight = model.embedding.weight
    assert not weight.requires_grad
    torch.testing.assert_close(weight[3], torch.tensor([4.0, 5.0, 6.0]))
    assert weight[0].abs().sum() == 0
    assert model.embedding_coverage == pytest.approx(2 / 5)
    assert model.spec.embeddings == str(path)
    counts = count_parameters(model)
    assert counts["trainable"] == counts["total"] - counts["embedding"]
    tokens = torch.tensor([[2, 3, 0]])
    model.loss(model(tokens, torch.tensor([2])), torch.tensor([1])).backward()
    assert weight.grad is None


def test_create_model_checks_the_vocabulary(tmp_path: Path) -> None:
    path = _glove_file(tmp_path, ["the 1 2 3"])
    with pytest.raises(RnnlabError, match="itos has 6 words but vocab_size is 9"):
        create_model(
            "gru", vocab_size=9, num_classes=2, embed_dim=3, embeddings=str(path), itos=ITOS
        )
    with pytest.raises(RnnlabError, match="continuous inputs"):
        create_model(
            "gru", vocab_size=0, num_classes=2, input_dim=2, embeddings=str(path), itos=ITOS
        )
