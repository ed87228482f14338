"""The ask/tell engine of a retrofit, for evaluations done anywhere: here, another process, a person.

::

    r = al.Retrofitter(aleph, budget=100, optimizer="OnePlusOne", seed=0, store="run.sqlite")
    while (candidate := r.ask()) is not None:
        r.tell(candidate, my_loss(candidate.values()))   # or candidate.apply(); loss(model)
    result = r.result(test_loss=test_loss)               # the model now holds the best candidate

:func:`afterlearner.retrofit` is this engine driven by an evaluator. The rules:

* Candidates come in batches of λ (``workers``), asked from the optimizer together and told to it
  in ask order once the whole batch is evaluated, so the result depends on the seed and λ only,
  never on the order in which losses arrive. ``ask()`` hands out the batch's candidates one by one;
  asking more than λ before telling is an error.
* The first candidate of every run is the trained model itself.
* With a ``store`` every evaluation is committed as it is told, and every candidate handed out by
  ``ask()`` is committed before it is returned. A new Retrofitter on the same store replays the
  journal into a freshly seeded optimizer (checking every re-asked candidate bit for bit), hands
  out again the candidates that were asked and never told (``pending()``), and accepts a ``tell``
  for them: a process killed between ask and tell resumes to the same result.
* A loss that is not a finite number (NaN, inf, an exception passed to ``tell``) is a failed
  evaluation: journaled with its reason, never the best, told to the optimizer as worse than every
  loss seen; ``max_failures`` failures in a row raise :class:`TooManyFailures`.
* With ``guards`` (name → tolerance; :mod:`afterlearner.guards`), every loss is told with its guard
  losses (an ``Outcome`` with ``guards``); a candidate whose guard loss exceeds the trained model's
  (evaluation 0, alone in its batch so that it is known first) by more than the tolerance is
  infeasible: journaled, never the best, told to the optimizer like a failed one.
* It is anytime: ``result()`` at any point gives the best so far. ``time_limit`` (seconds of this
  call), ``target`` (stop once the ℵ-loss reaches it) and callbacks (``state.stop()``) stop it early,
  marked ``"stopped: <reason>"`` in the store; a later Retrofitter on the same store with a larger
  limit, or none, continues to the full budget with the result an uninterrupted run would have had.
"""

from __future__ import annotations

import math
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nevergrad as ng
import numpy as np

from afterlearner import optimizers as optimizer_registry
from afterlearner.checks import check_positive_int
from afterlearner.errors import AfterlearnerError, ConfigError, StoreError, TooManyFailures
from afterlearner.evaluators.base import Measured, Outcome, as_loss, measure
from afterlearner.guards import GuardCheck, missing, violation
from afterlearner.heldout import HeldOut, compare, observe
from afterlearner.optimizers import best_beats_centroid
from afterlearner.result import FINISHED, INTERRUPTED, STOPPED, RetrofitResult, RunOutcome
from afterlearner.searchspace import SearchSpace, search_space
from afterlearner.space import Aleph
from afterlearner.store import Evaluation, Store, best_evaluation

#: Default number of consecutive failed evaluations after which a run stops with an error.
MAX_CONSECUTIVE_FAILURES = 20
#: With ``distinct_from_best``: how many times in a row the optimizer may re-propose the best so far.
MAX_DUPLICATES = 1000
#: The status of a retrofit still under way.
RUNNING = "running"

Loss = Callable[[Any], object]


@dataclass(frozen=True, eq=False)
class Candidate:
    """A candidate to evaluate: its run, its index in the run, its vector (searched units)."""

    run: int
    index: int
    vector: np.ndarray
    aleph: Aleph | None = field(repr=False)

    def values(self) -> dict[str, np.ndarray | float | int]:
        """Each ℵ-entry's value for this candidate, by name (the model is not touched)."""
        return self._aleph().values(self.vector)

    def apply(self) -> None:
        """Write this candidate into the model (``result()`` later writes the best one)."""
        self._aleph().write(self.vector)

    def _aleph(self) -> Aleph:
        if self.aleph is None:
            raise ConfigError("this candidate is of a plain parametrization: use .vector")
        return self.aleph


@dataclass(frozen=True)
class RunState:
    """What a callback sees after each evaluation journaled by this call. ``stop()`` ends the run."""

    run_index: int
    evaluations: int
    budget: int
    initial_loss: float | None
    best_loss: float | None
    failures: int
    elapsed: float
    retrofitter: Retrofitter = field(repr=False)

    def stop(self, reason: str = "callback") -> None:
        """Stop the retrofit after this evaluation, marked ``"stopped: <reason>"``."""
        self.retrofitter.stop(reason)


Callback = Callable[[Evaluation, RunState], object]


