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
* The session is the ask/tell engine (:class:`~afterlearner.retrofitter.Retrofitter`) with λ = k:
  a proposal is a batch, an answer is one atomic tell of the k losses it implies (with the answer
  itself journaled beside them), the start is evaluation 0, told loss 0.
* With a ``store``, each proposal (as asked candidates) and each answer (as told evaluations) is
  committed before anything else happens. A new session on the same store (same space, k, budget,
  optimizer, seed) replays the journal into a freshly seeded optimizer, checks every re-asked
  candidate bit for bit, and re-opens the pending proposal under the same id: nothing is lost or
  asked twice. The journal is an ordinary store (``afterlearner show`` reads it).
* All methods are thread-safe (one lock): two concurrent answers to one proposal count once; the
  second is refused as already answered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nevergrad as ng
import numpy as np

from afterlearner.checks import check_positive_int
from afterlearner.errors import AfterlearnerError, ConfigError
from afterlearner.online.feedback import Feedback, FeedbackError, Tells, parse, tells, to_json, validate
from afterlearner.online.render import Rendering
from afterlearner.optimizers import get as get_optimizer
from afterlearner.retrofitter import Candidate as Asked
from afterlearner.retrofitter import Retrofitter
from afterlearner.space import Aleph
from afterlearner.store import FEEDBACK, DuplicateAnswer, Evaluation, best_evaluation

