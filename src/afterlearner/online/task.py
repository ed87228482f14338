"""What ``afterlearner feedback serve path/to/task.py:factory`` loads: a factory returning a FeedbackTask.

A feedback task file looks like::

    from afterlearner.online import FeedbackTask, image

    def factory() -> FeedbackTask:
        model = ...                                    # a trained model, or a generator
        aleph = Aleph(model).add("fc.bias")            # or a plain ng.p.Array for a latent
        def render(vector):                            # candidate vector -> Rendering
            with aleph.applied(vector):                # the model holds the candidate in the block
                return image(model().detach().numpy())   # or sound(samples, rate), text(string)
        return FeedbackTask(aleph, render, k=4, budget=30, prompt="Which digit looks most like a 3?")

The factory is called with no arguments. ``render`` is only ever called by one thread at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nevergrad as ng
import numpy as np

from afterlearner.errors import ConfigError
from afterlearner.online.render import Rendering
from afterlearner.online.session import DEFAULT_OPTIMIZER, FeedbackSession
from afterlearner.space import Aleph
from afterlearner.task import build_from_spec

AnswerKind = Literal["best", "ranking", "pair"]
ANSWER_KINDS: tuple[AnswerKind, ...] = ("best", "ranking", "pair")
#: The page offers drag-to-rank up to this many candidates (and the current best); above, best-of-k.
MAX_RANKED = 6


def answer_kind(asked: AnswerKind, k: int) -> AnswerKind:
    """How the page asks for answers to proposals of ``k`` candidates when the task asks ``asked``."""
    return "best" if asked == "ranking" and k > MAX_RANKED else asked


@dataclass
class FeedbackTask:
    """The space searched, how a candidate is shown, and the session's defaults.

    ``space``: an :class:`~afterlearner.Aleph` or a Nevergrad parameter (Array/Scalar or a Tuple of them).
    ``render``: candidate vector (flat, natural units) → :class:`~afterlearner.online.Rendering`.
    ``k`` candidates per proposal, ``budget`` answers, ``optimizer`` (comparison-based), ``prompt``
    (the question on the page), ``name`` and ``description`` (shown on the page), ``answer``: how
    the page asks for answers: ``"best"`` (click the best of the k, or "none is better"),
    ``"ranking"`` (drag the k and the current best into order; k ≤ :data:`MAX_RANKED`, else the
    page asks for the best) or ``"pair"`` (two at a time, side by side: the candidates against each
    other, then the winner against the current best). The API accepts every kind whatever this says.
    """

    space: Aleph | ng.p.Parameter
    render: Callable[[np.ndarray], Rendering]
    k: int = 4
    budget: int = 30
    optimizer: str = DEFAULT_OPTIMIZER
    prompt: str = "Which one is best?"
    name: str | None = None
    description: str = ""
    answer: AnswerKind = "best"

    def __post_init__(self) -> None:
        if self.answer not in ANSWER_KINDS:
            raise ConfigError(f"answer must be one of {', '.join(ANSWER_KINDS)}, got {self.answer!r}")

    def session(self, store: str | Path | None = None, seed: int = 0, **overrides: object) -> FeedbackSession:
        """A :class:`FeedbackSession` on this task (``overrides``: k, budget, optimizer)."""
        options = {"k": self.k, "budget": self.budget, "optimizer": self.optimizer, **overrides}
        return FeedbackSession(self.space, self.render, seed=seed, store=store, **options)  # type: ignore[arg-type]


def load_feedback_task(spec: str) -> FeedbackTask:
    """Import ``path/to/task.py`` and call its factory; raises :class:`TaskError` if anything is off."""
    return build_from_spec(spec, FeedbackTask)
