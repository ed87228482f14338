"""A feedback task over a plain parametrization rendered as sound: a tone's pitch and loudness."""

from __future__ import annotations

import nevergrad as ng
import numpy as np

from afterlearner.online import FeedbackTask, sound

RATE = 8000


def render(vector: np.ndarray) -> object:
    pitch, loudness = vector
    t = np.arange(RATE // 4) / RATE
    return sound(loudness * np.sin(2 * np.pi * pitch * t), rate=RATE)


def factory() -> FeedbackTask:
    space = ng.p.Tuple(ng.p.Scalar(440.0, lower=200.0, upper=900.0), ng.p.Scalar(0.5, lower=0.1, upper=0.9))
    return FeedbackTask(
        space,
        render,
        k=3,
        budget=2,
        prompt="Which tone is the most pleasant?",
        name="tone",
        optimizer="RandomSearch",
    )


def not_a_feedback_task() -> int:
    return 3
