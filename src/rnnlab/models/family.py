"""The family registry: each model family declares itself in its own module.

```python
@register_family("gru", display="GRU", group=SERIAL, colour="tab:green", gate_blocks=3,
                 recurrent_matmul=True, gated=True)
class RecurrentClassifier(TextClassifier): ...
```

One class may serve several kinds (one decorator each). Everything that lists the families
reads this registry: the kinds a ModelSpec accepts, the report's grouping ("Beyond
recurrence"), plot colours and the recurrent FLOPs per token. A family's capabilities (packed
mode, per-step states, poolings) stay on its class (`TextClassifier`'s ClassVars); presets,
one line each, live in rnnlab.models.registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from rnnlab.errors import check

SERIAL = "recurrent (serial loop)"
"""A state that feeds a matmul at every step: training walks the sequence step by step."""
SCAN = "parallel scan"
"""A recurrence that is linear in its state: it trains as a scan over the whole sequence."""
ATTENTION = "attention"
BAG = "bag of n-grams"
"""No word order beyond pairs of words."""
GROUPS = (SERIAL, SCAN, ATTENTION, BAG)


@dataclass(frozen=True)
class Family:
    """What rnnlab knows about one model kind besides its class."""

    kind: str
    """The ModelSpec kind (`gru`); presets name it."""
    builder: type
    """The TextClassifier subclass that builds it from a ModelSpec."""
    display: str
    """Its name in prose (`GRU`, `minGRU`)."""
    group: str
    """One of GROUPS: how it reads a sequence (the report's family column)."""
    colour: str
    """Its matplotlib colour in every figure that shows one line per kind."""
    gate_blocks: int = 0
    """Matmul blocks of width H per layer and direction (1 rnn, 3 gru, 4 lstm; 2 minGRU, 3
    minLSTM); 0: no recurrent layers are counted (`ModelSpec.recurrent_flops_per_token`)."""
    recurrent_matmul: bool = False
    """Whether the previous state feeds a (H x G·H) matmul at every step."""
    gated: bool = False
    """A gated cell (LSTM, GRU, ...): the report's baseline among the recurrent models."""
    year: int | None = None
    """The year of the paper that introduced it (the report's "After gates" table)."""

    @property
    def serial(self) -> bool:
        return self.group == SERIAL

    @property
    def reads_order(self) -> bool:
        """Reads word order beyond pairs of words."""
        return self.group != BAG

    @property
    def parallel(self) -> bool:
        """Reads word order and trains without a serial loop."""
        return self.reads_order and not self.serial


FAMILIES: dict[str, Family] = {}
"""Kind -> Family, in the order the families registered (rnnlab.models.families imports
every family module rnnlab ships)."""

T = TypeVar("T", bound=type)


def register_family(kind: str, **declared: Any) -> Callable[[T], T]:
    """Class decorator: register the class as the builder of `kind` (Family's other fields as
    keywords). Registering a kind twice is an error, so two modules cannot claim one name."""

    def register(cls: T) -> T:
        check(kind not in FAMILIES, f"model kind {kind!r} is registered twice")
        family = Family(kind=kind, builder=cls, **declared)
        check(family.group in GROUPS, f"{kind}: group must be one of {', '.join(GROUPS)}")
        FAMILIES[kind] = family
        return cls

    return register


def kinds() -> tuple[str, ...]:
    """Every registered kind, in registration order."""
    return tuple(FAMILIES)


def family(kind: str) -> Family:
    """The registered family of `kind`; an unknown kind lists the valid ones."""
    check(kind in FAMILIES, f"kind must be one of {', '.join(FAMILIES)}, not {kind!r}")
    return FAMILIES[kind]