@dataclass
class _Slot:
    """One candidate of the current batch."""

    parameter: Any  # the optimizer's own candidate object, told back in ask order
    index: int
    vector: np.ndarray
    evaluation: Evaluation | None = None
    out: bool = False  # handed out by ask() in this process
    asked_before: bool = False  # handed out by an earlier process and never told (journal)
    asked_at: float = 0.0
    standardized: np.ndarray | None = None  # the candidate in the optimizer's standardized space


@dataclass
class _Run:
    """One of the ``runs`` runs: its optimizer, what the journal holds of it, its current batch."""

    outcome: RunOutcome
    optimizer: Any
    journaled: dict[int, Evaluation]
    asked: dict[int, np.ndarray]
    prior_wall: float
    resumed_at: float
    status: str = RUNNING
    batch: list[_Slot] = field(default_factory=list)
    worst: float = -math.inf
    failures_in_a_row: int = 0
    failures: int = 0
    reference: dict[str, float] | None = None  # the trained model's guard losses (evaluation 0)
    standardized: dict[int, np.ndarray] = field(default_factory=dict)  # by index (final centroid)
    centroid_index: int | None = None  # the final centroid's evaluation, once asked
    centroid_margin: float = 0.0  # it is returned unless the best beats it by this fraction
    best_loss: float | None = None
    new_evaluations: int = 0
    wall_time: float | None = None  # frozen when the run ends, stops or fails

    @property
    def index(self) -> int:
        return self.outcome.run_index

    @property
    def told(self) -> int:
        return len(self.outcome.history)

    def evaluated(self) -> list[Evaluation]:
        """Every evaluation of the run so far, in index order (the told ones, then the current batch's)."""
        return self.outcome.history + [slot.evaluation for slot in self.batch if slot.evaluation is not None]

    def best(self) -> Evaluation | None:
        """The candidate the run returns: its best evaluation (lowest loss, ties to the latest), or,
        for a run that ended with a final centroid, that centroid unless the best beats it by more
        than the margin (:func:`afterlearner.optimizers.best_beats_centroid`)."""
        evaluated = self.evaluated()
        best = best_evaluation(evaluated)
        if best is None or self.centroid_index is None or best.idx == self.centroid_index:
            return best
        centroid = next((e for e in evaluated if e.idx == self.centroid_index), None)
        if centroid is None or not centroid.ok:
            return best
        beats = best_beats_centroid(best.loss, centroid.loss, self.centroid_margin)  # type: ignore[arg-type]
        return best if beats else centroid


def derive_seed(seed: int, run_index: int) -> int:
    """The seed of one run: independent streams per run, reproducible from the user's seed."""
    return int(np.random.SeedSequence([seed, run_index]).generate_state(1)[0])


def settings_of(
    space: Aleph | SearchSpace, optimizer: str, budget: int, workers: int, runs: int, seed: int, **extra: Any
) -> dict:
    """The settings a store is bound to (see :data:`afterlearner.store.IDENTITY_KEYS`)."""
    return {
        "space": space.signature() if isinstance(space, Aleph) else space.signature,
        "optimizer": optimizer,
        "budget": int(budget),
        "workers": int(workers),
        "runs": int(runs),
        "seed": int(seed),
        **extra,
    }


def _check_settings(
    budget: int,
    workers: int,
    runs: int,
    seed: int,
    max_failures: int,
    time_limit: float | None,
    target: float | None,
    callbacks: Sequence[Callback],
) -> None:
    for label, value in (
        ("budget", budget),
        ("workers", workers),
        ("runs", runs),
        ("max_failures", max_failures),
    ):
        check_positive_int(label, value)
    check_positive_int("seed", seed, minimum=0)
    if time_limit is not None and not (_is_real(time_limit) and time_limit > 0 and math.isfinite(time_limit)):
        raise ConfigError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    if target is not None and not (_is_real(target) and math.isfinite(target)):
        raise ConfigError(f"target must be a finite number (an ℵ-loss), got {target!r}")
    for callback in callbacks:
        if not callable(callback):
            raise ConfigError(f"callbacks must be callables fn(evaluation, state), got {callback!r}")


def _held_out_guards(losses: Mapping[str, Loss], model: Any) -> dict[str, float]:
    """Each guard's held-out loss on ``model`` (under no_grad, like the held-out loss)."""
    import torch

    with torch.no_grad():
        return {name: as_loss(loss(model)) for name, loss in losses.items()}


def _check_guards(guards: Mapping[str, float] | None) -> dict[str, float]:
    """The guards' tolerances (name → finite number ≥ 0), in name order."""
    if not guards:
        return {}
    checked = {}
    for name in sorted(guards):
        tolerance = guards[name]
        if not (_is_real(tolerance) and math.isfinite(tolerance) and tolerance >= 0):
            raise ConfigError(f"guard {name!r}: the tolerance must be a finite number ≥ 0, got {tolerance!r}")
        checked[str(name)] = float(tolerance)
    return checked


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


