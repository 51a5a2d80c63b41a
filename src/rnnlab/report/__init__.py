"""The HTML report: one self-contained page from saved result folders (nothing is re-run).

    rnnlab.report.render(["runs/study-imdb"], "report.html")   # -> Path of the page

collect (find and read the folders; diagnostic results typed through the registry) ->
sections (dataset, models, training, one per diagnostic, environment) -> the Jinja2 template
(autoescape on).
"""

from rnnlab.report.html import render

__all__ = ["render"]
