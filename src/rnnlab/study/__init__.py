"""The one-command study: compare the models, run every registered diagnostic on them, render
the report; resumable step by step.

    from rnnlab.study import run_study, study_settings
    run_study(study_settings("imdb", quick=True), "runs/demo")
"""

from rnnlab.layout import REPORT as REPORT_FILE
from rnnlab.layout import STUDY as STUDY_FILE
from rnnlab.study.runner import StudyResult, run_study
from rnnlab.study.settings import StudySettings, default_out, study_settings
from rnnlab.study.steps import Context, Step, build_steps

__all__ = [
    "REPORT_FILE",
    "STUDY_FILE",
    "Context",
    "Step",
    "StudyResult",
    "StudySettings",
    "build_steps",
    "default_out",
    "run_study",
    "study_settings",
]