class Retrofitter:
    """Ask candidates, tell their ℵ-losses; journaled, resumable and anytime (see the module doc)."""

    def __init__(
        self,
        space: Aleph | ng.p.Parameter,
        budget: int = 200,
        optimizer: str = optimizer_registry.DEFAULT_OPTIMIZER,
        workers: int = 1,
        runs: int = 1,
        seed: int = 0,
        store: str | Path | Store | None = None,
        *,
        n: int | None = None,
        name: str | None = None,
        max_failures: int = MAX_CONSECUTIVE_FAILURES,
        time_limit: float | None = None,
        target: float | None = None,
        callbacks: Sequence[Callback] = (),
        journal_asks: bool = True,
        start_loss: float | None = None,
        distinct_from_best: bool = False,
        run_seeds: Sequence[int] | None = None,
        settings: dict[str, Any] | None = None,
        guards: Mapping[str, float] | None = None,
    ) -> None:
        """See the module doc. The engine's own options, used by the feedback session:

        ``start_loss``: the starting point is not asked and evaluated but told this loss (journaled
        as evaluation 0); ``distinct_from_best``: a candidate equal to the best so far is told the
        best's loss and replaced, never handed out; ``run_seeds``: the seed of each run (default:
        derived from ``seed``); ``settings``: more settings recorded in the store (``"mode"`` is
        part of its identity); ``guards``: name → tolerance of each guard the losses are told with.
        """
        callbacks = list(callbacks)
        _check_settings(budget, workers, runs, seed, max_failures, time_limit, target, callbacks)
        self.space = search_space(space)
        self.aleph = space if isinstance(space, Aleph) else None
        self.info = optimizer_registry.get(optimizer)
        self.budget, self.workers, self.runs, self.seed = budget, workers, runs, seed
        if start_loss is not None and not (_is_real(start_loss) and math.isfinite(start_loss)):
            raise ConfigError(f"start_loss must be a finite number, got {start_loss!r}")
        if run_seeds is not None and len(run_seeds) != runs:
            raise ConfigError(f"run_seeds must give one seed per run ({runs}), got {len(run_seeds)}")
        self.start_loss, self.distinct_from_best = start_loss, distinct_from_best
        self.guards = _check_guards(guards)
        if self.guards and start_loss is not None:
            raise ConfigError(
                "guards need the trained model evaluated (its guard losses): not with start_loss"
            )
        self.extra_settings = dict(settings or {})
        self.run_seeds = [int(s) for s in run_seeds] if run_seeds is not None else None
        self.n, self.name, self.max_failures = n, name, max_failures
        self.time_limit, self.target, self.callbacks = time_limit, target, callbacks
        self.journal_asks = journal_asks
        self._owns_store = store is not None and not isinstance(store, Store)
        self.journal: Store | None = Store.open(store) if self._owns_store else store  # type: ignore[arg-type]
        try:
            if self.journal is not None:
                self.journal.lock_writer()  # one writer per store: a second run is refused at once
                extra = {"task": name, "n": n, **self.extra_settings}
                if self.guards:
                    extra["guards"] = self.guards
                self.journal.bind(
                    settings_of(self.space, self.info.name, budget, workers, runs, seed, **extra)
                )
            self._journal_rows = (
                {row["run_index"]: row for row in self.journal.runs()} if self.journal else {}
            )
        except BaseException:
            self.close()
            raise
        self.already_complete = self.journal is not None and self.journal.complete(budget, runs)
        self._started = time.perf_counter()
        self._runs: list[_Run] = []
        self._count = 0  # evaluations so far, all runs (kept, not recounted: asked after every tell)
        self._status = RUNNING

    # -- asking and telling -------------------------------------------------------------------------
    def ask(self) -> Candidate | None:
        """The next candidate to evaluate; None when the retrofit is done (budget spent or stopped).

        Candidates asked before a restart and never told are handed out again first. Raises
        :class:`ConfigError` when all λ candidates of the batch are out and none was told yet.
        """
        run = self._ready()
        if run is None:
            return None
        slot = next((s for s in run.batch if s.evaluation is None and not s.out), None)
        if slot is None:
            raise ConfigError(
                f"all {len(run.batch)} candidates of this batch (λ={self.workers}) are being evaluated: "
                "tell at least one of them before asking again"
            )
        return self._hand_out(run, slot)

    def ask_batch(self) -> list[Candidate]:
        """Every candidate of the current batch not yet handed out (up to λ); empty when done."""
        run = self._ready()
        if run is None:
            return []
        return [self._hand_out(run, slot) for slot in run.batch if slot.evaluation is None and not slot.out]

    def pending(self) -> list[Candidate]:
        """Candidates handed out (in this process or, per the journal, an earlier one) and not told."""
        run = self._current()
        if run is None:
            return []
        return [
            self._candidate(run, slot)
            for slot in run.batch
            if slot.evaluation is None and (slot.out or slot.asked_before)
        ]

    def tell(self, candidate: Candidate | int, loss: object) -> Evaluation:
        """Report the ℵ-loss of a candidate (a ``Candidate`` or its index in the current run).

        ``loss`` is a number, or an exception (the evaluation failed), or an evaluator ``Outcome``,
        or, with guards, ``al.Measured(loss, {guard: value})``.
        A loss that is not a finite number is a failed evaluation. Returns the journaled evaluation.
        """
        return self.tell_many([(candidate, loss)])[0]

    def tell_many(
        self, told: Sequence[tuple[Candidate | int, object]], answer: Any = None
    ) -> list[Evaluation]:
        """Tell several losses at once, journaled in one transaction (all or nothing).

        ``answer`` (JSON-able), if given, is journaled with them: what a person said of these
        candidates (a feedback session's answer; a batch is answered once).
        """
        run = self._current()
        if run is None:
            raise ConfigError("nothing was asked yet: call ask() first")
        slots = [self._slot_of(run, candidate) for candidate, _ in told]
        if len({id(slot) for slot in slots}) != len(slots):
            raise ConfigError("the same candidate is told twice in one call")
        now = time.perf_counter()
        evaluations = [
            self._evaluation(run, slot, _as_outcome(loss, now - slot.asked_at))
            for slot, (_, loss) in zip(slots, told, strict=True)
        ]
        if self.journal is not None:
            self.journal.record_batch(
                evaluations, told=self.journal_asks, answer=answer, deferred=not self.journal_asks
            )
        for slot, evaluation in zip(slots, evaluations, strict=True):
            slot.evaluation = evaluation
            run.new_evaluations += 1
            self._count += 1
            self._observe(run, evaluation)
            if self.callbacks:
                self._call_back(run, evaluation)
        self._check_time()
        if self._status == RUNNING and all(s.evaluation is not None for s in run.batch):
            self._flush(run)
            self._ready()
        return evaluations

    def _evaluation(self, run: _Run, slot: _Slot, outcome: Outcome) -> Evaluation:
        """What is journaled of a told outcome: ok, failed, or (guards) infeasible with the reason."""
        status, error = ("ok", None) if outcome.ok else ("failed", outcome.error)
        guards = dict(outcome.guards) if outcome.guards is not None else None
        if self.guards and outcome.ok:
            if slot.index == 0:  # the reference: it fails only without its guard losses
                reason = missing(guards, self.guards)
                status, error = ("failed", reason) if reason else (status, error)
            else:
                reason = (
                    violation(guards, run.reference, self.guards)
                    if run.reference is not None  # evaluation 0 is alone in the first batch: known first
                    else "the trained model's guard losses are unknown: its evaluation failed"
                )
                if reason is not None:
                    status, error = "infeasible", reason
        return Evaluation(
            run.index, slot.index, slot.vector, outcome.loss, status, error, outcome.wall_time, guards
        )

    def _slot_of(self, run: _Run, candidate: Candidate | int) -> _Slot:
        """The current batch's slot of a candidate that may be told now; a clear error otherwise."""
        index = candidate.index if isinstance(candidate, Candidate) else candidate
        if isinstance(candidate, Candidate) and candidate.run != run.index:
            raise ConfigError(
                f"candidate {index} belongs to run {candidate.run}; the current run is {run.index}"
            )
        slot = next((s for s in run.batch if s.index == index), None)
        if slot is None:
            if isinstance(index, (int, np.integer)) and 0 <= index < run.told:
                raise ConfigError(f"candidate {index} of run {run.index} was already told")
            raise ConfigError(f"candidate {index!r} of run {run.index} was not asked")
        if slot.evaluation is not None:
            raise ConfigError(f"candidate {index} of run {run.index} was already told")
        if isinstance(candidate, Candidate) and not _same_vector(candidate.vector, slot.vector):
            raise ConfigError(
                f"candidate {index} has another vector than the one asked (another Retrofitter's?)"
            )
        return slot

    # -- state ------------------------------------------------------------------------------------------
    @property
    def status(self) -> str:
        """``"running"``, ``"finished"``, ``"interrupted"`` or ``"stopped: <reason>"``."""
        return self._status

    @property
    def done(self) -> bool:
        return self._status != RUNNING

    @property
    def evaluations(self) -> int:
        """Evaluations of every run so far (replayed from the journal included)."""
        return self._count

    def evaluated(self, run_index: int = 0) -> list[Evaluation]:
        """Every evaluation of a run so far, in index order (replayed ones included)."""
        run = next((run for run in self._runs if run.index == run_index), None)
        return run.evaluated() if run is not None else []

    @property
    def best(self) -> Evaluation | None:
        """The candidate returned so far over every run (each run's :meth:`_Run.best`, the lowest of
        those; ties: the earliest run)."""
        bests = [best for run in self._runs if (best := run.best()) is not None]
        return min(bests, key=lambda e: e.loss) if bests else None  # type: ignore[arg-type,return-value]

    @property
    def best_loss(self) -> float | None:
        """The lowest ℵ-loss evaluated so far over every run (what the progress bar shows)."""
        losses = [run.best_loss for run in self._runs if run.best_loss is not None]
        return min(losses) if losses else None

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def stop(self, reason: str) -> None:
        """Stop now, marked ``"stopped: <reason>"``; the best so far stays the result."""
        if self._status == RUNNING:
            self._status = f"{STOPPED}: {reason}"
            self._mark_current(self._status)

    def interrupt(self) -> None:
        """Ctrl-C: mark the current run interrupted (the result so far stays available)."""
        if self._status == RUNNING:
            self._status = INTERRUPTED
            self._mark_current(INTERRUPTED)

    def fail(self) -> None:
        """An error escaped the evaluation: mark the current run failed in the journal."""
        self._mark_current("failed")

    def result(
        self, test_loss: Loss | None = None, guard_tests: Mapping[str, Loss] | None = None
    ) -> RetrofitResult:
        """The best candidate so far, written into the model, with its figures.

        ``test_loss`` (the held-out loss) is evaluated on the trained and on the returned model,
        unless the run was interrupted, or the store already holds both figures of a complete run;
        so are the guards' held-out losses in ``guard_tests`` (name → loss).
        """
        if self.aleph is None:
            raise ConfigError("result() writes into a model: it needs an Aleph; use .best for a plain space")
        if self._status == RUNNING:
            self._ready()  # a journal that holds the whole run replays to the end here
        best_run = min(
            (run for run in self._runs if run.best() is not None),
            key=lambda run: run.best().loss,  # type: ignore[union-attr]
            default=None,
        )
        best = best_run.best() if best_run is not None else None
        guard_tests = dict(guard_tests or {})
        unknown = set(guard_tests) - set(self.guards)
        if unknown:
            raise ConfigError(
                f"held-out losses for guards that are not guards of this run: {sorted(unknown)}"
            )
        best_vector = best.vector if best is not None else self.aleph.identity()
        if best is None and self.evaluations:
            warnings.warn(
                f"every one of the {self.evaluations} evaluations failed; the model keeps its trained values",
                RuntimeWarning,
                stacklevel=2,
            )
        test_initial = test_best = held_out = None
        stored = self._journal_rows.get(best_run.index) if best_run is not None else None
        guard_checks = self._guard_checks(best_run, best, {})
        same_best = stored is not None and np.array_equal(stored.get("best_vector"), best_vector)
        if self.already_complete and same_best and stored["test_best"] is not None:
            test_initial, test_best = stored["test_initial"], stored["test_best"]
            held_out = HeldOut.from_dict(stored["held_out"]) if stored.get("held_out") else None
            guard_checks = [
                GuardCheck.from_dict(check) for check in stored.get("guards") or []
            ] or guard_checks
        elif test_loss is not None and self._status != INTERRUPTED and best_run is not None:
            self.aleph.restore()
            before = observe(test_loss, self.aleph.model)
            guards_before = _held_out_guards(guard_tests, self.aleph.model)
            self.aleph.write(best_vector)
            after = observe(test_loss, self.aleph.model)
            guards_after = _held_out_guards(guard_tests, self.aleph.model)
            held_out = compare(test_loss, before, after)
            test_initial, test_best = before.loss, after.loss
            guard_checks = self._guard_checks(
                best_run, best, {name: (guards_before[name], guards_after[name]) for name in guard_tests}
            )
            if self.journal is not None:
                self.journal.finish_run(
                    best_run.index,
                    best_run.status,
                    test_initial=test_initial,
                    test_best=test_best,
                    held_out=held_out.as_dict(),
                    wall_time=self._wall(best_run),
                    guards=[check.as_dict() for check in guard_checks] or None,
                )
        self.aleph.write(best_vector)
        outcomes = [_outcome_of(run) for run in self._runs]
        history = [evaluation for outcome in outcomes for evaluation in outcome.history]
        first = outcomes[0].history[0] if outcomes and outcomes[0].history else None
        return RetrofitResult(
            aleph=self.aleph,
            optimizer=self.info.name,
            budget=self.budget,
            workers=self.workers,
            runs=self.runs,
            seed=self.seed,
            best=best_vector.copy(),
            initial_loss=first.loss if first is not None else None,
            best_loss=best.loss if best is not None else None,
            evaluations=len(history),
            failures=sum(e.failed for e in history),
            infeasible=sum(e.status == "infeasible" for e in history),
            guard_checks=guard_checks,
            interrupted=self._status == INTERRUPTED,
            wall_time=sum(self._wall(run) for run in self._runs),
            test_initial=test_initial,
            test_best=test_best,
            held_out=held_out,
            n=self.n,
            history=history,
            run_outcomes=outcomes,
            status=self._status,
            already_complete=self.already_complete,
            zero_one=bool(self.extra_settings.get("zero_one")),
            name=self.name,
        )

    def _guard_checks(
        self, run: _Run | None, best: Evaluation | None, held_out: Mapping[str, tuple[float, float]]
    ) -> list[GuardCheck]:
        """Each guard's tolerance, ℵ-set values (trained, returned) and held-out values if measured."""
        if not self.guards:
            return []
        trained = (run.reference or {}) if run is not None else {}
        returned = (best.guards or {}) if best is not None else trained
        return [
            GuardCheck(
                name, tolerance, trained.get(name), returned.get(name), *held_out.get(name, (None, None))
            )
            for name, tolerance in self.guards.items()
        ]

    def close(self) -> None:
        """Close the store if this Retrofitter opened it."""
        if self._owns_store and self.journal is not None:
            self.journal.close()
            self.journal = None

    def __enter__(self) -> Retrofitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------------------
    def _current(self) -> _Run | None:
        if not self._runs and self._status == RUNNING:
            self._ready()
        return self._runs[-1] if self._runs else None

    def _ready(self) -> _Run | None:
        """Move past complete batches and runs: the run whose batch needs evaluations, or None when done."""
        self._check_time()
        while self._status == RUNNING:
            run = self._runs[-1] if self._runs else None
            if run is None or run.status != RUNNING:
                if len(self._runs) == self.runs:
                    self._status = FINISHED
                    return None
                run = self._start_run(len(self._runs))
                continue
            if run.batch and any(slot.evaluation is None for slot in run.batch):
                return run
            if run.batch:
                self._flush(run)
            elif run.told >= self.budget:
                self._end_run(run)
            else:
                self._new_batch(run)
        return None

    def _start_run(self, run_index: int) -> _Run:
        seed = self.run_seeds[run_index] if self.run_seeds is not None else derive_seed(self.seed, run_index)
        optimizer = self.info.make(self.space.parametrization(seed), self.budget, self.workers)
        if self.start_loss is None:
            optimizer.suggest(optimizer.parametrization.value)  # the trained model is the first candidate
        row = self._journal_rows.get(run_index)
        journaled: dict[int, Evaluation] = {}
        asked: dict[int, np.ndarray] = {}
        if self.journal is not None:
            complete = row is not None and row["status"] == FINISHED and row["evaluations"] >= self.budget
            if not complete:
                self.journal.start_run(run_index, seed)
            journaled = {evaluation.idx: evaluation for evaluation in self.journal.evaluations(run_index)}
            asked = self.journal.asked(run_index)
        prior = _prior_wall(row)
        outcome = RunOutcome(run_index, seed, [], None)
        run = _Run(outcome, optimizer, journaled, asked, prior, time.perf_counter())
        self._runs.append(run)
        if self.start_loss is not None:
            self._tell_start(run)
        return run

    def _tell_start(self, run: _Run) -> None:
        """Tell the starting point its given loss without asking it (journaled as evaluation 0)."""
        loss = float(self.start_loss)  # type: ignore[arg-type]
        start = Evaluation(run.index, 0, self.space.start.copy(), loss, "ok", None, 0.0)
        journaled = run.journaled.get(0)
        if journaled is None:
            if self.journal is not None:
                self.journal.record(start)
        elif not (np.array_equal(journaled.vector, start.vector) and journaled.loss == start.loss):
            raise StoreError(
                f"the journal's evaluation 0 of run {run.index} is not this space's starting point: "
                "the store was written by different code or settings; use another store file"
            )
        run.optimizer.tell(run.optimizer.parametrization.spawn_child(), start.loss)
        run.outcome.history.append(start)
        self._count += 1
        self._observe(run, start)

    def _new_batch(self, run: _Run) -> None:
        """Ask the next λ candidates; fill in those the journal already holds (checked bit for bit)."""
        start = run.told
        best = run.best() if self.distinct_from_best else None
        size = 1 if start == 0 and self.guards else self.workers  # guards: the reference comes first
        for j in range(min(size, self.budget - start)):
            centroid = self._final_centroid(run, start + j)
            if centroid is not None:
                parameter, vector, standardized = None, *centroid
                run.centroid_index, run.centroid_margin = start + j, self.info.centroid_margin
            else:
                parameter, vector = self._ask_one(run, best)
                standardized = self._standardized(run, parameter)
            if start + j == 0:
                vector = self.space.start.copy()  # exactly the trained model (a log scale may round it)
            slot = _Slot(parameter, start + j, vector, standardized=standardized)
            if standardized is not None:
                run.standardized[slot.index] = standardized
            journaled = run.journaled.get(slot.index)
            asked = run.asked.get(slot.index)
            for stored in (journaled.vector if journaled is not None else None, asked):
                if stored is not None and not np.array_equal(stored, vector):
                    raise StoreError(
                        f"the journal diverges from the optimizer at evaluation {slot.index} of run "
                        f"{run.index}: the store was written by different code or settings; "
                        "use another store file"
                    )
            if journaled is not None:
                slot.evaluation = journaled
                self._count += 1
                self._observe(run, journaled)
            else:
                slot.asked_before = asked is not None
            run.batch.append(slot)

    def _standardized(self, run: _Run, parameter: Any) -> np.ndarray | None:
        if not self._centroid_size:
            return None
        return parameter.get_standardized_data(reference=run.optimizer.parametrization)

    def _final_centroid(self, run: _Run, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The last evaluation of a run, for an optimizer with a final centroid (``"auto"``): the
        centroid, in the optimizer's standardized space, of the k best feasible candidates told so
        far (ties to the latest), or None (not the last evaluation, too few candidates, or the
        engine runs a feedback session).

        Which candidates are the k best is a function of the ranking of the losses, so the bound of
        the ``ranking`` class covers it. The run returns this centroid unless its best evaluated
        candidate beats it by more than the optimizer's margin (:meth:`_Run.best`;
        ``docs/optimizers.md``).
        """
        k = self._centroid_size
        if not k or index != self.budget - 1:
            return None
        told = [e for e in run.outcome.history if e.ok and e.idx in run.standardized]
        if len(told) < k:
            return None
        order = sorted(told, key=lambda e: (e.loss, -e.idx))[:k]
        centroid = np.mean([run.standardized[e.idx] for e in order], axis=0)
        reference = run.optimizer.parametrization
        value = reference.spawn_child().set_standardized_data(centroid, reference=reference).value
        return self.space.to_vector(value), centroid

    @property
    def _centroid_size(self) -> int:
        if self.start_loss is not None or self.distinct_from_best:
            return 0  # a feedback session: every candidate is the optimizer's
        return self.info.centroid_size(self.budget)

    def _ask_one(self, run: _Run, best: Evaluation | None) -> tuple[Any, np.ndarray]:
        """One candidate from the optimizer; with ``distinct_from_best``, never the best so far."""
        for _ in range(MAX_DUPLICATES + 1):
            parameter = run.optimizer.ask()
            vector = self.space.to_vector(parameter.value)
            if best is None or not np.array_equal(vector, best.vector):
                return parameter, vector
            run.optimizer.tell(parameter, best.loss)  # the same point: the same loss, not shown again
        raise AfterlearnerError(f"{self.info.name} keeps proposing the best so far only")

    def _hand_out(self, run: _Run, slot: _Slot) -> Candidate:
        if self.journal is not None and self.journal_asks and not slot.asked_before:
            self.journal.ask(run.index, slot.index, slot.vector)
        slot.out, slot.asked_at = True, time.perf_counter()
        return self._candidate(run, slot)

    def _candidate(self, run: _Run, slot: _Slot) -> Candidate:
        return Candidate(run.index, slot.index, slot.vector.copy(), self.aleph)

    def _observe(self, run: _Run, evaluation: Evaluation) -> None:
        """Keep the run's best loss and failure counts; stop when the target is reached."""
        if evaluation.idx == 0 and evaluation.ok and evaluation.guards is not None:
            run.reference = dict(evaluation.guards)
        if evaluation.ok:
            if run.best_loss is None or evaluation.loss < run.best_loss:  # type: ignore[operator]
                run.best_loss = evaluation.loss
            if self.target is not None and evaluation.loss <= self.target:  # type: ignore[operator]
                self.stop("target reached")
        elif evaluation.failed:
            run.failures += 1

    def _flush(self, run: _Run) -> None:
        """Tell the optimizer the whole batch in ask order (failures as worse than everything seen)."""
        batch, run.batch = run.batch, []
        for slot in batch:
            evaluation = slot.evaluation
            assert evaluation is not None
            if evaluation.ok:
                run.worst = max(run.worst, evaluation.loss)  # type: ignore[type-var]
            run.failures_in_a_row = run.failures_in_a_row + 1 if evaluation.failed else 0
            if slot.parameter is not None:  # the final centroid is the engine's, not the optimizer's
                run.optimizer.tell(slot.parameter, evaluation.loss if evaluation.ok else _penalty(run.worst))
            run.outcome.history.append(evaluation)
            if run.failures_in_a_row >= self.max_failures:
                run.batch = batch[batch.index(slot) + 1 :]
                raise TooManyFailures(
                    f"{run.failures_in_a_row} evaluations in a row failed; the last one: {evaluation.error}"
                )

    def _end_run(self, run: _Run) -> None:
        run.status = FINISHED
        row = self._journal_rows.get(run.index)
        if run.new_evaluations or row is None or row["status"] != FINISHED:
            self._mark(run, FINISHED)
        else:
            run.wall_time = run.prior_wall

    def _mark_current(self, status: str) -> None:
        if self._runs and self._runs[-1].status == RUNNING:
            run = self._runs[-1]
            run.status = status
            self._mark(run, status)

    def _mark(self, run: _Run, status: str) -> None:
        run.wall_time = self._wall(run)
        if self.journal is None:
            return
        evaluated = run.evaluated()
        best = run.best()
        self.journal.finish_run(
            run.index,
            status,
            initial_loss=evaluated[0].loss if evaluated else None,
            best_loss=best.loss if best else None,
            best_vector=best.vector if best else None,
            wall_time=self._wall(run),
        )

    def _wall(self, run: _Run) -> float:
        """The run's wall time: earlier calls' (journaled) plus this one's, if it evaluated anything."""
        if run.wall_time is not None:
            return run.wall_time
        if not run.new_evaluations and run.prior_wall:
            return run.prior_wall
        return run.prior_wall + (time.perf_counter() - run.resumed_at)

    def _call_back(self, run: _Run, evaluation: Evaluation) -> None:
        in_batch = [slot.evaluation for slot in run.batch if slot.evaluation is not None]
        first = run.outcome.history[0] if run.outcome.history else (in_batch[0] if in_batch else None)
        state = RunState(
            run.index,
            run.told + len(in_batch),
            self.budget,
            first.loss if first is not None else None,
            run.best_loss,
            run.failures,
            self.elapsed,
            self,
        )
        for callback in self.callbacks:
            callback(evaluation, state)

    def _check_time(self) -> None:
        if self.time_limit is not None and self._status == RUNNING and self.elapsed >= self.time_limit:
            self.stop("time limit")


