"""What every diagnostic returns: a typed result that saves to, and loads from, a folder.

A result subclasses `Result`: `to_dict()` gives JSON-ready data with a top-level `"kind"`,
`from_dict()` rebuilds it (nested dataclasses included), `tables()` and `figures()` say how to
show it, and `save(folder)` writes each figure's PNG and then (last, atomically) result.json.
The CLI prints `tables()`; the report shows the same tables and the saved PNGs with the
captions of `figures()`, so there is one schema per result and it is the dataclass. A result
may also give `shaded_texts()`: texts whose tokens the report shades by a score (token
attributions), one column per model, side by side.

A diagnostic that does not apply to some of the models (hidden states of a Transformer) says so
in the result: `not_applicable` (saved as result.json's "not_applicable": [{label, kind,
reason}]) and `notices()`, one line per model, which the CLI prints and the report shows. When it
applies to none of them, the folder holds a `NotApplicableResult` (kind "not_applicable", with
the diagnostic's name) instead.
"""

from __future__ import annotations

import dataclasses
import shutil
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

from rnnlab.errors import RnnlabError
from rnnlab.io import read_json, write_json_atomic
from rnnlab.layout import RESULT
from rnnlab.plotting import save_png
from rnnlab.tables import Table, html_block

R = TypeVar("R", bound="Result")


@dataclass(frozen=True)
class FigureSpec:
    """One figure of a result: its file, title and caption, and how to draw it."""

    file: str
    """PNG file name inside the result folder."""
    title: str
    caption: list[str]
    """Sentences computed from the result's numbers."""
    draw: Callable[[], Any] = field(compare=False, repr=False)
    """Returns a matplotlib Figure (shown inline in a notebook; saved by `Result.save`)."""


@dataclass(frozen=True)
class ShadedToken:
    """One token of a shaded text."""

    text: str
    weight: float
    """In [-1, 1]: the shade (its sign: for or against; its size: how strongly)."""
    score: float
    """The raw score (shown on hover)."""


@dataclass(frozen=True)
class ShadedColumn:
    """One model's reading of a text."""

    title: str
    note: str
    tokens: list[ShadedToken]


@dataclass(frozen=True)
class ShadedText:
    """A text shown token by token, one column per model."""

    title: str
    columns: list[ShadedColumn]


@dataclass(frozen=True)
class NotApplicable:
    """A model a diagnostic left out, and why."""

    label: str
    kind: str
    """The model's family kind (rnn, bow, transformer, ...)."""
    reason: str

    def line(self, diagnostic: str) -> str:
        family = f" ({self.kind})" if self.kind != self.label else ""
        return f"{diagnostic}: not applicable to {self.label}{family}: {self.reason}"


NOT_APPLICABLE = "not_applicable"
"""result.json key of the models a diagnostic left out."""


class Result:
    """Mixin for result dataclasses: JSON round trip, tables and figures, saving to a folder."""

    kind: ClassVar[str] = ""

    @property
    def not_applicable(self) -> list[NotApplicable]:
        """The models this diagnostic does not apply to (set by `suite.run_one`)."""
        return list(self.__dict__.get("_not_applicable", []))

    @not_applicable.setter
    def not_applicable(self, items: list[NotApplicable]) -> None:
        self.__dict__["_not_applicable"] = list(items)

    @property
    def diagnostic(self) -> str:
        """The diagnostic's name in messages (its kind with dashes)."""
        return self.kind.replace("_", "-")

    def notices(self) -> list[str]:
        """One line per model left out: `hidden-states: not applicable to bow (bow): ...`."""
        return [item.line(self.diagnostic) for item in self.not_applicable]

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": self.kind, **dataclasses.asdict(self)}  # type: ignore[call-overload]
        if self.not_applicable:
            out[NOT_APPLICABLE] = [dataclasses.asdict(item) for item in self.not_applicable]
        return out

    @classmethod
    def from_dict(cls: type[R], raw: dict[str, Any], *, where: str = RESULT) -> R:
        """Rebuild from JSON data; a missing or unknown field is a one-line RnnlabError."""
        if not isinstance(raw, dict):
            raise RnnlabError(f"{where} is not a JSON object; run the diagnostic again")
        skip = ("kind", "version", NOT_APPLICABLE)
        try:
            result = build(cls, {k: v for k, v in raw.items() if k not in skip})
            result.not_applicable = [
                build(NotApplicable, item) for item in raw.get(NOT_APPLICABLE) or []
            ]
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise RnnlabError(
                f"{where} does not hold a {cls.kind} result ({exc}); run the diagnostic again"
            ) from None
        return result

    @classmethod
    def load(cls: type[R], path: Path | str) -> R:
        """Read a result.json (or the folder holding it)."""
        path = Path(path)
        file = path / RESULT if path.is_dir() else path
        return cls.from_dict(read_json(file), where=str(file))

    def tables(self) -> list[Table]:
        return []

    def figures(self) -> list[FigureSpec]:
        return []

    def shaded_texts(self) -> list[ShadedText]:
        """Texts the report shows with every token shaded by a score (none by default)."""
        return []

    def save(self, folder: Path | str) -> Path:
        """PNGs first, then result.json (atomically) last. A folder this call created is removed
        again if anything fails; in an existing folder the PNGs written so far are removed."""
        folder = Path(folder)
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        try:
            for spec in self.figures():
                written.append(save_png(spec.draw(), folder / spec.file))
            write_json_atomic(folder / RESULT, self.to_dict())
        except BaseException:
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                for path in written:
                    path.unlink(missing_ok=True)
            raise
        return folder

    def _repr_html_(self) -> str:
        """What a notebook shows: the result's tables (escaped), then its figures' titles
        (`result.figures()[i].draw()` returns each as a matplotlib figure)."""
        titles = [spec.title for spec in self.figures()]
        notes = [f"figures (result.figures()[i].draw()): {'; '.join(titles)}"] if titles else []
        notes += self.notices()
        return html_block(f"{self.kind.replace('_', ' ')} result", self.tables(), notes)


@dataclass
class NotApplicableResult(Result):
    """What a diagnostic saves when it applies to none of the models it was given."""

    kind = "not_applicable"

    name: str
    """The diagnostic (its registry name, e.g. hidden-states)."""
    models: list[NotApplicable] = field(default_factory=list)

    @property
    def diagnostic(self) -> str:
        return self.name

    def notices(self) -> list[str]:
        return [item.line(self.name) for item in self.models]


def build(tp: Any, value: Any) -> Any:
    """Rebuild `value` (plain JSON data) as type `tp` (dataclasses, lists, tuples, dicts,
    Optional). Unknown dataclass fields raise TypeError, missing required ones too."""
    if value is None:
        return None
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise TypeError(f"{tp.__name__} must be an object, not {type(value).__name__}")
        hints = get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp) if f.init}
        unknown = sorted(set(value) - names)
        if unknown:
            raise TypeError(f"unknown field(s) {unknown} in {tp.__name__}")
        return tp(**{k: build(hints[k], v) for k, v in value.items()})
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        return build(options[0], value) if len(options) == 1 else value
    if origin in (list, tuple):
        args = [a for a in get_args(tp) if a is not Ellipsis] or [Any]
        items: list[Any] = [build(args[0], v) for v in value]
        return items if origin is list else tuple(items)  # tuple fields stay tuples
    if origin is dict:
        key_value = get_args(tp)
        item = key_value[1] if len(key_value) == 2 else Any
        return {k: build(item, v) for k, v in value.items()}
    return value
