"""Text normalisation and word-level tokenizers (subword ones live in text_encoder.py)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

_TAG = re.compile(r"<[^>]*>")
_NOT_LETTER = re.compile(r"[^A-Za-z\s]+")
_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_ALNUM_OR_SPACE = bytes(c if c in _ALNUM else 32 for c in range(256))

_WORD = re.compile(r"[^\W_]+")

WORD_TOKENIZERS = ("regex", "unicode", "whitespace")
SUBWORD_TOKENIZERS = ("wordpiece", "bpe")
AUTO = "auto"
"""The default tokenizer setting: `regex` for the named (English) datasets, `unicode` for local
files (rnnlab.data.pipeline.resolve_tokenizer); a run records the one it used."""


@dataclass(frozen=True)
class Normalizer:
    """lower-case, strip HTML tags (`<br />` -> space) and entities (`&amp;` -> `&`), letters only."""

    lowercase: bool = True
    strip_html: bool = True
    letters_only: bool = False

    def __call__(self, text: str) -> str:
        if self.strip_html:
            text = html.unescape(_TAG.sub(" ", text))
        if self.lowercase:
            text = text.lower()
        if self.letters_only:
            text = _NOT_LETTER.sub(" ", text)
        return text


def regex_tokenize(text: str) -> list[str]:
    """The reference notebooks' tokenizer: runs of [A-Za-z0-9], i.e. re.findall(r"[a-z0-9]+") on
    lower-cased text. Mapping every other character to a space and splitting gives the same
    tokens about twice as fast (non-ASCII characters become "?" first, then a space)."""
    return text.encode("ascii", "replace").translate(_ALNUM_OR_SPACE).decode("ascii").split()


def unicode_tokenize(text: str) -> list[str]:
    """Word tokens of every script: runs of Unicode letters and digits (`[^\\W_]+`, i.e. `\\w+`
    without `_`). "déjà vu" gives ["déjà", "vu"], where the ASCII rule gives ["d", "j", "vu"];
    on ASCII text the two agree."""
    return _WORD.findall(text)


def whitespace_tokenize(text: str) -> list[str]:
    return text.split()


def word_tokenizer(name: str) -> Callable[[str], list[str]]:
    return {
        "regex": regex_tokenize,
        "unicode": unicode_tokenize,
        "whitespace": whitespace_tokenize,
    }[name]