def _same_vector(given: np.ndarray, asked: np.ndarray) -> bool:
    """True if a told candidate's vector is the one asked (its bytes first: a copy of it, usually)."""
    if isinstance(given, np.ndarray) and given.dtype == asked.dtype and given.tobytes() == asked.tobytes():
        return True
    return bool(np.array_equal(given, asked))


def _outcome_of(run: _Run) -> RunOutcome:
    """A run's evaluations so far (told or still in a batch) and its best, as a result reports them."""
    evaluated = run.evaluated()
    best = run.best()
    best_index = None if best is None else next(i for i, e in enumerate(evaluated) if e is best)
    return RunOutcome(run.index, run.outcome.seed, evaluated, best_index)


def _prior_wall(row: dict[str, Any] | None) -> float:
    """The wall time a journaled run already took (old stores: its start and finish timestamps)."""
    if row is None:
        return 0.0
    if row.get("wall_time") is not None:
        return float(row["wall_time"])
    if row.get("finished") is not None and row.get("started") is not None:
        return max(0.0, float(row["finished"]) - float(row["started"]))
    return 0.0


def _as_outcome(loss: object, wall_time: float) -> Outcome:
    """What ``tell`` received, as an evaluator outcome (an exception or a non-number: failed)."""
    if isinstance(loss, Outcome):
        return loss
    if isinstance(loss, Measured):
        outcome = measure(lambda: loss)  # the same checks as an evaluator's (a guard's NaN fails it)
        return Outcome(outcome.loss, outcome.error, wall_time, outcome.guards)
    if isinstance(loss, BaseException):
        detail = "".join(traceback.format_exception_only(type(loss), loss)).strip()
        return Outcome(None, detail, wall_time)
    try:
        return Outcome(as_loss(loss), None, wall_time)
    except ValueError as error:
        return Outcome(None, f"ValueError: {error}", wall_time)


def _penalty(worst: float) -> float:
    """What a failed evaluation tells the optimizer: worse than every loss seen so far."""
    return 1.0 if worst == -math.inf else worst + abs(worst) + 1.0
