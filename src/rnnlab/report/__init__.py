"""The HTML report and the one-command study.

    rnnlab.report.render(["runs/study-imdb"], "report.html")   # -> Path of the page
    rnnlab.report.run_study(rnnlab.report.study_settings("imdb", quick=True), "runs/demo")

`render` reads saved folders only (collect -> sections -> Jinja2 template, autoescape on);
`run_study` calls the training and diagnostics library functions, then `render`.
Names are imported on first use, so `import rnnlab.report.curves` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render", "run_study", "study_settings"]


def __getattr__(name: str) -> Any:
    if name == "render":
        from rnnlab.report.html import render

        return render
    if name in ("run_study", "study_settings"):
        from rnnlab.report import study

        return getattr(study, name)
    raise AttributeError(f"module 'rnnlab.report' has no attribute {name!r}")
