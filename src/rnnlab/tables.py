"""Tables of results: one shape for the CLI (rich, on a terminal) and the report (HTML)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable


@dataclass
class Table:
    """A small table of already formatted cells."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    """Sentences shown under the table."""
    numeric: list[bool] = field(default_factory=list)
    """Per column: right-align (numbers). Empty: every column but the first."""
    row_ids: list[str] = field(default_factory=list)
    """Optional `data-row` attribute per row in the report (tests find rows by it)."""

    def right_aligned(self, column: int) -> bool:
        return self.numeric[column] if self.numeric else column > 0


def print_tables(tables: Sequence[Table], console: Any = None) -> None:
    """Each table with rich (markup in cells is shown literally), then its notes."""
    console = console or Console()
    if not console.is_terminal:  # a pipe or file: do not wrap wide tables at 80 columns
        console = Console(file=console.file, width=max(console.width, 140), highlight=False)
    for t in tables:
        table = RichTable(title=escape(t.title), title_justify="left")
        for i, column in enumerate(t.columns):
            table.add_column(escape(column), justify="right" if t.right_aligned(i) else "left")
        for row in t.rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
        for note in t.notes:
            console.print(f"  {escape(note)}")
