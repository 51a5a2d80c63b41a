"""Text normalisation and word-level tokenizers (subword ones live in text_encoder.py)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

_TAG = re.compile(r"<[^>]*>")
_NOT_LETTER = re.compile(r"[^A-Za-z\s]+")
_REGEX_TOKEN = re.compile(r"[A-Za-z0-9]+")

WORD_TOKENIZERS = ("regex", "whitespace")
SUBWORD_TOKENIZERS = ("wordpiece", "bpe")


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
    """The reference notebooks' tokenizer: runs of [a-z0-9] (letters of either case)."""
    return _REGEX_TOKEN.findall(text)


def whitespace_tokenize(text: str) -> list[str]:
    return text.split()


def word_tokenizer(name: str) -> Callable[[str], list[str]]:
    return {"regex": regex_tokenize, "whitespace": whitespace_tokenize}[name]
