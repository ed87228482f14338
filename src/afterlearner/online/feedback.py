"""Feedback kinds and the one rule that turns any of them into what the optimizer is told.

A person is shown the ``k`` candidates of a proposal next to the *current best* (called
``"current"`` below). They answer in one of four ways:

``Best(choice)``        candidate ``choice`` is better than the current best and than every other candidate.
``NoneBetter()``        the current best is better than every candidate.
``Ranking(order)``      a full ranking, best first, of the ``k`` candidates and ``"current"``.
``Pair(winner, loser)`` one comparison between two of them (candidate indices or ``"current"``).

How an answer becomes tells
---------------------------
Comparison-based optimizers only ever compare losses, so any numbers whose order agrees with the
person's answer carry all the information they use. Let ``λ`` be the loss told for the current best
(0 at the start, lower after each improvement). From the answer we take the strict preferences it
states, closed under transitivity, and place each candidate ``c`` in one of three groups:

* **better** (``c ≻ current`` is implied): told ``λ − 1 − d/|better|``, where ``d`` counts the better
  candidates that ``c`` is implied to beat; the lowest becomes the new current best and its loss the
  new ``λ``. Only a candidate the person put above the current best is ever told as an improvement.
* **unknown** (no comparison with the current best is implied): told ``λ + ½ + u/(2·|unknown|)``,
  where ``u`` counts the unknown candidates implied to beat ``c``: not an improvement, ordered as the
  answer says. Not ``λ`` itself: optimizers that accept ties (differential evolution replaces a
  parent by a child whose loss is ``<=``) would otherwise drop the confirmed best for a candidate
  nobody said was as good; with a person, silence means "not preferred".
* **worse** (``current ≻ c`` is implied): told ``λ + 1 + w/|worse|``, ``w`` as above.

So ``Best(i)`` tells ``i`` ``λ−1`` and the others ``λ+½``; ``NoneBetter`` tells every candidate
``λ+1``; a ``Ranking`` tells a strictly ordered list straddling ``λ``; ``Pair(a, "current")`` tells
``a`` ``λ−1`` and the rest ``λ+½``; ``Pair("current", b)`` tells ``b`` ``λ+1`` and the rest ``λ+½``;
``Pair(a, b)`` tells ``a`` (and the others) ``λ+½`` and ``b`` a little more. Candidates the answer
says nothing about are told ``λ+½``.
The rule is a pure function of (answer, k, λ), so replaying stored answers re-tells exactly the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from afterlearner.errors import AfterlearnerError

#: How answers and rankings name the current best (candidates are named by their index 0..k-1).
CURRENT = "current"
Item = int | Literal["current"]


class FeedbackError(AfterlearnerError, ValueError):
    """An answer is malformed, names unknown candidates, or does not fit the proposal."""


@dataclass(frozen=True)
class Best:
    """The candidate ``choice`` beats the current best and every other candidate."""

    choice: int
    kind: Literal["best"] = "best"


@dataclass(frozen=True)
class NoneBetter:
    """No candidate is better than the current best."""

    kind: Literal["none"] = "none"


@dataclass(frozen=True)
class Ranking:
    """Every candidate index and ``"current"`` exactly once, best first."""

    order: tuple[Item, ...]
    kind: Literal["ranking"] = "ranking"


@dataclass(frozen=True)
class Pair:
    """One comparison: ``winner`` is better than ``loser`` (indices or ``"current"``)."""

    winner: Item
    loser: Item
    kind: Literal["pair"] = "pair"


Feedback = Best | NoneBetter | Ranking | Pair


@dataclass(frozen=True)
class Tells:
    """What one answer tells the optimizer: a loss per candidate, and the new current best if any."""

    losses: tuple[float, ...]
    new_best: int | None
    level: float


# -- parsing and validation -----------------------------------------------------------------------
def _item(value: Any, k: int, field: str) -> Item:
    if value == CURRENT:
        return CURRENT
    if isinstance(value, bool) or not isinstance(value, int):
        raise FeedbackError(f"{field} must be a candidate index 0..{k - 1} or {CURRENT!r}, got {value!r}")
    if not 0 <= value < k:
        raise FeedbackError(f"{field} {value} is not a candidate of this proposal (indices 0..{k - 1})")
    return value


def validate(feedback: Feedback, k: int) -> Feedback:
    """Check that ``feedback`` fits a proposal of ``k`` candidates; returns it unchanged."""
    if isinstance(feedback, Best):
        if _item(feedback.choice, k, "choice") == CURRENT:
            raise FeedbackError("choice must be a candidate; to keep the current best answer 'none'")
    elif isinstance(feedback, Pair):
        winner, loser = _item(feedback.winner, k, "winner"), _item(feedback.loser, k, "loser")
        if winner == loser:
            raise FeedbackError(f"winner and loser must differ, both are {winner!r}")
    elif isinstance(feedback, Ranking):
        order = [_item(item, k, "ranking item") for item in feedback.order]
        expected = sorted(range(k)) + [CURRENT]
        if len(order) != k + 1 or sorted(order, key=str) != sorted(expected, key=str):
            raise FeedbackError(
                f"a ranking must list each candidate 0..{k - 1} and {CURRENT!r} exactly once, "
                f"got {list(feedback.order)}"
            )
    elif not isinstance(feedback, NoneBetter):
        raise FeedbackError(f"unknown feedback {feedback!r}")
    return feedback


def parse(payload: Any, k: int) -> Feedback:
    """A feedback from its JSON form, e.g. ``{"kind": "best", "choice": 2}``; or :class:`FeedbackError`."""
    if not isinstance(payload, dict):
        raise FeedbackError(f"feedback must be a JSON object with a 'kind', got {type(payload).__name__}")
    kind = payload.get("kind")
    fields = {"best": {"choice"}, "none": set(), "ranking": {"order"}, "pair": {"winner", "loser"}}
    if kind not in fields:
        raise FeedbackError(f"feedback kind must be one of {', '.join(fields)}, got {kind!r}")
    given = set(payload) - {"kind"}
    if given != fields[kind]:
        raise FeedbackError(
            f"a {kind!r} answer needs exactly the fields {sorted(fields[kind])}, got {sorted(given)}"
        )
    if kind == "best":
        feedback: Feedback = Best(payload["choice"])
    elif kind == "none":
        feedback = NoneBetter()
    elif kind == "ranking":
        if not isinstance(payload["order"], list):
            raise FeedbackError("a ranking's 'order' must be a list")
        feedback = Ranking(tuple(payload["order"]))
    else:
        feedback = Pair(payload["winner"], payload["loser"])
    return validate(feedback, k)


def to_json(feedback: Feedback) -> dict[str, Any]:
    """The JSON form :func:`parse` reads."""
    if isinstance(feedback, Best):
        return {"kind": "best", "choice": feedback.choice}
    if isinstance(feedback, Ranking):
        return {"kind": "ranking", "order": list(feedback.order)}
    if isinstance(feedback, Pair):
        return {"kind": "pair", "winner": feedback.winner, "loser": feedback.loser}
    return {"kind": "none"}


# -- from answers to tells ------------------------------------------------------------------------
def preferences(feedback: Feedback, k: int) -> set[tuple[Item, Item]]:
    """The strict preferences ``(better, worse)`` an answer states, closed under transitivity."""
    validate(feedback, k)
    everything: list[Item] = [*range(k), CURRENT]
    if isinstance(feedback, Best):
        stated = {(feedback.choice, other) for other in everything if other != feedback.choice}
    elif isinstance(feedback, NoneBetter):
        stated = {(CURRENT, c) for c in range(k)}
    elif isinstance(feedback, Ranking):
        order = feedback.order
        stated = {(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))}
    else:
        stated = {(feedback.winner, feedback.loser)}
    closed = set(stated)
    while True:
        extra = {(a, d) for a, b in closed for c, d in closed if b == c and a != d} - closed
        if not extra:
            return closed
        closed |= extra


def tells(feedback: Feedback, k: int, level: float) -> Tells:
    """The losses to tell for the ``k`` candidates, given the current best's loss ``level``."""
    prefs = preferences(feedback, k)
    better = [c for c in range(k) if (c, CURRENT) in prefs]
    worse = [c for c in range(k) if (CURRENT, c) in prefs]
    unknown = [c for c in range(k) if c not in better and c not in worse]
    losses = [0.0] * k
    for c in better:
        beaten = sum((c, other) in prefs for other in better)
        losses[c] = level - 1 - beaten / len(better)
    for c in unknown:
        losses[c] = level + 0.5 + sum((other, c) in prefs for other in unknown) / (2 * len(unknown))
    for c in worse:
        losses[c] = level + 1 + sum((other, c) in prefs for other in worse) / len(worse)
    if not better:
        return Tells(tuple(losses), None, level)
    new_best = min(better, key=lambda c: losses[c])
    return Tells(tuple(losses), new_best, losses[new_best])
