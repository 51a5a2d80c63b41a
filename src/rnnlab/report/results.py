"""Sections for diagnostic, sweep and synthetic results (result.json with a "kind" + PNGs).

Each known kind has a section with a short "how to read it" and sentences computed from the
numbers in result.json (see `rnnlab.report.readers`); a kind this module does not know still
gets a section with its figures, so a new diagnostic shows up before the report learns about it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.report import readers
from rnnlab.report.collect import Collection, ResultFolder, normalize_kind
from rnnlab.report.page import Figure, Section, Table, png_file_uri
from rnnlab.report.sections import test_length_figure

Reader = Callable[[ResultFolder], "readers.Reading"]


@dataclass(frozen=True)
class Kind:
    id: str
    title: str
    kinds: tuple[str, ...]
    how_to_read: tuple[str, ...]
    reader: Reader | None = None
    extra: Callable[[Collection], list[Figure | Table]] | None = field(default=None)


def _test_length(c: Collection) -> list[Figure | Table]:
    found = test_length_figure(c)
    return list(found) if found else []


KINDS: tuple[Kind, ...] = (
    Kind(
        "models",
        "The models",
        ("parameters", "parameter_counts"),
        (),
        readers.parameters,
    ),
    Kind(
        "gradient-flow",
        "Gradient flow through time",
        ("gradient_flow", "gradients", "gradient_norms"),
        (
            "How large the loss gradient is at each input time step: the signal a step gets "
            "from the loss at the end of the text.",
            "A curve that drops towards the early steps means those steps learn little "
            "(vanishing gradients); the log-scale view shows how many orders of magnitude are lost.",
        ),
        readers.gradient_flow,
    ),
    Kind(
        "embedding-gradient",
        "Embedding gradient vs text length",
        ("embedding_grad", "embedding_gradient", "embedding_gradients", "grad_vs_length"),
        (
            "The norm of the gradient on the word embeddings, against the length of the text.",
            "If it falls as texts get longer, the words of long texts barely change the "
            "embeddings: the model learns mostly from short texts.",
        ),
        readers.embedding_gradient,
    ),
    Kind(
        "hidden-states",
        "Hidden- and cell-state dynamics",
        ("hidden_states", "hidden_state", "state_dynamics", "states"),
        (
            "The norm of the hidden state (and of the LSTM cell state) at every step while "
            "the model reads a positive and a negative review.",
            "A tanh hidden state is bounded by 1 per unit; an LSTM cell state is not, which is "
            "how it carries information over long distances.",
        ),
        readers.hidden_states,
    ),
    Kind(
        "length-sweep",
        "Accuracy vs sequence length",
        ("length_sweep", "sequence_length", "accuracy_vs_length", "max_len_sweep", "sweep"),
        (
            "Test accuracy of models trained with different truncation lengths (max_len).",
            "Longer inputs carry more evidence, but a model that cannot carry information far "
            "gains little or even loses accuracy as max_len grows.",
        ),
        readers.length_sweep,
        _test_length,
    ),
    Kind(
        "capacity",
        "Hidden size vs accuracy",
        ("capacity", "hidden_size", "hidden_sweep", "hidden_size_sweep"),
        (
            "Test accuracy against the size of the hidden state.",
            "The whole text must fit in one fixed-size vector: where accuracy stops improving, "
            "more memory does not help.",
        ),
        readers.capacity,
    ),
    Kind(
        "timing",
        "Serial bottleneck: time vs sequence length",
        ("timing", "serial_bottleneck", "time_vs_length", "speed"),
        (
            "Time for a forward and backward pass against the sequence length.",
            "A recurrent layer must finish step t before step t+1, so time grows linearly with "
            "length however many cores there are.",
        ),
        readers.timing,
    ),
    Kind(
        "padding",
        "Padding waste",
        ("padding", "padding_waste", "packing"),
        (
            "How much of each batch is padding under random batching and under length "
            "bucketing, and what packing costs.",
            "Padding is computation spent on nothing; bucketing texts of similar length removes "
            "most of it without the slowness of packed sequences.",
        ),
        readers.padding,
    ),
    Kind(
        "synthetic",
        "Synthetic tasks",
        ("synthetic", "synthetic_sweep", "remember_first", "parity", "adding"),
        (
            "Tasks built to need memory over a known distance: e.g. remember-first labels a "
            "sequence by the sign of its first input, so the model must carry one number to the end.",
            "Chance level is the accuracy of guessing; a model at chance for long sequences "
            "cannot carry the information that far.",
        ),
        readers.synthetic,
    ),
)


CONTAINERS = {"diagnose_all", "study"}
"""Kinds of result.json that only index the results below them: no section of their own."""


def _kind_for(result: ResultFolder) -> Kind | None:
    name = normalize_kind(result.kind)
    return next((k for k in KINDS if name in k.kinds), None)


def result_sections(c: Collection) -> list[Section]:
    """One section per known kind with results, then one per unknown kind, in a fixed order."""
    sections = []
    for kind in KINDS:
        results = [r for r in c.results if _kind_for(r) is kind]
        extra = kind.extra(c) if kind.extra else []
        if not results and not extra:
            continue
        section = Section(kind.id, kind.title, lead=list(kind.how_to_read) if results else [])
        for result in results:
            _add_result(section, result, kind.reader, c)
        for item in extra:
            if isinstance(item, Figure):
                section.figures.append(item)
            else:
                section.tables.append(item)
        if not section.empty:
            sections.append(section)
    unknown: dict[str, list[ResultFolder]] = {}
    for result in c.results:
        if _kind_for(result) is None and normalize_kind(result.kind) not in CONTAINERS:
            unknown.setdefault(normalize_kind(result.kind), []).append(result)
    for name, results in unknown.items():
        section = Section(f"result-{name.replace('_', '-')}", name.replace("_", " ").capitalize())
        for result in results:
            _add_result(section, result, None, c)
        if not section.empty:
            sections.append(section)
    return sections


def _add_result(
    section: Section, result: ResultFolder, reader: Reader | None, c: Collection
) -> None:
    reading = reader(result) if reader else readers.Reading()
    for table in reading.tables:
        section.tables.append(table)
    section.notes += reading.notes
    for fig in reading.figures:
        section.figures.append(fig)
    figures = _ordered(result.figures, reading.figure_order)
    for path in figures:
        uri = png_file_uri(path)
        if uri is None:
            continue
        sentences = _caption(reading.captions, path.name)
        titles = {k: [v] for k, v in reading.titles.items()}
        title = (_caption(titles, path.name) or [_figure_title(section.title, result, path)])[0]
        section.figures.append(
            Figure(title, uri, sentences, alt=f"{result.kind}: {path.stem}", source=c.rel(path))
        )
    if not figures and not reading.figures and reading.captions.get("*"):
        section.lead += list(reading.captions["*"])


def _caption(captions: dict[str, list[str]], name: str) -> list[str]:
    """Sentences for a PNG: by exact name, else by a word of its name, else the default "*"."""
    if name in captions:
        return list(captions[name])
    stem = name.rsplit(".", 1)[0].replace("-", "_").split("_")
    for key, sentences in captions.items():
        if key != "*" and key in stem:
            return list(sentences)
    return list(captions.get("*", []))


def _ordered(paths: Sequence[Path], order: Sequence[str]) -> list[Path]:
    """PNGs in the reader's order (by a word of their name), the rest by name."""

    def key(path: Path) -> tuple[int, str]:
        for i, word in enumerate(order):
            if word in path.name:
                return (i, path.name)
        return (len(order), path.name)

    return sorted(paths, key=key)


def _figure_title(title: str, result: ResultFolder, path: Path) -> str:
    stem = path.stem.replace("_", " ").replace("-", " ")
    model = result.data.get("model") or result.data.get("run")
    where = f" ({model})" if isinstance(model, str) and model else ""
    return f"{title}: {stem}{where}" if stem else f"{title}{where}"
