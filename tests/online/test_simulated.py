"""A simulated user with a hidden target steers the digit demo through the same session as the page."""

from __future__ import annotations

import json

import nevergrad as ng
import numpy as np
import pytest
from paths import DOCS

from afterlearner.experiments.digits.curve import measure, summary
from afterlearner.experiments.digits.steering import DigitSteering, style_distance
from afterlearner.online import CURRENT, Best, FeedbackSession, NoneBetter, Pair, Ranking, text
from afterlearner.online.simulated import SimulatedUser, drive

CURVE = DOCS / "online-curve.json"


def test_the_user_answers_only_with_comparisons() -> None:
    s = FeedbackSession(ng.p.Array(init=np.zeros(1)), lambda v: text(str(v)), k=3, budget=3)
    p = s.propose()
    values = [c.vector[0] for c in p.candidates]
    score = lambda v: abs(float(v[0]) - values[1])  # noqa: E731  (candidate 1 is the target)
    assert SimulatedUser(score).answer(p, s.best.vector) == Best(1)
    assert SimulatedUser(lambda v: abs(float(v[0]))).answer(p, s.best.vector) == NoneBetter()
    ranking = SimulatedUser(score, "ranking").answer(p, s.best.vector)
    assert isinstance(ranking, Ranking) and ranking.order[0] == 1 and set(ranking.order) == {0, 1, 2, CURRENT}
    assert SimulatedUser(score, "pair").answer(p, s.best.vector) == Pair(1, CURRENT)


@pytest.mark.slow
def test_session_beats_the_start_and_random_proposals_within_30_answers() -> None:
    result = measure(answers=30, seeds=range(10))
    figures = summary(result)
    assert figures["session_mean"] < 0.25 * figures["start"]  # clearly better than the start
    assert figures["session_mean"] < 0.8 * figures["random_mean"]  # better than as many random proposals
    assert figures["session_wins"] >= 6
    assert all(curve[-1] < curve[0] for curve in result["session"])
    assert all(np.all(np.diff(curve) <= 0) for curve in result["session"])  # the best never gets worse
    committed = json.loads(CURVE.read_text())  # the figures in docs/online.md are what this code measures
    for name in ("session", "random"):
        np.testing.assert_allclose(result[name], committed[name], rtol=1e-6)


@pytest.mark.parametrize("style", ["ranking", "pair"])
def test_other_answer_kinds_steer_too(style: str) -> None:
    demo = DigitSteering()
    user = SimulatedUser(lambda v: style_distance(demo.image(v)), style=style)  # type: ignore[arg-type]
    curve = drive(demo.task(k=4, budget=30).session(seed=0), user)
    assert curve[-1] < 0.5 * curve[0]
