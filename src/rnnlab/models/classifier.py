"""The model interface every family shares (TextClassifier, ModelSpec), and the recurrent family:
RecurrentClassifier, embedding -> RNN | LSTM | GRU -> pooling over time -> linear head.

Other families (rnnlab.models.bow, minrnn, transformer) subclass TextClassifier and read the same
ModelSpec; each registers its kinds (rnnlab.models.family.register_family)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.errors import RnnlabError, check
from rnnlab.models import kernels
from rnnlab.models.cells import GATES, KINDS, CellRun, ScratchRecurrent, layer_weights, run_cells
from rnnlab.models.family import SERIAL, family, register_family
from rnnlab.models.lookup import TokenEmbedding
from rnnlab.models.sequence import (
    POOLINGS,
    clean_lengths,
    fused_direction,
    pool,
    reverse_index,
    reverse_within,
)

TASKS = ("classification", "regression")
SEQUENCE_MODES = ("padded", "packed")
IMPLS = ("torch", "scratch")
TRANSITIONS = ("positive", "signed")
"""Ranges of a linear recurrence's transition a_t (ModelSpec.transition)."""
SCANS = ("auto", "parallel")
"""How linear-recurrence families run their scan (ModelSpec.scan)."""
ALL_POOLINGS = (*POOLINGS, "first")
"""Poolings some family reads (`first`: the transformer's first-token / [CLS] output)."""
POSITIONS = ("sinusoidal", "learned")
TORCH_LAYERS: dict[str, Callable[..., nn.Module]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model of any family (weights come from its state_dict).

    `kind` picks the family (rnnlab.models.family.FAMILIES); each family reads the fields that mean
    something for it and refuses settings it cannot run (e.g. packed sequences for a Transformer).
    """

    kind: str
    vocab_size: int
    num_classes: int
    embed_dim: int = 100
    hidden_dim: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    pooling: str = "last"
    sequence_mode: str = "padded"
    impl: str = "torch"
    binary_single_logit: bool = False
    task: str = "classification"
    input_dim: int | None = None
    """Continuous inputs (B, T, input_dim) with no embedding; None for token ids."""
    embeddings: str | None = None
    """Where the pretrained vectors came from (recorded; from_spec does not reload them)."""
    freeze_embeddings: bool = False
    gate_bias: float | None = None
    """Initial bias of the LSTM forget gate / GRU update gate (None: PyTorch's default init).
    A positive value makes the cell keep its memory at the start of training, which long-range
    tasks need (Jozefowicz et al. 2015 recommend 1 for LSTMs); ignored for the vanilla RNN."""
    name: str | None = None
    """The preset this spec was built from."""
    hash_buckets: int = 65_536
    """bow: rows of the hashed bigram table (0: unigrams only)."""
    num_heads: int = 4
    """transformer, mlstm: heads (they split hidden_dim, the model width d_model)."""
    ff_dim: int | None = None
    """transformer: feed-forward width (None: 2 x hidden_dim)."""
    positions: str = "sinusoidal"
    """transformer: `sinusoidal` (any length) or `learned` (at most max_positions steps)."""
    max_positions: int = 4096
    """transformer with learned positions: the longest text it can read."""
    state_dim: int = 16
    """mamba: the state size N per channel (d_state)."""
    expand: int = 2
    """mamba: the inner width E = expand x hidden_dim."""
    transition: str = "positive"
    """Linear recurrences (mingru, minlstm, mamba): the range of the transition a_t in h_t =
    a_t h_{t−1} + b_t: `positive`, in [0, 1] as published, or `signed`, a_t mapped to 2a_t − 1
    in [−1, 1] (Grazzi et al., ICLR 2025: only the signed range can learn parity)."""
    scan: str = "auto"
    """Linear recurrences: `auto` (the fused CPU kernel where it runs, else the parallel scan)
    or `parallel` (the GPU's scan, also on the CPU, for comparison; minGRU / minLSTM: the
    log-space scan)."""

    def __post_init__(self) -> None:
        family(self.kind)  # a registered kind, or one line listing them
        for field_name in (
            "embed_dim", "hidden_dim", "num_layers", "num_heads", "max_positions", "state_dim",
            "expand",
        ):  # fmt: skip
            value = getattr(self, field_name)
            check(
                _positive_int(value),
                f"{field_name} must be a positive integer (got {value!r}); set "
                f"--{field_name.replace('_', '-')} to 1 or more",
            )
        check(
            isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1,
            f"dropout must be in [0, 1) (got {self.dropout!r}); pass e.g. --dropout 0.3",
        )
        check(
            self.pooling in ALL_POOLINGS,
            f"pooling must be one of {', '.join(ALL_POOLINGS)}, not {self.pooling!r}",
        )
        check(
            isinstance(self.hash_buckets, int)
            and not isinstance(self.hash_buckets, bool)
            and self.hash_buckets >= 0,
            f"hash_buckets must be 0 or a positive integer (got {self.hash_buckets!r})",
        )
        check(
            self.ff_dim is None or _positive_int(self.ff_dim),
            f"ff_dim must be a positive integer (got {self.ff_dim!r})",
        )
        check(
            self.positions in POSITIONS,
            f"positions must be one of {', '.join(POSITIONS)}, not {self.positions!r}",
        )
        check(
            self.sequence_mode in SEQUENCE_MODES,
            f"sequence_mode must be padded or packed, not {self.sequence_mode!r}",
        )
        check(self.impl in IMPLS, f"impl must be torch or scratch, not {self.impl!r}")
        check(
            self.transition in TRANSITIONS,
            f"transition must be positive or signed, not {self.transition!r}",
        )
        check(self.scan in SCANS, f"scan must be auto or parallel, not {self.scan!r}")
        check(self.task in TASKS, f"task must be classification or regression, not {self.task!r}")
        check(
            self.gate_bias is None or isinstance(self.gate_bias, (int, float)),
            f"gate_bias must be a number (got {self.gate_bias!r}); e.g. --gate-bias 1",
        )
        for field_name in ("bidirectional", "binary_single_logit", "freeze_embeddings"):
            value = getattr(self, field_name)
            check(isinstance(value, bool), f"{field_name} must be true or false (got {value!r})")
        if self.input_dim is None:
            check(
                _positive_int(self.vocab_size) and self.vocab_size >= 2,
                f"vocab_size must be at least 2 (got {self.vocab_size!r}); token inputs need "
                "<pad> and at least one word, or give input_dim for continuous inputs",
            )
        else:
            check(
                _positive_int(self.input_dim),
                f"input_dim must be a positive integer (got {self.input_dim!r})",
            )
            check(
                self.embeddings is None,
                "pretrained embeddings need token inputs; drop --embeddings for continuous inputs",
            )
        if self.task == "classification":
            check(
                _positive_int(self.num_classes) and self.num_classes >= 2,
                f"num_classes must be at least 2 for classification (got {self.num_classes!r})",
            )
            check(
                not self.binary_single_logit or self.num_classes == 2,
                f"binary_single_logit needs exactly 2 classes (got {self.num_classes}); "
                "drop --binary-single-logit",
            )

    @property
    def num_outputs(self) -> int:
        """Width C of the logits: 1 for regression and single-logit binary, else num_classes."""
        if self.task == "regression" or self.binary_single_logit:
            return 1
        return self.num_classes

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def recurrent_flops_per_token(self) -> int:
        """Matmul FLOPs of the recurrent layers' forward pass per time step of one sequence.

        Per layer and direction: 2 * (In + H) * G * H (input and recurrent projections, G gate
        blocks, the family's `gate_blocks`: 1 rnn, 3 gru, 4 lstm); a family without a
        recurrent matmul (minGRU / minLSTM) counts 2 * In * G * H. A training step costs about
        3x this (backward ~2x). Families without recurrent layers (gate_blocks 0) count 0.
        """
        declared = family(self.kind)
        gates = declared.gate_blocks
        if gates == 0:
            return 0
        hidden, total = self.hidden_dim, 0
        recurrent = hidden if declared.recurrent_matmul else 0
        for layer in range(self.num_layers):
            in_size = (self.input_dim or self.embed_dim) if layer == 0 else self.directions * hidden
            total += self.directions * 2 * (in_size + recurrent) * gates * hidden
        return total

    def flops_per_token(self, steps: int) -> int:
        """Matmul FLOPs of the sequence encoder's forward pass per token, in batches padded to
        `steps`: the family's own count where its class defines `encoder_flops_per_token(spec,
        steps)` (Mamba, Hawk, mLSTM: blocks that gate_blocks cannot describe; mLSTM's parallel
        form grows with T), else `recurrent_flops_per_token`. Training costs about 3x this."""
        own = getattr(family(self.kind).builder, "encoder_flops_per_token", None)
        return int(own(self, steps)) if own is not None else self.recurrent_flops_per_token

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelSpec:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - names)
        check(not unknown, f"unknown model spec fields {unknown}; valid ones: {sorted(names)}")
        return cls(**raw)


@dataclass
class StateTrace:
    """States of the last layer's forward direction, one tensor (B, H) per time step.

    Every entry is a node on the loss path: call `retain_grad()` on them before backward to
    read dL/dh_t. Entries at t >= lengths[b] were computed over padding and get no gradient.
    """

    hidden: list[Tensor]
    cell: list[Tensor] | None
    lengths: Tensor  # (B,) int64 on the CPU (clamped to >= 1)


class TextClassifier(nn.Module):
    """What every model family shares, and what every caller relies on.

    - `model(tokens (B, T) int64 or (B, T, F) float, lengths (B,)) -> logits (B, C)`, equal to
      `model.forward_embedded(model.embed(tokens), lengths)` (gradient flow and attributions
      differentiate with respect to the embedded input);
    - `loss`, `probabilities`, `predict` on the logits; `spec` (a ModelSpec, the run folder's
      model_spec.json); `parts()` (embedding / recurrent / head, for parameter counts);
    - `trace(x, lengths)` only where `has_states`: the per-step states of the last layer.

    Every batch is right-padded: real steps at 0 .. lengths[b]-1; whatever sits on the padding
    never changes the logits. A family says which ModelSpec settings it runs (`sequence_modes`,
    `impls`, `poolings`); anything else is refused with a one-line error.
    """

    family: ClassVar[str] = "model"
    """The family's name in messages ("not applicable to <family>")."""
    sequence_modes: ClassVar[tuple[str, ...]] = ("padded",)
    impls: ClassVar[tuple[str, ...]] = ("torch",)
    poolings: ClassVar[tuple[str, ...]] = ("mean",)
    transitions: ClassVar[tuple[str, ...]] = ("positive",)
    """ModelSpec.transition values the family runs (`signed`: linear recurrences only)."""
    has_states: ClassVar[bool] = False
    """Whether `trace()` gives per-step states (hidden-state and dL/dh_t diagnostics)."""
    no_states: ClassVar[str] = "it has no per-step state"
    """Why there is no trace, in words, for families without one."""
    reads_hidden_dim: ClassVar[bool] = True
    """Whether hidden_dim sizes something (the hidden-size sweep)."""

    @classmethod
    def state_size(cls, spec: ModelSpec) -> int | None:
        """Numbers carried from one step to the next, per layer and direction: the fixed memory
        a text must pass through. None: no fixed-size state (attention keeps every token, a
        bag keeps no order)."""
        return None

    spec: ModelSpec
    embedding: nn.Embedding | nn.EmbeddingBag | None
    dropout: nn.Dropout
    """Dropout on the embedded input (spec.dropout); families may reuse it further on."""
    embedding_coverage: float | None
    """Share of the vocabulary found in the pretrained vectors (None without them)."""
    head: nn.Linear

    def _token_embedding(self, spec: ModelSpec) -> None:
        """Keep `spec`, the (vocab, embed_dim) table of token ids (None for continuous inputs;
        row 0 is padding, trainable unless spec.freeze_embeddings) and the dropout `embed`
        applies to it (spec.dropout)."""
        self.spec = spec
        self.embedding_coverage = None
        self.dropout = nn.Dropout(spec.dropout)
        self.embedding = None
        if spec.input_dim is None:
            self.embedding = TokenEmbedding(spec.vocab_size, spec.embed_dim, padding_idx=0)
            self.embedding.weight.requires_grad_(not spec.freeze_embeddings)

    @classmethod
    def check_spec(cls, spec: ModelSpec) -> None:
        """Refuse, in one line, settings this family cannot run."""
        for field_name, allowed in (
            ("sequence_mode", cls.sequence_modes),
            ("impl", cls.impls),
            ("pooling", cls.poolings),
            ("transition", cls.transitions),
        ):
            value = getattr(spec, field_name)
            check(
                value in allowed,
                f"{field_name} {value} does not apply to {spec.kind}; it takes "
                f"{' or '.join(allowed)} (--{field_name.replace('_', '-')})",
            )

    @classmethod
    def from_spec(cls, spec: ModelSpec | dict[str, Any]) -> TextClassifier:
        """A fresh model for a spec (or its to_dict()); load the weights with load_state_dict."""
        return cls(spec if isinstance(spec, ModelSpec) else ModelSpec.from_dict(spec))

    def parts(self) -> dict[str, nn.Module | None]:
        """The modules counted as embedding, recurrent (the sequence encoder) and head."""
        return {"embedding": self.embedding, "recurrent": None, "head": self.head}

    def layout(self) -> str:
        """One line for `rnnlab models`, e.g. `biLSTM 1x128, max pooling`."""
        return f"{self.spec.kind}, {self.spec.pooling} pooling"

    # -- forward ----------------------------------------------------------------------------

    def embed(self, tokens: Tensor) -> Tensor:
        """(B, T) ids -> (B, T, E) (with embedding dropout); continuous (B, T, F) unchanged."""
        if self.embedding is None:
            return tokens
        return self.dropout(self.embedding(tokens))  # (B, T, E)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.forward_embedded(self.embed(tokens), lengths)

    def forward_embedded(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (B, T, E) and lengths (B,) -> logits (B, C)."""
        raise NotImplementedError

    # -- loss and predictions -----------------------------------------------------------------

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Mean loss: MSE (regression), BCE-with-logits (single-logit binary) or cross-entropy."""
        if self.spec.task == "regression":
            return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
        if self.spec.binary_single_logit:
            return F.binary_cross_entropy_with_logits(logits.squeeze(-1), labels.to(logits.dtype))
        return F.cross_entropy(logits, labels.long())

    def probabilities(self, logits: Tensor) -> Tensor:
        """(B, num_classes) class probabilities; for regression the predicted values (B, 1)."""
        if self.spec.task == "regression":
            return logits
        if self.spec.binary_single_logit:
            positive = torch.sigmoid(logits.squeeze(-1))  # (B,)
            return torch.stack([1 - positive, positive], dim=-1)  # (B, 2)
        return torch.softmax(logits, dim=-1)

    def predict(self, logits: Tensor) -> Tensor:
        """(B,) class ids (int64), or predicted values for regression."""
        if self.spec.task == "regression":
            return logits.squeeze(-1)
        if self.spec.binary_single_logit:
            return (logits.squeeze(-1) > 0).long()
        return logits.argmax(dim=-1)

    # -- embeddings -----------------------------------------------------------------------------

    def load_embeddings(self, matrix: np.ndarray | Tensor, *, freeze: bool | None = None) -> None:
        """Copy pretrained vectors (V, E) into the embedding's first V rows (row 0, <pad>, stays
        zero); a table with more rows (bow's hashed bigrams) keeps the others."""
        if self.embedding is None:
            raise RnnlabError("this model reads continuous inputs and has no embedding to load")
        weight = self.embedding.weight
        vocab = self.spec.vocab_size
        vectors = torch.as_tensor(np.asarray(matrix), dtype=weight.dtype)
        check(
            tuple(vectors.shape) == (vocab, weight.shape[1]),
            f"pretrained matrix has shape {tuple(vectors.shape)} but the embedding is "
            f"{(vocab, weight.shape[1])}; build the vectors for this vocabulary and embed_dim",
        )
        with torch.no_grad():
            weight[:vocab].copy_(vectors)
            weight[0].zero_()
        frozen = self.spec.freeze_embeddings if freeze is None else freeze
        weight.requires_grad_(not frozen)


class RecurrentClassifier(TextClassifier):
    """embedding (padding_idx 0) -> RNN | LSTM | GRU -> pooling over real steps -> linear head.

    model(tokens (B, T) int64 or (B, T, F) float, lengths (B,)) -> logits (B, C).
    """

    family = "recurrent"
    sequence_modes = SEQUENCE_MODES
    impls = IMPLS
    poolings = POOLINGS
    has_states = True

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        check(spec.kind in KINDS, f"RecurrentClassifier runs {', '.join(KINDS)}, not {spec.kind}")
        self.check_spec(spec)
        self._token_embedding(spec)
        in_size = spec.input_dim or spec.embed_dim
        layers = spec.num_layers
        between = spec.dropout if layers > 1 else 0.0
        self.rnn: nn.Module
        if spec.impl == "torch":
            self.rnn = TORCH_LAYERS[spec.kind](
                in_size,
                spec.hidden_dim,
                layers,
                batch_first=True,
                dropout=between,
                bidirectional=spec.bidirectional,
            )
        else:
            self.rnn = ScratchRecurrent(
                spec.kind,
                in_size,
                spec.hidden_dim,
                layers,
                bidirectional=spec.bidirectional,
                dropout=between,
            )
        self.head = nn.Linear(spec.directions * spec.hidden_dim, spec.num_outputs)
        if spec.gate_bias is not None and spec.kind in ("lstm", "gru"):
            self._set_gate_bias(spec.gate_bias)

    def _set_gate_bias(self, value: float) -> None:
        """Set the bias of the memory-keeping gate: LSTM forget gate (chunk 1 of i,f,g,o) or GRU
        update gate (chunk 1 of r,z,n), split as `value` on bias_ih and 0 on bias_hh."""
        hidden = self.spec.hidden_dim
        keep = slice(hidden, 2 * hidden)
        with torch.no_grad():
            for name, param in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    param[keep] = value
                elif name.startswith("bias_hh"):
                    param[keep] = 0.0

    def parts(self) -> dict[str, nn.Module | None]:
        return {"embedding": self.embedding, "recurrent": self.rnn, "head": self.head}

    @classmethod
    def state_size(cls, spec: ModelSpec) -> int | None:
        """h (and the LSTM's cell c)."""
        return (2 if spec.kind == "lstm" else 1) * spec.hidden_dim

    def layout(self) -> str:
        s = self.spec
        bi = "bi" if s.bidirectional else ""
        return f"{bi}{s.kind.upper()} {s.num_layers}x{s.hidden_dim}, {s.pooling} pooling"

    # -- forward ----------------------------------------------------------------------------

    def forward_embedded(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (B, T, E) and lengths (B,) -> logits (B, C)."""
        lengths = clean_lengths(lengths, x.shape[1])
        return self._head(self._encode(x, lengths), lengths)

    def trace(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, StateTrace]:
        """The forward pass unrolled through the hand-written cells with this model's weights.

        Returns the logits (equal to forward_embedded's) and the per-step states of the last
        layer's forward direction. Any sequence_mode and impl give the same logits.
        """
        lengths = clean_lengths(lengths, x.shape[1])
        outputs, last = self._layered(x, lengths, scratch=True)
        cell = last.cell if self.spec.kind == "lstm" else None
        return self._head(outputs, lengths), StateTrace(last.hidden, cell, lengths)

    def _head(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        pooled = pool(outputs, lengths, self.spec.pooling, self.spec.directions)  # (B, D*H)
        return self.head(self.dropout(pooled))  # (B, C)

    def _encode(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (B, T, In) -> outputs (B, T, D*H); values on padding are never read."""
        spec = self.spec
        if spec.sequence_mode == "packed":
            if spec.impl == "scratch":
                return self.rnn(x, lengths)[0]  # masked steps: what packing computes
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            outputs, _ = pad_packed_sequence(
                self.rnn(packed)[0], batch_first=True, total_length=x.shape[1]
            )
            return outputs
        if not spec.bidirectional and not kernels.applies(spec.kind, x):
            return self.rnn(x)[0]  # padding comes after the real steps: exact as it is
        return self._layered(x, lengths, scratch=spec.impl == "scratch")[0]

    def _layered(self, x: Tensor, lengths: Tensor, *, scratch: bool) -> tuple[Tensor, CellRun]:
        """Run layer by layer; the backward direction reads each row reversed within its length,
        so it never sees padding. Returns outputs (B, T, D*H) and the last forward CellRun
        (its hidden / cell lists are filled only when scratch=True).
        """
        spec = self.spec
        index = reverse_index(lengths, x.shape[1], x.device) if spec.bidirectional else None
        layer_input = x  # (B, T, In)
        forward = None
        for layer in range(spec.num_layers):
            if layer > 0:
                layer_input = F.dropout(layer_input, spec.dropout, self.training)
            forward = self._direction(layer_input, layer, reverse=False, scratch=scratch)
            outputs = [forward.output]  # (B, T, H)
            if index is not None:
                flipped = reverse_within(layer_input, index)
                backward = self._direction(flipped, layer, reverse=True, scratch=scratch)
                outputs.append(reverse_within(backward.output, index))
            layer_input = torch.cat(outputs, dim=-1)  # (B, T, D*H)
        assert forward is not None
        return layer_input, forward

    def _direction(self, x: Tensor, layer: int, *, reverse: bool, scratch: bool) -> CellRun:
        """One layer and direction, run forward in time over x (already reversed if backward)."""
        weights = layer_weights(self.rnn, layer, reverse)
        if scratch:
            return run_cells(self.spec.kind, x, weights)
        output = fused_direction(self.spec.kind, x, weights, training=self.training)
        return CellRun(output, output[:, -1], None, [], None)


for _kind, _display, _colour, _year in (
    ("rnn", "RNN", "tab:red", 1990), ("lstm", "LSTM", "tab:blue", 1997),
    ("gru", "GRU", "tab:green", 2014),
):  # fmt: skip
    register_family(
        _kind, display=_display, group=SERIAL, colour=_colour, gate_blocks=GATES[_kind],
        recurrent_matmul=True, gated=_kind != "rnn", year=_year,
    )(RecurrentClassifier)  # fmt: skip


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameter counts: embedding, recurrent (the sequence encoder), head, total (and
    trainable), from the family's `parts()`."""

    def size(module: nn.Module | None, trainable_only: bool = False) -> int:
        if module is None:
            return 0
        return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

    parts = model.parts()  # type: ignore[operator]
    return {
        "embedding": size(parts["embedding"]),
        "recurrent": size(parts["recurrent"]),
        "head": size(parts["head"]),
        "total": size(model),
        "trainable": size(model, trainable_only=True),
    }
