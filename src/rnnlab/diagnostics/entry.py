"""A registry entry: everything the CLI, `diagnose all`, the study and the report need to know
about one diagnostic, in one place (each diagnostic module defines its `DIAGNOSTIC`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rnnlab.diagnostics.inputs import Inputs, ModelEntry
from rnnlab.diagnostics.result import Result


@dataclass(frozen=True)
class Diagnostic:
    name: str
    """The one name of this diagnostic: CLI command, folder under `diagnose all` and the study,
    report section id; its result.json kind is the same with underscores."""
    command: tuple[str, str | None]
    """CLI verb group and command, e.g. ("diagnose", "gradient-flow"), ("synthetic", None)."""
    help: str
    """One line for --help."""
    title: str
    """The report section's title."""
    how_to_read: tuple[str, ...]
    """Sentences at the top of the report section."""
    settings: type
    """A frozen dataclass of typed, documented fields; its defaults are the full preset."""
    quick: Any
    """The quick preset (`diagnose all` and `study --quick`), a `settings` value."""
    result: type[Result]
    run: Callable[[Any, Inputs], Result]
    """run(settings, inputs) -> result; every input is checked before the work starts."""
    reads: str = "models"
    """Which CLI inputs it takes: `models` (--models or --run, data flags), `training` (training
    flags and --run for the base config), `data` (data flags, --run), `none`."""
    estimate: Callable[[Any, int], float] | None = None
    """Rough seconds on 2 idle CPU cores for (settings, number of models)."""
    check: Callable[[Any, Inputs], None] | None = None
    """Checks run before anything starts (e.g. that long enough texts exist)."""
    legacy_kinds: tuple[str, ...] = ()
    """Kinds earlier versions wrote for this result; read as this one."""
    section: str | None = None
    """Report section to join (parameters join "models"); None: its own, `name`."""
    positional: tuple[str, ...] = ()
    """Settings fields the CLI takes as positional arguments (synthetic TASK)."""
    aliases: tuple[str, ...] = ()
    """Other CLI command names (sweep hidden-size for sweep hidden)."""
    applies: Callable[[ModelEntry], str | None] | None = None
    """For `models` diagnostics: why it does not apply to a model (None: it does), e.g. hidden
    states of a model with no per-step state. `suite.run_one` runs the others and records one
    "not applicable to <model>" line per model left out (the CLI and the report show it)."""

    @property
    def kind(self) -> str:
        return self.name.replace("-", "_")

    @property
    def section_id(self) -> str:
        return self.section or self.name
