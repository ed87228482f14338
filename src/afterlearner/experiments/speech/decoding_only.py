"""Speech resynthesis (word error rate) with only pocketsphinx's decoding settings.

Only pocketsphinx's language weight, word insertion penalty and beams (5 ℵ-parameters).
"""

from __future__ import annotations

from afterlearner.experiments.speech import BOUND_NOTE, DEFAULT_OPTIMIZER, METRIC, PROCESSES, WORKERS
from afterlearner.task import Task

TITLE = "espeak-ng → pocketsphinx: decoding settings alone retrofitted for word error rate"
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
    """Pocketsphinx's language weight, word insertion penalty and beams (5 ℵ-parameters)."""
    from afterlearner.experiments.speech.task import make_speech_task

    return make_speech_task("decoding", reduced=reduced, budget=DEFAULT_BUDGET)
