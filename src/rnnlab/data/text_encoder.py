"""TextEncoder: normalise -> tokenize -> ids -> truncate. Fitted once, saved, never retrained."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.text import SUBWORD_TOKENIZERS, WORD_TOKENIZERS, Normalizer, word_tokenizer
from rnnlab.data.vocab import PAD, UNK, UNK_ID, Vocab
from rnnlab.errors import RnnlabError
from rnnlab.io import read_json, write_json_atomic, write_text_atomic

TOKENIZER_HELP = (
    "use auto, regex, unicode, whitespace, wordpiece, bpe or pretrained:PATH/TO/tokenizer.json"
)


class TextEncoder:
    """Turns raw text into token ids the same way for training, evaluation and prediction.

    Word tokenizers (`regex`, `unicode`, `whitespace`) map tokens through a `Vocab`; subword ones (`wordpiece`,
    `bpe`, `pretrained:PATH`) use a Hugging Face `tokenizers.Tokenizer`, stored as tokenizer.json.
    """

    def __init__(
        self,
        tokenizer: str,
        normalizer: Normalizer,
        *,
        vocab: Vocab | None = None,
        hf_tokenizer: Any = None,
        max_len: int | None = None,
        truncate: str = "head",
    ) -> None:
        self.tokenizer = tokenizer
        self.normalizer = normalizer
        self.vocab = vocab
        self.hf_tokenizer = hf_tokenizer
        self.max_len = max_len
        self.truncate = truncate

    # ----- fitting -------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        tokenizer: str,
        normalizer: Normalizer,
        train_texts: Sequence[str],
        *,
        max_size: int,
        min_freq: int,
    ) -> TextEncoder:
        """Fit the vocabulary (or train the subword model) on the training texts only."""
        texts = [normalizer(t) for t in train_texts]
        if tokenizer in WORD_TOKENIZERS:
            split = word_tokenizer(tokenizer)
            vocab = Vocab(max_size, min_freq).fit(split(t) for t in texts)
            return cls(tokenizer, normalizer, vocab=vocab)
        if tokenizer in SUBWORD_TOKENIZERS:
            return cls(
                tokenizer,
                normalizer,
                hf_tokenizer=_train_subword(tokenizer, texts, max_size, min_freq),
            )
        if tokenizer.startswith("pretrained:"):
            return cls(
                tokenizer,
                normalizer,
                hf_tokenizer=load_tokenizer_file(Path(tokenizer.split(":", 1)[1])),
            )
        raise RnnlabError(f"unknown tokenizer {tokenizer!r}; {TOKENIZER_HELP}")

    # ----- encoding ------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        if self.vocab is not None:
            return len(self.vocab)
        return int(self.hf_tokenizer.get_vocab_size())

    @property
    def itos(self) -> list[str]:
        """Token strings in id order (for aligning pretrained embeddings)."""
        if self.vocab is not None:
            return self.vocab.itos_
        vocab = self.hf_tokenizer.get_vocab()
        itos = [UNK] * self.vocab_size
        for token, i in vocab.items():
            itos[i] = token
        return itos

    @classmethod
    def fit_encode(
        cls,
        tokenizer: str,
        normalizer: Normalizer,
        texts: Mapping[str, Sequence[str]],
        *,
        max_size: int,
        min_freq: int,
    ) -> tuple[TextEncoder, dict[str, list[list[int]]]]:
        """Fit on texts["train"] and encode every split, tokenizing each text only once."""
        if tokenizer not in WORD_TOKENIZERS:
            encoder = cls.fit(
                tokenizer, normalizer, texts["train"], max_size=max_size, min_freq=min_freq
            )
            return encoder, {name: encoder.encode_full(part) for name, part in texts.items()}
        split = word_tokenizer(tokenizer)
        tokens = {name: [split(normalizer(t)) for t in part] for name, part in texts.items()}
        vocab = Vocab(max_size, min_freq).fit(tokens["train"])
        return cls(tokenizer, normalizer, vocab=vocab), {
            n: vocab.encode_many(t) for n, t in tokens.items()
        }

    def encode_full(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of whole texts (no truncation); an empty text gives an empty list."""
        normalized = [self.normalizer(t) for t in texts]
        if self.vocab is not None:
            split = word_tokenizer(self.tokenizer)
            return self.vocab.encode_many(split(t) for t in normalized)
        return [e.ids for e in self.hf_tokenizer.encode_batch(normalized, add_special_tokens=False)]

    def truncate_ids(self, ids: list[int]) -> list[int]:
        if self.max_len is None or len(ids) <= self.max_len:
            return ids
        return ids[: self.max_len] if self.truncate == "head" else ids[-self.max_len :]

    def encode(self, text: str) -> list[int]:
        """Ids of one text as the model sees it: truncated, and `[<unk>]` if it has no tokens."""
        ids = self.truncate_ids(self.encode_full([text])[0])
        return ids or [UNK_ID]

    def encode_many(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [
            np.asarray(self.truncate_ids(ids) or [UNK_ID], dtype=np.int64)
            for ids in self.encode_full(texts)
        ]

    def decode(self, ids: Sequence[int]) -> str:
        if self.vocab is not None:
            return " ".join(self.vocab.decode(int(i) for i in ids))
        return str(self.hf_tokenizer.decode([int(i) for i in ids]))

    # ----- persistence ---------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.vocab is not None:
            self.vocab.save(directory / "vocab.json")
        else:
            write_text_atomic(directory / "tokenizer.json", self.hf_tokenizer.to_str())
        write_json_atomic(
            directory / "encoder.json",
            {
                "tokenizer": self.tokenizer,
                "lowercase": self.normalizer.lowercase,
                "strip_html": self.normalizer.strip_html,
                "letters_only": self.normalizer.letters_only,
                "max_len": self.max_len,
                "truncate": self.truncate,
            },
        )

    @classmethod
    def load(cls, directory: Path) -> TextEncoder:
        directory = Path(directory)
        if not (directory / "encoder.json").exists():
            raise RnnlabError(f"{directory} holds no encoder.json; it is not a saved text encoder")
        meta = read_json(directory / "encoder.json")
        normalizer = Normalizer(meta["lowercase"], meta["strip_html"], meta["letters_only"])
        common = {"max_len": meta["max_len"], "truncate": meta["truncate"]}
        if (directory / "vocab.json").exists():
            return cls(
                meta["tokenizer"], normalizer, vocab=Vocab.load(directory / "vocab.json"), **common
            )
        hf = load_tokenizer_file(directory / "tokenizer.json")
        return cls(meta["tokenizer"], normalizer, hf_tokenizer=hf, **common)


def load_tokenizer_file(path: Path) -> Any:
    """A Hugging Face tokenizer.json, with a one-line error if it does not load."""
    from tokenizers import Tokenizer  # heavy (Rust extension): only for subword tokenizers

    if path.is_dir():
        inside = path / "tokenizer.json"
        hint = (
            f"give the file itself: pretrained:{inside}"
            if inside.is_file()
            else "give the path of a Hugging Face tokenizer.json file (pretrained:PATH)"
        )
        raise RnnlabError(f"tokenizer {path} is a folder, not a tokenizer.json file; {hint}")
    if not path.is_file():
        raise RnnlabError(
            f"tokenizer file {path} does not exist; give the path of a tokenizer.json"
        )
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises plain Exception subclasses
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RnnlabError(
            f"tokenizer file {path} does not load ({reason}); give a Hugging Face tokenizer.json"
        ) from None


def _train_subword(kind: str, texts: list[str], vocab_size: int, min_freq: int) -> Any:
    """Train WordPiece or BPE on the (normalised) training texts; `<pad>`=0, `<unk>`=1."""
    # heavy (Rust extension): only for subword tokenizers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = [PAD, UNK]
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=UNK))
        trainer: Any = trainers.WordPieceTrainer(
            vocab_size=vocab_size, min_frequency=min_freq, special_tokens=specials
        )
        tok.decoder = decoders.WordPiece()
    else:
        tok = Tokenizer(models.BPE(unk_token=UNK))
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_freq, special_tokens=specials
        )
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tok
