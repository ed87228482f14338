"""Feedback session logic: proposals, answers, anytime recommendation, optimizer restrictions, threads."""

from __future__ import annotations

import threading

import nevergrad as ng
import numpy as np
import pytest

from afterlearner.errors import ConfigError
from afterlearner.experiments.digits.steering import DigitSteering
from afterlearner.online import (
    Best,
    FeedbackError,
    FeedbackSession,
    NoneBetter,
    Pair,
    Ranking,
    SessionFinished,
    StaleProposal,
    UnknownProposal,
    text,
)


def render(vector: np.ndarray) -> object:
    return text(" ".join(f"{x:.3f}" for x in vector))


def session(**options: object) -> FeedbackSession:
    return FeedbackSession(ng.p.Array(init=np.zeros(3)), render, **{"k": 3, "budget": 5, **options})


def test_one_open_proposal_until_answered() -> None:
    s = session()
    first = s.propose()
    assert first is not None and first.id == 1 and len(first.candidates) == 3
    again = s.propose()
    assert again.id == 1 and all(
        np.array_equal(a.vector, b.vector) for a, b in zip(first.candidates, again.candidates, strict=True)
    )
    assert first.candidates[0].rendering.as_text() == render(first.candidates[0].vector).as_text()
    s.answer(1, Best(0))
    assert s.propose().id == 2


def test_recommendation_is_anytime_and_follows_improvements_only() -> None:
    s = session()
    assert np.array_equal(s.best.vector, np.zeros(3))
    assert s.best.rendering.as_text() == "0.000 0.000 0.000"
    p = s.propose()
    s.answer(p.id, NoneBetter())
    assert np.array_equal(s.best.vector, np.zeros(3)) and s.progress().improvements == 0
    p = s.propose()
    s.answer(p.id, {"kind": "best", "choice": 2})
    assert np.array_equal(s.best.vector, p.candidates[2].vector)
    p2 = s.propose()
    s.answer(p2.id, Pair("current", 1))
    assert np.array_equal(s.best.vector, p.candidates[2].vector)
    p3 = s.propose()
    s.answer(p3.id, Ranking((1, "current", 0, 2)))
    assert np.array_equal(s.best.vector, p3.candidates[1].vector)
    progress = s.progress()
    assert (progress.answers, progress.improvements, progress.done) == (4, 2, False)
    assert [h[0] for h in s.history()] == [1, 2, 3, 4]


def test_budget_ends_the_session() -> None:
    s = session(budget=2)
    for _ in range(2):
        s.answer(s.propose().id, NoneBetter())
    assert s.propose() is None and s.progress().done
    with pytest.raises(SessionFinished, match="all 2 answers"):
        s.answer(3, NoneBetter())
    with pytest.raises(StaleProposal, match="already answered"):
        s.answer(2, NoneBetter())


def test_wrong_answers_change_nothing() -> None:
    s = session()
    p = s.propose()
    for proposal, answer, error in [
        (7, Best(0), UnknownProposal),
        (0, Best(0), UnknownProposal),
        ("1", Best(0), FeedbackError),
        (1, Best(5), FeedbackError),
        (1, {"kind": "nope"}, FeedbackError),
    ]:
        with pytest.raises(error):
            s.answer(proposal, answer)
    assert s.progress().answers == 0 and s.propose().id == p.id
    s.answer(1, Best(1))
    with pytest.raises(StaleProposal, match="proposal 1 was already answered$"):
        s.answer(1, Best(1))
    s.propose()
    with pytest.raises(StaleProposal, match="proposal 1 was already answered; the open proposal is 2"):
        s.answer(1, Best(1))
    assert s.progress().answers == 1


def test_only_comparison_based_optimizers() -> None:
    with pytest.raises(ConfigError, match="NGOpt uses loss values"):
        session(optimizer="NGOpt")
    with pytest.raises(ConfigError, match="unknown optimizer"):
        session(optimizer="NoSuchOptimizer")
    for name in ("OnePlusOne", "DiagonalCMA", "TwoPointsDE", "RandomSearch"):
        s = session(optimizer=name)
        s.answer(s.propose().id, Best(0))


@pytest.mark.parametrize(("option", "value"), [("k", 0), ("budget", 0), ("seed", -1), ("k", 2.5)])
def test_bad_settings(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        session(**{option: value})


def test_bad_space_and_renderer() -> None:
    with pytest.raises(ConfigError, match="Aleph or ng.p parameter"):
        FeedbackSession([0.0, 1.0], render)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="render must be"):
        FeedbackSession(ng.p.Array(init=np.zeros(2)), "not callable")  # type: ignore[arg-type]
    s = FeedbackSession(ng.p.Array(init=np.zeros(2)), lambda v: "a string")  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigError, match="not an online Rendering"):
        s.propose()


def test_same_seed_same_session_other_seed_other_proposals() -> None:
    a, b, c = session(seed=4), session(seed=4), session(seed=5)
    for _ in range(3):
        pa, pb = a.propose(), b.propose()
        pairs = zip(pa.candidates, pb.candidates, strict=True)
        assert all(np.array_equal(x.vector, y.vector) for x, y in pairs)
        a.answer(pa.id, Best(1))
        b.answer(pb.id, Best(1))
    other, same = c.propose().candidates[0].vector, session(seed=4).propose().candidates[0].vector
    assert not np.array_equal(other, same)


def test_the_current_best_is_never_proposed_again() -> None:
    # OnePlusOne asks its starting point first; the session tells it without showing it
    s = session(optimizer="OnePlusOne", budget=3)
    for _ in range(3):
        p = s.propose()
        assert not any(np.array_equal(c.vector, s.best.vector) for c in p.candidates)
        s.answer(p.id, NoneBetter())


def test_concurrent_answers_to_one_proposal_count_once() -> None:
    s = session(k=2, budget=50)
    for _ in range(10):
        p = s.propose()
        results: list[str] = []
        barrier = threading.Barrier(4)

        def vote(
            choice: int,
            proposal_id: int = p.id,
            barrier: threading.Barrier = barrier,
            results: list[str] = results,
        ) -> None:
            barrier.wait()
            try:
                s.answer(proposal_id, Best(choice))
                results.append("ok")
            except StaleProposal:
                results.append("stale")

        threads = [threading.Thread(target=vote, args=(i % 2,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == ["ok", "stale", "stale", "stale"]
    assert s.progress().answers == 10


def test_aleph_space_renders_through_the_model_and_restores_it() -> None:
    demo = DigitSteering()
    before = {name: t.clone() for name, t in demo.model.state_dict().items()}
    s = demo.task(k=3, budget=2).session(seed=1)
    p = s.propose()
    assert len(p.candidates[0].vector) == 11
    rendering = p.candidates[0].rendering
    assert rendering.kind == "image" and rendering.data[:8] == b"\x89PNG\r\n\x1a\n"
    s.answer(p.id, Best(1))
    after = demo.model.state_dict()
    assert all(np.array_equal(before[name].numpy(), after[name].numpy()) for name in before)
    assert np.array_equal(s.best.vector, p.candidates[1].vector)