#: The default optimizer of a feedback session: differential evolution, the best of the comparison-based
#: optimizers we measured with a simulated user on the digit demo (docs/online.md).
DEFAULT_OPTIMIZER = "TwoPointsDE"

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
    asked: list[Asked]
    renderings: list[Rendering] | None = None

    @property
    def vectors(self) -> np.ndarray:
        return np.stack([candidate.vector for candidate in self.asked])


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
        check_positive_int("k", k)
        check_positive_int("budget", budget)
        check_positive_int("seed", seed, minimum=0)
        info = get_optimizer(optimizer)
        if not info.comparison_based:
            raise ConfigError(
                f"{info.name} uses loss values, not only comparisons, so it cannot learn from feedback; "
                "use a comparison-based optimizer such as OnePlusOne, DiagonalCMA, TwoPointsDE, RandomSearch"
            )
        if not callable(render):
            raise ConfigError(f"render must be a callable vector -> Rendering, got {render!r}")
        self.k, self.budget, self.seed, self.optimizer_name = k, budget, seed, info.name
        self._render = render
        self._lock = threading.RLock()
        self._space_given, self._store_path = space, store
        self._best_rendering: tuple[bytes, Rendering] | None = None
        self._start(replay=[])

    def _start(self, replay: list[tuple[int, dict[str, Any]]]) -> None:
        """A fresh engine: replays the store if there is one, else re-tells ``replay``'s answers."""
        self._engine = Retrofitter(
            self._space_given,
            budget=1 + self.budget * self.k,  # the start, then k candidates per answer
            optimizer=self.optimizer_name,
            workers=self.k,
            seed=self.seed,
            store=self._store_path,
            start_loss=0.0,  # the start is the current best until an answer prefers something
            distinct_from_best=True,  # the current best is never shown as a candidate
            run_seeds=[self.seed],
            settings=self.settings(),
        )
        self.space = self._engine.space
        self._open: _Open | None = None
        try:
            self._engine.pending()  # replays the store, if any, up to the open proposal
            self._answers = self._engine.journal.answers(0) if self._engine.journal is not None else []
            for _, answer in replay:
                self.answer(self.propose().id, answer)  # type: ignore[union-attr]
        except BaseException:
            self._engine.close()
            raise

    # -- public API ---------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """What a feedback store records besides the engine's settings (``mode`` is part of its identity)."""
        return {"mode": FEEDBACK, "k": self.k, "answers": self.budget}

    def propose(self) -> Proposal | None:
        """The open proposal (asking and storing a new one if none is open); None when finished."""
        with self._lock:
            if self._open is None:
                asked = self._engine.ask_batch()
                if not asked:
                    return None
                self._open = _Open(self._id_of(asked[0].index), asked)
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
                if 1 <= proposal_id <= len(self._answers):
                    current = f"; the open proposal is {self._open.id}" if self._open else ""
                    raise StaleProposal(f"proposal {proposal_id} was already answered{current}")
                if len(self._answers) >= self.budget:
                    raise SessionFinished(f"the session is finished: all {self.budget} answers were given")
                raise UnknownProposal(
                    f"there is no proposal {proposal_id}"
                    + (f"; the open proposal is {self._open.id}" if self._open else "")
                )
            parsed = parse(feedback, self.k) if isinstance(feedback, dict) else validate(feedback, self.k)
            told = tells(parsed, self.k, self._level())
            answer = to_json(parsed)
            try:
                self._engine.tell_many(list(zip(self._open.asked, told.losses, strict=True)), answer=answer)
            except DuplicateAnswer as error:
                raise StaleProposal(f"proposal {proposal_id} was already answered") from error
            if told.new_best is not None and self._open.renderings is not None:
                vector = self._open.asked[told.new_best].vector
                self._best_rendering = (vector.tobytes(), self._open.renderings[told.new_best])
            self._answers.append((self._open.asked[0].index, answer))
            self._open = None
            return told

    def undo(self) -> int:
        """Take back the last answer: its proposal is open again, as it was; returns its id.

        Journaled (the store keeps the answer taken back, see :meth:`Store.undone`) and replayed on
        restart: the session continues exactly as if that answer had never been given. Raises
        :class:`SessionError` when there is no answer to take back.
        """
        with self._lock:
            if not self._answers:
                raise SessionError("there is no answer to undo")
            first, _ = self._answers[-1]
            kept = self._answers[:-1]
            if self._engine.journal is not None:
                self._engine.journal.undo_answer(0, first)
            self._engine.close()
            self._start(replay=[] if self._store_path is not None else kept)
            proposal = self.propose()
            assert proposal is not None and proposal.id == self._id_of(first)
            return proposal.id

    @property
    def best(self) -> Candidate:
        """The current recommendation (the start until an answer prefers something) and its rendering."""
        with self._lock:
            vector = self._best().vector
            if self._best_rendering is None or self._best_rendering[0] != vector.tobytes():
                self._best_rendering = (vector.tobytes(), self._render_checked(vector))
            return Candidate(-1, vector.copy(), self._best_rendering[1])

    def progress(self) -> Progress:
        with self._lock:
            answers = len(self._answers)
            return Progress(answers, self.budget, self._improvements(), answers >= self.budget, self.k)

    def history(self) -> list[tuple[int, dict[str, Any], np.ndarray]]:
        """(proposal id, answer as JSON, best vector after it) for every answer so far."""
        with self._lock:
            evaluated = self._engine.evaluated()
            return [
                (self._id_of(first), answer, best_evaluation(evaluated[: first + self.k]).vector.copy())  # type: ignore[union-attr]
                for first, answer in self._answers
            ]

    def close(self) -> None:
        """Close the store (the session object must not be used afterwards)."""
        with self._lock:
            self._engine.close()

    def __enter__(self) -> FeedbackSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------------
    def _id_of(self, first_index: int) -> int:
        """A proposal's id: 1, 2, ... (its candidates are evaluations 1..k, k+1..2k, ... of the run)."""
        return (first_index - 1) // self.k + 1

    def _best(self) -> Evaluation:
        best = self._engine.best
        assert best is not None  # the start is always told
        return best

    def _level(self) -> float:
        """The loss told for the current best (0 at the start, lower after each improvement)."""
        return float(self._best().loss)  # type: ignore[arg-type]

    def _improvements(self) -> int:
        """How many answers preferred a candidate to the current best."""
        evaluated, count = self._engine.evaluated(), 0
        for first, _ in self._answers:
            level = min(e.loss for e in evaluated[:first])  # type: ignore[type-var]
            count += min(e.loss for e in evaluated[first : first + self.k]) < level  # type: ignore[type-var,operator]
        return count

    def _proposal(self, open_: _Open) -> Proposal:
        if open_.renderings is None:
            open_.renderings = [self._render_checked(candidate.vector) for candidate in open_.asked]
        return Proposal(
            open_.id,
            tuple(
                Candidate(i, candidate.vector.copy(), rendering)
                for i, (candidate, rendering) in enumerate(zip(open_.asked, open_.renderings, strict=True))
            ),
        )

    def _render_checked(self, vector: np.ndarray) -> Rendering:
        rendering = self._render(vector.copy())
        if not isinstance(rendering, Rendering):
            raise ConfigError(f"render returned {type(rendering).__name__}, not an online Rendering")
        return rendering
