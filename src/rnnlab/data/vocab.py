"""Word vocabulary: `<pad>`=0, `<unk>`=1, then words by frequency (ties alphabetical)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import chain, repeat
from pathlib import Path

from rnnlab.errors import RnnlabError
from rnnlab.io import read_json, write_json_atomic

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


class Vocab:
    """Fit on training token lists; fitted state ends in `_`."""

    def __init__(self, max_size: int = 20_000, min_freq: int = 1) -> None:
        if max_size <= 2:
            raise RnnlabError(f"max_size must be greater than 2 (got {max_size})")
        if min_freq < 1:
            raise RnnlabError(f"min_freq must be at least 1 (got {min_freq})")
        self.max_size = max_size
        self.min_freq = min_freq
        self.itos_: list[str] = []
        self.stoi_: dict[str, int] = {}

    def fit(self, token_lists: Iterable[list[str]]) -> Vocab:
        counts = Counter(chain.from_iterable(token_lists))
        counts.pop(PAD, None)
        counts.pop(UNK, None)
        words = sorted(
            (w for w, c in counts.items() if c >= self.min_freq), key=lambda w: (-counts[w], w)
        )
        self._set_itos([PAD, UNK, *words[: self.max_size - 2]])
        return self

    def _set_itos(self, itos: list[str]) -> None:
        self.itos_ = itos
        self.stoi_ = {w: i for i, w in enumerate(itos)}

    def __len__(self) -> int:
        return len(self.itos_)

    def encode(self, tokens: list[str]) -> list[int]:
        get = self.stoi_.get
        return [get(t, UNK_ID) for t in tokens]

    def encode_many(self, token_lists: Iterable[list[str]]) -> list[list[int]]:
        get = self.stoi_.get
        return [list(map(get, tokens, repeat(UNK_ID))) for tokens in token_lists]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos_[i] if 0 <= i < len(self.itos_) else UNK for i in ids]

    def save(self, path: Path) -> None:
        write_json_atomic(
            path, {"max_size": self.max_size, "min_freq": self.min_freq, "itos": self.itos_}
        )

    @classmethod
    def load(cls, path: Path) -> Vocab:
        """A saved vocabulary; one whose words repeat (two ids for one word) is refused."""
        raw = read_json(path)
        vocab = cls(raw["max_size"], raw["min_freq"])
        itos = [str(word) for word in raw["itos"]]
        repeated = next((w for w, n in Counter(itos).items() if n > 1), None)
        if repeated is not None:
            raise RnnlabError(
                f"{path} lists the token {repeated!r} twice; the vocabulary is damaged or "
                "edited, train the run again"
            )
        vocab._set_itos(itos)
        return vocab
