"""The page as plain data: sections of figures, tables, sentences and code blocks.

Section builders fill these in; the Jinja2 template (autoescape on) only lays them out, so every
string here is shown as text, whatever it holds.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.tables import Table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Figure:
    title: str
    src: str
    """A `data:image/png;base64,...` URI: the page needs no other file."""
    sentences: list[str]
    alt: str = ""
    source: str = ""
    """Where the numbers or the image came from (a file path), shown small under the caption."""


@dataclass
class Block:
    """A titled pre-formatted text (a config file), folded by default."""

    title: str
    text: str


FOR_RGB = (26, 152, 80)
"""Shade of a token that speaks for the class (green)."""
AGAINST_RGB = (215, 48, 39)
"""Shade of a token that speaks against it (red)."""
MAX_ALPHA = 0.85


def shade_style(weight: float) -> str:
    """An inline CSS background for a token's weight in [-1, 1] (numbers only, never text)."""
    w = max(-1.0, min(1.0, float(weight))) if weight == weight else 0.0  # NaN -> no shade
    if abs(w) < 0.005:
        return ""
    r, g, b = FOR_RGB if w >= 0 else AGAINST_RGB
    return f"background: rgba({r}, {g}, {b}, {MAX_ALPHA * abs(w):.3f})"


@dataclass
class ShadedSpan:
    text: str
    style: str
    """`background: rgba(...)` built by `shade_style` from a number."""
    tip: str
    """Shown on hover: the raw score."""


@dataclass
class ShadedPanel:
    """One model's column of a shaded text."""

    title: str
    note: str
    spans: list[ShadedSpan]


@dataclass
class Shaded:
    """A text shown token by token, one panel per model, side by side."""

    title: str
    panels: list[ShadedPanel]


@dataclass
class Section:
    id: str
    title: str
    lead: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    """Tables (rnnlab.tables.Table: title, columns, rows, notes under it)."""
    blocks: list[Block] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    examples: list[tuple[str, str]] = field(default_factory=list)
    """(label, text) pairs of example texts."""
    facts: list[tuple[str, str]] = field(default_factory=list)
    """(name, value) pairs shown as a definition list."""
    shaded: list[Shaded] = field(default_factory=list)
    """Texts with every token shaded by a score (token attributions), after the figures."""

    @property
    def empty(self) -> bool:
        return not (
            self.figures or self.tables or self.blocks or self.examples or self.facts
            or self.shaded
        )  # fmt: skip


@dataclass
class Page:
    title: str
    subtitle: str
    sections: list[Section]
    warnings: list[str] = field(default_factory=list)
    generated: str = ""


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def png_file_uri(path: Path) -> str | None:
    """The file as a data URI, or None when it is not a readable PNG."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_MAGIC):
        return None
    return png_uri(data)
