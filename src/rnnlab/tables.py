"""Tables of results: one shape for the CLI (rich, on a terminal), the report (HTML) and a
notebook (`Table.to_html`, what the results' `_repr_html_` shows)."""

from __future__ import annotations

import html
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

    def to_html(self) -> str:
        """The table as an HTML fragment, every title, header, cell and note escaped (a
        notebook renders it; the report has its own template)."""
        esc = html.escape

        def align(i: int) -> str:
            return f' style="text-align:{"right" if self.right_aligned(i) else "left"}"'

        head = "".join(f"<th{align(i)}>{esc(c)}</th>" for i, c in enumerate(self.columns))
        body = []
        for r, row in enumerate(self.rows):
            attr = f' data-row="{esc(self.row_ids[r])}"' if r < len(self.row_ids) else ""
            cells = "".join(f"<td{align(i)}>{esc(str(c))}</td>" for i, c in enumerate(row))
            body.append(f"<tr{attr}>{cells}</tr>")
        notes = "".join(f'<p style="margin:0.2em 0">{esc(n)}</p>' for n in self.notes)
        return (
            f'<table class="rnnlab-table"><caption style="text-align:left;font-weight:bold">'
            f"{esc(self.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{notes}"
        )


def html_block(heading: str, tables: Sequence[Table], notes: Sequence[str] = ()) -> str:
    """A heading, the tables and closing notes as one escaped HTML fragment (`_repr_html_`)."""
    parts = [f"<div><p><strong>{html.escape(heading)}</strong></p>"]
    parts += [table.to_html() for table in tables]
    parts += [f'<p style="margin:0.2em 0">{html.escape(n)}</p>' for n in notes]
    return "".join(parts) + "</div>"


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
