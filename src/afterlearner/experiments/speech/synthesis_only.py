"""Speech resynthesis (word error rate) with only the synthesis settings.

Only espeak-ng's speed, pitch, word gap and voice variant (4 ℵ-parameters).
"""

from __future__ import annotations

from afterlearner.experiments.speech import BOUND_NOTE, DEFAULT_OPTIMIZER, METRIC, PROCESSES, WORKERS
from afterlearner.task import Task

TITLE = "espeak-ng → pocketsphinx: synthesis settings alone retrofitted for word error rate"
DEFAULT_BUDGET = 30
__all__ = [
    "BOUND_NOTE",
    "DEFAULT_BUDGET",
    "DEFAULT_OPTIMIZER",
    "METRIC",
    "PROCESSES",
    "TITLE",
    "WORKERS",
    "make_task",
]


def make_task(reduced: bool = False) -> Task:
    """Espeak-ng's speed, pitch, word gap and voice variant (4 ℵ-parameters)."""
    from afterlearner.experiments.speech.task import make_speech_task

    return make_speech_task("synthesis", reduced=reduced, budget=DEFAULT_BUDGET)
