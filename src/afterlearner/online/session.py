"""A feedback session: retrofitting where the ℵ-loss is a person comparing outputs.

::

    from afterlearner.online import FeedbackSession, Best, NoneBetter
    session = FeedbackSession(aleph, render, k=4, budget=30, store="clicks.sqlite")
    proposal = session.propose()           # Proposal(id, (Candidate(index, vector, rendering), ...))
    session.answer(proposal.id, Best(2))   # or NoneBetter(), Ranking((...)), Pair(a, b), or their JSON dicts
    session.best                           # Candidate: the current recommendation, always available
    session.progress()                     # answers, budget, done, ...

Rules
-----
* One proposal is open at a time: ``propose()`` returns the open one until it is answered, then a
  new one, until ``budget`` answers were given (then ``None``).
* The optimizer must be comparison-based (``afterlearner.optimizers.get(name).comparison_based``);
  it is told only what the answers imply (see :mod:`afterlearner.online.feedback`). The starting
  candidate is told first, as the current best, with loss 0. An asked candidate identical to the
  current best is told the current best's loss and replaced, never shown.
* With a ``store``, each proposal and each answer is committed before anything else happens. A new
  session on the same store (same space, k, budget, optimizer, seed) re-creates the seeded optimizer
  and replays the stored answers into it; it checks that every re-asked candidate is bit-identical
  to the stored one and re-opens the pending proposal under the same id: nothing is lost or asked twice.
* All methods are thread-safe (one lock): two concurrent answers to one proposal count once; the
  second is refused as already answered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nevergrad as ng
import numpy as np

from afterlearner.errors import AfterlearnerError, ConfigError, StoreError
from afterlearner.online.feedback import Feedback, FeedbackError, Tells, parse, tells, to_json, validate
from afterlearner.online.journal import DuplicateAnswer, FeedbackJournal
from afterlearner.online.render import Rendering
from afterlearner.optimizers import get as get_optimizer
from afterlearner.searchspace import SearchSpace, search_space
from afterlearner.space import Aleph

#: The default optimizer of a feedback session: differential evolution, the best of the comparison-based
#: optimizers we measured with a simulated user on the digit demo (docs/online.md).
DEFAULT_OPTIMIZER = "TwoPointsDE"
#: How many times in a row the optimizer may re-propose the current best before we give up.
MAX_DUPLICATES = 1000

Renderer = Callable[[np.ndarray], Rendering]


class SessionError(AfterlearnerError):
    """An answer cannot be accepted by the session (its message says why)."""


class UnknownProposal(SessionError):
    """The answer names a proposal that does not exist."""


class StaleProposal(SessionError):
    """The answer names a proposal that was already answered (a replay, or a second tab)."""


class SessionFinished(SessionError):
    """The budget of answers is spent."""


@dataclass(frozen=True)
class Candidate:
    """One candidate: its index in its proposal (−1 for the start), its vector and its rendered output."""

    index: int
    vector: np.ndarray
    rendering: Rendering


@dataclass(frozen=True)
class Proposal:
    """``k`` candidates shown together, answered once."""

    id: int
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class Progress:
    answers: int
    budget: int
    improvements: int
    done: bool
    k: int


@dataclass
class _Open:
    id: int
    asked: list[ng.p.Parameter]
    vectors: np.ndarray
    renderings: list[Rendering] | None = None


@dataclass
class _History:
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    best_after: list[np.ndarray] = field(default_factory=list)


class FeedbackSession:
    """Propose candidates, take comparisons, tell a comparison-based optimizer; anytime and persistent."""

    def __init__(
        self,
        space: Aleph | ng.p.Parameter,
        render: Renderer,
        *,
        k: int = 4,
        budget: int = 30,
        optimizer: str = DEFAULT_OPTIMIZER,
        seed: int = 0,
        store: str | Path | None = None,
    ) -> None:
        _check_int("k", k, 1)
        _check_int("budget", budget, 1)
        _check_int("seed", seed, 0)
        info = get_optimizer(optimizer)
        if not info.comparison_based:
            raise ConfigError(
                f"{info.name} uses loss values, not only comparisons, so it cannot learn from feedback; "
                "use a comparison-based optimizer such as OnePlusOne, DiagonalCMA, TwoPointsDE, RandomSearch"
            )
        if not callable(render):
            raise ConfigError(f"render must be a callable vector -> Rendering, got {render!r}")
        self.space: SearchSpace = search_space(space)
        self.k, self.budget, self.seed, self.optimizer_name = k, budget, seed, info.name
        self._render = render
        self._lock = threading.RLock()
        self._optimizer = info.make(self.space.parametrization(seed), budget=budget * k + 1, workers=k)
        self._level = 0.0
        self._best_vector = self.space.start.copy()
        self._best_rendering: Rendering | None = None
        self._improvements = 0
        self._next_id = 1
        self._open: _Open | None = None
        self._history = _History()
        self._optimizer.tell(self._optimizer.parametrization.spawn_child(), self._level)
        self._journal: FeedbackJournal | None = None
        if store is not None:
            self._journal = FeedbackJournal.open(store, self.settings())
            try:
                self._replay()
            except BaseException:
                self._journal.close()
                raise

    # -- public API ---------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """What identifies the session in a store (a store made with other settings is refused)."""
        return {
            "space": self.space.signature,
            "optimizer": self.optimizer_name,
            "seed": self.seed,
            "workers": self.k,
            "budget": self.budget,
        }

    def propose(self) -> Proposal | None:
        """The open proposal (creating and storing a new one if none is open); None when finished."""
        with self._lock:
            if self._open is None:
                if len(self._history.answers) >= self.budget:
                    return None
                self._open = self._ask(self._next_id)
                self._next_id += 1
                if self._journal is not None:
                    self._journal.add_proposal(self._open.id, self._open.vectors)
            return self._proposal(self._open)

    def answer(self, proposal_id: int, feedback: Feedback | dict[str, Any]) -> Tells:
        """Take the answer to proposal ``proposal_id``; returns what the optimizer was told.

        Raises :class:`FeedbackError` (malformed), :class:`UnknownProposal`, :class:`StaleProposal`
        (already answered) or :class:`SessionFinished`; in every such case nothing changes.
        """
        with self._lock:
            if isinstance(proposal_id, bool) or not isinstance(proposal_id, int):
                raise FeedbackError(f"proposal must be an integer id, got {proposal_id!r}")
            if self._open is None or proposal_id != self._open.id:
                if 1 <= proposal_id < self._next_id:
                    current = f"; the open proposal is {self._open.id}" if self._open else ""
                    raise StaleProposal(f"proposal {proposal_id} was already answered{current}")
                if len(self._history.answers) >= self.budget:
                    raise SessionFinished(f"the session is finished: all {self.budget} answers were given")
                raise UnknownProposal(
                    f"there is no proposal {proposal_id}"
                    + (f"; the open proposal is {self._open.id}" if self._open else "")
                )
            parsed = parse(feedback, self.k) if isinstance(feedback, dict) else validate(feedback, self.k)
            told = tells(parsed, self.k, self._level)
            if self._journal is not None:
                try:
                    self._journal.add_answer(proposal_id, to_json(parsed), told.losses, told.new_best)
                except DuplicateAnswer as error:
                    raise StaleProposal(f"proposal {proposal_id} was already answered") from error
            self._apply(self._open, parsed, told)
            return told

    @property
    def best(self) -> Candidate:
        """The current recommendation (the start until an answer prefers something) and its rendering."""
        with self._lock:
            if self._best_rendering is None:
                self._best_rendering = self._render_checked(self._best_vector)
            return Candidate(-1, self._best_vector.copy(), self._best_rendering)

    def progress(self) -> Progress:
        with self._lock:
            answers = len(self._history.answers)
            return Progress(answers, self.budget, self._improvements, answers >= self.budget, self.k)

    def history(self) -> list[tuple[int, dict[str, Any], np.ndarray]]:
        """(proposal id, answer as JSON, best vector after it) for every answer so far."""
        with self._lock:
            return [
                (pid, answer, best.copy())
                for (pid, answer), best in zip(self._history.answers, self._history.best_after, strict=True)
            ]

    def close(self) -> None:
        """Close the store (the session object must not be used afterwards)."""
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    def __enter__(self) -> FeedbackSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------------
    def _ask(self, proposal_id: int) -> _Open:
        asked: list[ng.p.Parameter] = []
        duplicates = 0
        while len(asked) < self.k:
            candidate = self._optimizer.ask()
            vector = self.space.to_vector(candidate.value)
            if np.array_equal(vector, self._best_vector):
                duplicates += 1
                if duplicates > MAX_DUPLICATES:
                    raise SessionError(f"{self.optimizer_name} keeps proposing the current best only")
                self._optimizer.tell(candidate, self._level)
                continue
            asked.append(candidate)
        vectors = np.stack([self.space.to_vector(c.value) for c in asked])
        return _Open(proposal_id, asked, vectors)

    def _proposal(self, open_: _Open) -> Proposal:
        if open_.renderings is None:
            open_.renderings = [self._render_checked(vector) for vector in open_.vectors]
        return Proposal(
            open_.id,
            tuple(
                Candidate(i, vector.copy(), rendering)
                for i, (vector, rendering) in enumerate(zip(open_.vectors, open_.renderings, strict=True))
            ),
        )

    def _render_checked(self, vector: np.ndarray) -> Rendering:
        rendering = self._render(vector.copy())
        if not isinstance(rendering, Rendering):
            raise ConfigError(f"render returned {type(rendering).__name__}, not an online Rendering")
        return rendering

    def _apply(self, open_: _Open, feedback: Feedback, told: Tells) -> None:
        for candidate, loss in zip(open_.asked, told.losses, strict=True):
            self._optimizer.tell(candidate, loss)
        if told.new_best is not None:
            self._best_vector = open_.vectors[told.new_best].copy()
            self._best_rendering = open_.renderings[told.new_best] if open_.renderings is not None else None
            self._improvements += 1
        self._level = told.level
        self._history.answers.append((open_.id, to_json(feedback)))
        self._history.best_after.append(self._best_vector.copy())
        self._open = None

    def _replay(self) -> None:
        assert self._journal is not None
        stored = self._journal.proposals()
        for position, row in enumerate(stored):
            if row.id != self._next_id:
                raise StoreError(f"{self._journal.path}: proposal ids are not consecutive (found {row.id})")
            open_ = self._ask(row.id)
            self._next_id += 1
            if not np.array_equal(open_.vectors, row.vectors):
                raise StoreError(
                    f"{self._journal.path}: replaying proposal {row.id} gave other candidates than stored; "
                    "the task, its starting point or the optimizer's version changed since the store was made"
                )
            if row.answer is None:
                if position != len(stored) - 1:
                    raise StoreError(f"{self._journal.path}: proposal {row.id} is unanswered but not last")
                self._open = open_
                continue
            feedback = parse(row.answer, self.k)
            self._apply(open_, feedback, tells(feedback, self.k, self._level))


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
