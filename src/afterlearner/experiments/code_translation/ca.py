"""Registry entry: code translation retrofitted for computational accuracy (see :mod:`.task`)."""

from __future__ import annotations

from afterlearner.experiments.code_translation import task as _task
from afterlearner.task import Task

TITLE = "Code translation (JavaScript → Python, small transformer) retrofitted for computational accuracy"
METRIC = "1 − computational accuracy"
DEFAULT_BUDGET = _task.DEFAULT_BUDGET
DEFAULT_OPTIMIZER = _task.DEFAULT_OPTIMIZER
extra_metrics = _task.extra_metrics


def make_task(reduced: bool = False) -> Task:
    return _task.make_task(reduced, metric="ca")


def task() -> Task:
    """Factory for ``afterlearner run src/afterlearner/experiments/code_translation/ca.py:task``."""
    return make_task()
