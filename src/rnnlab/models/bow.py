"""A fastText-style bag of n-grams (Joulin et al. 2016): the mean of the vectors of a text's
words and of its hashed word pairs, then a linear head. Word order enters only through the
pairs; there is no state that reads the text in order.

    x_t = E[w_t] + E[V + hash(w_{t-1}, w_t) mod N]       (the pair term is absent at t = 0)
    logits = W · (Σ_{t<L} x_t) / (L + (L − 1)) + b        (a mean over L words and L − 1 pairs)

E is one table of V word rows and N = `hash_buckets` pair rows (N = 0: words only, a mean over
L). Bigrams are formed from the already-encoded ids, inside the model, never by tokenizing again.
The forward pass runs the table as an EmbeddingBag (no (B, T, E) tensor); `embed` and
`forward_embedded` compute the same mean from the per-position vectors x_t, which gradient flow
and attributions differentiate with respect to. Continuous inputs (B, T, F): the mean of x_t.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.errors import check
from rnnlab.models.classifier import ModelSpec, TextClassifier
from rnnlab.models.family import BAG, register_family
from rnnlab.models.sequence import clean_lengths, time_mask

HASH_MULTIPLIER = 1_000_003
"""hash(a, b) = (a * HASH_MULTIPLIER + b) mod N: an odd multiplier, so for a fixed first word
every second word lands in its own bucket (up to N)."""


def bigram_ids(tokens: Tensor, vocab_size: int, buckets: int) -> Tensor:
    """(B, T) word ids (0 on padding) -> (B, T) pair rows: V + hash(w_{t-1}, w_t) at t >= 1
    where both words are real, else 0 (the <pad> row, zero and excluded from the mean)."""
    pairs = (tokens[:, :-1] * HASH_MULTIPLIER + tokens[:, 1:]) % buckets + vocab_size
    real = (tokens[:, :-1] != 0) & (tokens[:, 1:] != 0)
    pairs = pairs.masked_fill(~real, 0)
    return torch.cat([torch.zeros_like(tokens[:, :1]), pairs], dim=1)  # (B, T)


class _BagSum(torch.autograd.Function):
    """EmbeddingBag's sum of rows per bag, ids (B, L) -> (B, E), with a backward that adds each
    bag's gradient into its rows with one index_add_ (PyTorch's CPU backward of embedding_bag
    sorts the ids first: 40% of a bow training step). <pad> (row 0) is all zeros and gets no
    gradient, so it adds nothing to a bag and needs no padding_idx (which made the forward 7x
    slower on the CPU)."""

    @staticmethod
    def forward(ctx: Any, ids: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(ids)
        ctx.rows = weight.shape[0]
        return F.embedding_bag(ids, weight, mode="sum")

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        (ids,) = ctx.saved_tensors  # (B, L)
        grad_weight = grad.new_zeros(ctx.rows, grad.shape[1])
        per_id = grad.repeat_interleave(ids.shape[1], dim=0)  # (B * L, E)
        grad_weight.index_add_(0, ids.reshape(-1), per_id)
        grad_weight[0] = 0  # <pad> is not part of any bag
        return None, grad_weight


@register_family("bow", display="bag of n-grams", group=BAG, colour="tab:brown", year=2016)
class BagOfNgrams(TextClassifier):
    """EmbeddingBag over unigrams + hashed bigrams -> mean (or max) -> dropout -> linear head."""

    family = "bag of n-grams"
    sequence_modes = ("padded",)
    impls = ("torch",)
    poolings = ("mean", "max")
    has_states = False
    no_states = "a bag of n-grams has no per-step state: it averages its word and pair vectors"
    reads_hidden_dim = False

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        check(spec.kind == "bow", f"BagOfNgrams runs bow, not {spec.kind}")
        self.check_spec(spec)
        self.spec = spec
        self.embedding_coverage: float | None = None
        self.embedding: nn.EmbeddingBag | None = None
        width = spec.input_dim or spec.embed_dim
        if spec.input_dim is None:
            rows = spec.vocab_size + spec.hash_buckets
            self.embedding = nn.EmbeddingBag(rows, spec.embed_dim, mode="sum", padding_idx=0)
            nn.init.normal_(self.embedding.weight, std=spec.embed_dim**-0.5)
            with torch.no_grad():
                self.embedding.weight[0].zero_()
            self.embedding.weight.requires_grad_(not spec.freeze_embeddings)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(width, spec.num_outputs)

    def layout(self) -> str:
        s = self.spec
        if s.input_dim is not None:
            return f"mean of the {s.input_dim} input features"
        pairs = f" + {s.hash_buckets:,} hashed bigrams" if s.hash_buckets else ""
        return f"bag of words{pairs}, {s.embed_dim}-d, {s.pooling} pooling"

    @classmethod
    def activation_floats_per_token(cls, spec: ModelSpec, steps: int) -> float:
        return 2 * (spec.input_dim or spec.embed_dim)

    # -- forward ----------------------------------------------------------------------------

    def _ids(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Word ids with everything at t >= length set to <pad> (0), (B, T)."""
        mask = time_mask(lengths, tokens.shape[1], tokens.device)
        return tokens.masked_fill(~mask, 0)

    def _counts(self, lengths: Tensor, like: Tensor) -> Tensor:
        """(B, 1) terms in each mean: L words and, with pairs, L - 1 pairs."""
        counts = lengths.to(like.device, like.dtype)
        if self.embedding is not None and self.spec.hash_buckets:
            counts = 2 * counts - 1
        return counts.unsqueeze(-1)

    def embed(self, tokens: Tensor) -> Tensor:
        """(B, T) ids -> (B, T, E): x_t = E[w_t] + E[pair_t]; continuous (B, T, F) unchanged."""
        if self.embedding is None:
            return tokens
        weight = self.embedding.weight
        x = F.embedding(tokens, weight, padding_idx=0)  # (B, T, E)
        if self.spec.hash_buckets:
            pairs = bigram_ids(tokens, self.spec.vocab_size, self.spec.hash_buckets)
            x = x + F.embedding(pairs, weight, padding_idx=0)
        return x

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        if self.embedding is None or self.spec.pooling != "mean":
            return self.forward_embedded(self.embed(tokens), lengths)
        lengths = clean_lengths(lengths, tokens.shape[1])
        ids = self._ids(tokens, lengths)
        if self.spec.hash_buckets:
            pairs = bigram_ids(ids, self.spec.vocab_size, self.spec.hash_buckets)[:, 1:]
            ids = torch.cat([ids, pairs], dim=1)  # (B, 2T - 1): one bag per row
        total = _BagSum.apply(ids, self.embedding.weight)  # (B, E), <pad> rows left out
        return self.head(self.dropout(total / self._counts(lengths, total)))  # (B, C)

    def forward_embedded(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (B, T, E) and lengths (B,) -> logits (B, C); the same mean as `forward`."""
        lengths = clean_lengths(lengths, x.shape[1])
        mask = time_mask(lengths, x.shape[1], x.device).unsqueeze(-1)  # (B, T, 1)
        if self.spec.pooling == "max":
            pooled = x.masked_fill(~mask, float("-inf")).amax(dim=1)  # (B, E)
        else:
            pooled = x.masked_fill(~mask, 0.0).sum(dim=1) / self._counts(lengths, x)
        return self.head(self.dropout(pooled))  # (B, C)
