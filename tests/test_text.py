from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from rnnlab.data.text import Normalizer, regex_tokenize, unicode_tokenize, whitespace_tokenize


def test_normalizer_strips_html_tags_and_entities_and_lowercases() -> None:
    text = "Great<br /><br />Film &amp; <i>CAST</i>"
    assert Normalizer()(text).split() == ["great", "film", "&", "cast"]


def test_normalizer_options_can_be_turned_off() -> None:
    text = "A <b>Bold</b> 42!"
    assert Normalizer(lowercase=False, strip_html=False)(text) == text
    assert Normalizer(letters_only=True)(text).split() == ["a", "bold"]


def test_regex_tokenizer_matches_reference_pattern() -> None:
    assert regex_tokenize("it's 10/10, a must-see!") == ["it", "s", "10", "10", "a", "must", "see"]
    assert regex_tokenize("") == []
    assert whitespace_tokenize("  a  b\tc\n") == ["a", "b", "c"]


@given(st.text())
def test_regex_tokens_are_exactly_the_alnum_runs(text: str) -> None:
    lowered = Normalizer()(text)
    tokens = regex_tokenize(lowered)
    assert tokens == re.findall(r"[A-Za-z0-9]+", lowered)
    assert all(re.fullmatch(r"[A-Za-z0-9]+", t) for t in tokens)


@given(st.text())
def test_normalizer_is_idempotent_without_html(text: str) -> None:
    norm = Normalizer(strip_html=False)
    assert norm(norm(text)) == norm(text)


def test_unicode_tokens_keep_every_script() -> None:
    text = Normalizer()("Un café, déjà vu: NAÏVE_fin — Straße 42 ½ мир 東京")
    words = ["un", "café", "déjà", "vu", "naïve", "fin", "straße", "42", "½", "мир", "東京"]
    assert unicode_tokenize(text) == words
    assert regex_tokenize(text) == [
        "un",
        "caf",
        "d",
        "j",
        "vu",
        "na",
        "ve",
        "fin",
        "stra",
        "e",
        "42",
    ]


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_on_ascii_text_the_unicode_rule_is_the_notebooks_rule(text: str) -> None:
    lowered = Normalizer()(text)
    assert unicode_tokenize(lowered) == regex_tokenize(lowered)
