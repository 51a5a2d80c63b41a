"""Sections for diagnostic results, built through the registry from typed results.

Each registered diagnostic gets its section (title and "how to read it" from its entry), its
results' tables, and their saved PNGs with the captions of `Result.figures()`. A kind this
version does not know still gets a section with its figures.
"""

from __future__ import annotations

from pathlib import Path

from rnnlab.diagnostics import REGISTRY
from rnnlab.diagnostics.result import ShadedText
from rnnlab.formatting import sig
from rnnlab.report.collect import Collection, ResultFolder
from rnnlab.report.page import (
    Figure,
    Section,
    Shaded,
    ShadedPanel,
    ShadedSpan,
    png_file_uri,
    shade_style,
)
from rnnlab.report.sections import accuracy_by_length_figure

CONTAINERS = {"diagnose_all", "study"}
"""Kinds of result.json that only index the results below them: no section of their own."""


def result_sections(c: Collection) -> list[Section]:
    """One section per registered diagnostic with results, then one per unknown kind."""
    sections = []
    for entry in REGISTRY:
        results = [r for r in c.results if r.entry is entry]
        section = Section(
            entry.section_id, entry.title, lead=list(entry.how_to_read) if results else []
        )
        for result in results:
            _add_result(section, result, c)
        if entry.name == "seq-len":  # the trained models' own accuracy by length
            found = accuracy_by_length_figure(c)
            if found:
                section.figures.append(found[0])
                section.tables.append(found[1])
        if not section.empty or section.notes:  # "not applicable to <model>" lines only
            sections.append(section)
    unknown: dict[str, list[ResultFolder]] = {}
    for result in c.results:
        if result.entry is None and result.kind not in CONTAINERS:
            unknown.setdefault(result.kind, []).append(result)
    for kind, results in unknown.items():
        name = kind.replace("_", " ").replace("-", " ")
        section = Section(f"result-{kind.replace('_', '-')}", name.capitalize())
        for result in results:
            for path in result.figures:
                _add_figure(section, result, path, f"{name}: {path.stem.replace('_', ' ')}", [], c)
        if not section.empty:
            sections.append(section)
    return sections


def _add_result(section: Section, folder: ResultFolder, c: Collection) -> None:
    assert folder.result is not None
    section.tables += folder.result.tables()
    section.notes += [n for n in folder.result.notices() if n not in section.notes]
    for spec in folder.result.figures():
        path = folder.path / spec.file
        if not _add_figure(section, folder, path, spec.title, spec.caption, c):
            section.lead += spec.caption  # the numbers still read without their picture
    section.shaded += [shaded(text) for text in folder.result.shaded_texts()]


def shaded(text: ShadedText) -> Shaded:
    """A result's shaded text as page data: every token with its inline background colour."""
    return Shaded(
        text.title,
        [
            ShadedPanel(
                column.title,
                column.note,
                [ShadedSpan(t.text, shade_style(t.weight), sig(t.score)) for t in column.tokens],
            )
            for column in text.columns
        ],
    )


def _add_figure(
    section: Section,
    folder: ResultFolder,
    path: Path,
    title: str,
    caption: list[str],
    c: Collection,
) -> bool:
    uri = png_file_uri(path)
    if uri is None:
        return False
    section.figures.append(
        Figure(title, uri, list(caption), alt=f"{folder.kind}: {path.stem}", source=c.rel(path))
    )
    return True
