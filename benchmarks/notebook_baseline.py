"""The reference notebooks' training pipeline, re-implemented faithfully as the speed baseline.

Every batch: clean and tokenize the raw reviews with the regex `[a-z0-9]+`, look the words up in
a 20k vocabulary, truncate to max_len, `pad_sequence`, then `pack_padded_sequence(...,
enforce_sorted=False)` through embed 100 -> RNN|LSTM|GRU 128 (one layer) -> linear on the last
hidden state -> one logit, BCE-with-logits, Adam 1e-3, gradient clipping at 1.0. Batches are
plain shuffled (no bucketing). Nothing here uses rnnlab's model or batching code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

TOKEN = re.compile(r"[a-z0-9]+")
LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def notebook_tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower().replace("<br />", " "))


class NotebookClassifier(nn.Module):
    def __init__(self, kind: str, vocab_size: int, embed_dim: int = 100, hidden: int = 128):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = LAYERS[kind](embed_dim, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(
            self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False
        )
        _, hidden = self.rnn(packed)
        if isinstance(hidden, tuple):  # LSTM: (h_n, c_n)
            hidden = hidden[0]
        return self.fc(hidden[-1]).squeeze(-1)  # (B,)


class NotebookPipeline:
    """collate() re-encodes raw text on every call, as the notebooks' DataLoader did."""

    def __init__(
        self, texts: Sequence[str], labels: np.ndarray, stoi: dict[str, int], max_len: int
    ):
        self.texts, self.labels, self.stoi, self.max_len = texts, labels, stoi, max_len

    def collate(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        seqs = []
        for i in indices:
            words = notebook_tokenize(self.texts[i])[: self.max_len] or ["<unk>"]
            seqs.append(torch.tensor([self.stoi.get(w, 1) for w in words], dtype=torch.long))
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
        labels = torch.tensor(self.labels[indices], dtype=torch.float32)
        return pad_sequence(seqs, batch_first=True), lengths, labels


def train_step(
    model: NotebookClassifier,
    optimizer: torch.optim.Optimizer,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> float:
    tokens, lengths, labels = batch
    optimizer.zero_grad()
    loss = nn.functional.binary_cross_entropy_with_logits(model(tokens, lengths), labels)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()  # the notebooks log the loss every step (a host sync on a GPU)
