from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnlab.data.vocab import PAD_ID, UNK_ID, Vocab
from rnnlab.errors import RnnlabError

words = st.text(alphabet="abcdefgh", min_size=1, max_size=4)


def test_specials_first_then_frequency_then_alphabetical() -> None:
    vocab = Vocab(max_size=10).fit([["b", "a", "c"], ["a", "c"], ["a"]])
    assert vocab.itos_ == ["<pad>", "<unk>", "a", "c", "b"]
    assert vocab.stoi_["<pad>"] == PAD_ID and vocab.stoi_["<unk>"] == UNK_ID


def test_max_size_and_min_freq() -> None:
    vocab = Vocab(max_size=3, min_freq=1).fit([["x", "x", "y"]])
    assert vocab.itos_ == ["<pad>", "<unk>", "x"]
    vocab = Vocab(max_size=100, min_freq=2).fit([["x", "x", "y"]])
    assert vocab.encode(["x", "y", "zzz"]) == [2, UNK_ID, UNK_ID]


@pytest.mark.parametrize("kwargs", [{"max_size": 2}, {"max_size": 0}, {"min_freq": 0}])
def test_bad_sizes_raise(kwargs: dict[str, int]) -> None:
    with pytest.raises(RnnlabError):
        Vocab(**kwargs)


@given(st.lists(st.lists(words, max_size=8), min_size=1, max_size=10), st.integers(3, 30))
def test_encode_decode_round_trip(token_lists: list[list[str]], max_size: int) -> None:
    vocab = Vocab(max_size=max_size).fit(token_lists)
    assert len(vocab) <= max_size
    for tokens in token_lists:
        ids = vocab.encode(tokens)
        assert ids == vocab.encode_many([tokens])[0]
        decoded = vocab.decode(ids)
        for token, back in zip(tokens, decoded, strict=True):
            assert back == (token if token in vocab.stoi_ else "<unk>")


def test_save_load(tmp_path: Path) -> None:
    vocab = Vocab(max_size=50, min_freq=1).fit([["hello", "world", "hello"]])
    vocab.save(tmp_path / "v.json")
    again = Vocab.load(tmp_path / "v.json")
    assert again.itos_ == vocab.itos_ and again.max_size == 50
