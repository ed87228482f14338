"""A simulated user: a hidden target score, revealed to the session only through comparisons.

It lets tests and docs measure a feedback session without a person: the user prefers lower
``score(vector)`` and answers a proposal as a person would, in one of the feedback kinds, never
with a number. :func:`drive` runs a session with it and returns the curve of the hidden score of
the session's current best after each answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from afterlearner.online.feedback import CURRENT, Best, Feedback, NoneBetter, Pair, Ranking
from afterlearner.online.session import FeedbackSession, Proposal

Style = Literal["best", "ranking", "pair"]


@dataclass
class SimulatedUser:
    """Prefers lower ``score``; answers with ``style``: best-of-k (or none), a full ranking, or one pair.

    ``pair`` compares the best-looking candidate with the current best only (one click: "this or
    the current one"). Ties count as "not better", as a cautious person would answer.
    """

    score: Callable[[np.ndarray], float]
    style: Style = "best"

    def answer(self, proposal: Proposal, best: np.ndarray) -> Feedback:
        scores = [self.score(candidate.vector) for candidate in proposal.candidates]
        current = self.score(best)
        top = int(np.argmin(scores))
        if self.style == "ranking":
            items: list[tuple[float, int, int | str]] = [(s, 0, i) for i, s in enumerate(scores)]
            items.append((current, -1, CURRENT))  # the current best first among ties
            return Ranking(tuple(item for _, _, item in sorted(items, key=lambda t: (t[0], t[1]))))
        if self.style == "pair":
            return Pair(top, CURRENT) if scores[top] < current else Pair(CURRENT, top)
        return Best(top) if scores[top] < current else NoneBetter()


def drive(session: FeedbackSession, user: SimulatedUser, answers: int | None = None) -> list[float]:
    """Let ``user`` answer up to ``answers`` proposals; hidden score of the best, before and after each."""
    curve = [user.score(session.best.vector)]
    remaining = session.budget if answers is None else answers
    while remaining > 0:
        proposal = session.propose()
        if proposal is None:
            break
        session.answer(proposal.id, user.answer(proposal, session.best.vector))
        curve.append(user.score(session.best.vector))
        remaining -= 1
    return curve
