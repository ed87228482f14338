"""Registry entry: code translation retrofitted for BLEU (see :mod:`.task`)."""

from __future__ import annotations

from afterlearner.experiments.code_translation import task as _task
from afterlearner.task import Task

TITLE = "Code translation (JavaScript → Python, small transformer) retrofitted for BLEU"
METRIC = "1 − BLEU/100"
BOUND_NOTE = "indicative only: corpus BLEU is not a mean of per-program losses in [0, 1]"
DEFAULT_BUDGET = _task.DEFAULT_BUDGET
DEFAULT_OPTIMIZER = _task.DEFAULT_OPTIMIZER
extra_metrics = _task.extra_metrics


def make_task(reduced: bool = False) -> Task:
    return _task.make_task(reduced, metric="bleu")


def task() -> Task:
    """Factory for ``afterlearner run src/afterlearner/experiments/code_translation/bleu.py:task``."""
    return make_task()
