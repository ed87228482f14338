"""Feedback kinds: parsing, validation, and the rule that turns an answer into tells."""

from __future__ import annotations

import itertools

import pytest

from afterlearner.online.feedback import (
    CURRENT,
    Best,
    FeedbackError,
    NoneBetter,
    Pair,
    Ranking,
    parse,
    preferences,
    tells,
    to_json,
)


def test_best_of_k_makes_the_choice_the_new_best_and_the_rest_no_improvement() -> None:
    told = tells(Best(2), 4, level=-3.0)
    assert told.losses == (-2.5, -2.5, -4.0, -2.5)
    assert told.new_best == 2 and told.level == -4.0


def test_none_better_tells_every_candidate_worse_than_the_current_best() -> None:
    told = tells(NoneBetter(), 3, level=-1.0)
    assert told.losses == (0.0, 0.0, 0.0)
    assert told.new_best is None and told.level == -1.0


def test_pairs() -> None:
    assert tells(Pair(1, CURRENT), 3, 0.0) == tells(Pair(1, CURRENT), 3, 0.0)
    told = tells(Pair(1, CURRENT), 3, 0.0)
    assert told.losses == (0.5, -1.0, 0.5) and told.new_best == 1
    told = tells(Pair(CURRENT, 0), 3, 0.0)
    assert told.losses == (1.0, 0.5, 0.5) and told.new_best is None
    told = tells(Pair(2, 0), 3, 0.0)
    assert told.losses[2] == told.losses[1] == 0.5 and 0.5 < told.losses[0] < 1.0 and told.new_best is None


@pytest.mark.parametrize("order", list(itertools.permutations([0, 1, 2, CURRENT])))
def test_every_ranking_is_told_in_its_exact_order(order: tuple) -> None:
    level = -2.5
    told = tells(Ranking(order), 3, level)
    value = {item: (level if item == CURRENT else told.losses[item]) for item in order}
    assert [value[item] for item in order] == sorted(value.values())
    assert len(set(value.values())) == 4  # strict: a ranking has no ties
    above = [item for item in order[: order.index(CURRENT)]]
    assert told.new_best == (above[0] if above else None)
    assert told.level == (told.losses[above[0]] if above else level)


def test_told_losses_never_contradict_a_stated_preference() -> None:
    answers = [
        Best(0),
        Best(3),
        NoneBetter(),
        Pair(0, 1),
        Pair(CURRENT, 3),
        Pair(2, CURRENT),
        Ranking((3, 1, CURRENT, 0, 2)),
    ]
    for answer in answers:
        told = tells(answer, 4, 1.5)
        value = {**dict(enumerate(told.losses)), CURRENT: 1.5}
        for better, worse in preferences(answer, 4):
            assert value[better] < value[worse], (answer, better, worse)
        improved = [c for c in range(4) if told.losses[c] < 1.5]
        assert improved == [c for c in range(4) if (c, CURRENT) in preferences(answer, 4)]


def test_unconfirmed_candidates_never_tie_with_the_current_best() -> None:
    for answer in [Best(1), Pair(0, 2), Pair(CURRENT, 1), Pair(2, CURRENT)]:
        told = tells(answer, 3, 0.0)
        assert all(loss != 0.0 for loss in told.losses)


def test_transitivity_is_used() -> None:
    assert (0, 2) in preferences(Ranking((0, CURRENT, 2, 1)), 3)
    assert (0, CURRENT) in preferences(Best(0), 3)


def test_json_round_trip() -> None:
    for answer in [Best(1), NoneBetter(), Pair(CURRENT, 0), Ranking((1, CURRENT, 0))]:
        assert parse(to_json(answer), 2) == answer


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "JSON object"),
        ({"choice": 1}, "kind must be one of"),
        ({"kind": "worst", "choice": 1}, "kind must be one of"),
        ({"kind": "best"}, "exactly the fields"),
        ({"kind": "best", "choice": 1, "extra": 2}, "exactly the fields"),
        ({"kind": "best", "choice": 4}, "not a candidate"),
        ({"kind": "best", "choice": -1}, "not a candidate"),
        ({"kind": "best", "choice": "1"}, "candidate index"),
        ({"kind": "best", "choice": True}, "candidate index"),
        ({"kind": "best", "choice": 1.0}, "candidate index"),
        ({"kind": "best", "choice": CURRENT}, "answer 'none'"),
        ({"kind": "none", "choice": 0}, "exactly the fields"),
        ({"kind": "pair", "winner": 1, "loser": 1}, "must differ"),
        ({"kind": "pair", "winner": 1}, "exactly the fields"),
        ({"kind": "ranking", "order": "0,1"}, "must be a list"),
        ({"kind": "ranking", "order": [0, 1, 2, 3]}, "exactly once"),
        ({"kind": "ranking", "order": [0, 0, 1, 2, CURRENT]}, "exactly once"),
        ({"kind": "ranking", "order": [0, 1, 2, 3, CURRENT, CURRENT]}, "exactly once"),
    ],
)
def test_malformed_answers_are_refused_with_a_clear_message(payload: object, message: str) -> None:
    with pytest.raises(FeedbackError, match=message):
        parse(payload, 4)
