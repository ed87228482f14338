"""Feedback tasks asking for rankings and for pairs, rendered as text (for the browser test)."""

from __future__ import annotations

import nevergrad as ng
import numpy as np

from afterlearner.online import FeedbackTask, text


def render(vector: np.ndarray) -> object:
    return text(" ".join(f"{x:+.3f}" for x in vector))


def ranking() -> FeedbackTask:
    space = ng.p.Array(init=np.zeros(2))
    return FeedbackTask(space, render, k=3, budget=2, name="rank", answer="ranking", optimizer="RandomSearch")


def pairs() -> FeedbackTask:
    space = ng.p.Array(init=np.zeros(2))
    return FeedbackTask(space, render, k=3, budget=2, name="pairs", answer="pair", optimizer="RandomSearch")
