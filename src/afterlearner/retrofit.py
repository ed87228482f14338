"""The retrofit loop: ask candidates, evaluate the ℵ-loss, tell, journal, keep the best.

Guarantees:

* The first candidate of every run is the trained model itself, so the best-so-far is never worse
  than the trained model on the ℵ-loss.
* Evaluations are journaled as they complete; running again with the same store replays them into
  the optimizer instead of recomputing, so a killed run resumes to the same result.
* When ``retrofit`` returns, the model holds the best candidate. On Ctrl-C it returns the result so
  far (``interrupted=True``) with the model at the best so far. On any other exception the model is
  restored bit for bit before the exception propagates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from afterlearner import optimizers as optimizer_registry
from afterlearner.bound import bound_from_log_outcomes
from afterlearner.errors import ConfigError, StoreError, TooManyFailures
from afterlearner.evaluators import Evaluator, default_evaluator
from afterlearner.evaluators.base import as_loss
from afterlearner.progress import RunProgress
from afterlearner.space import Aleph
from afterlearner.store import Evaluation, Store

Loss = Callable[[Any], object]

#: Default number of consecutive failed evaluations after which a run stops with an error.
MAX_CONSECUTIVE_FAILURES = 20


@dataclass
class RunOutcome:
    """One of the ``runs`` independent runs."""

    run_index: int
    seed: int
    history: list[Evaluation]
    best_index: int | None

    @property
    def best(self) -> Evaluation | None:
        return None if self.best_index is None else self.history[self.best_index]


@dataclass
class RetrofitResult:
    """What a retrofit found. ``best`` is in natural units (offsets, factors, hyperparameter values)."""

    aleph: Aleph = field(repr=False)
    optimizer: str
    budget: int
    workers: int
    runs: int
    seed: int
    best: np.ndarray
    initial_loss: float | None
    best_loss: float | None
    evaluations: int
    failures: int
    interrupted: bool
    wall_time: float
    test_initial: float | None = None
    test_best: float | None = None
    n: int | None = None
    history: list[Evaluation] = field(default_factory=list, repr=False)
    run_outcomes: list[RunOutcome] = field(default_factory=list, repr=False)

    @property
    def comparison_based(self) -> bool:
        return optimizer_registry.get(self.optimizer).comparison_based

    def bound(self, n: int | None = None, delta: float = 0.05) -> float | None:
        """The overfitting bound ε (see :mod:`afterlearner.bound`); None if it does not apply.

        ``n`` is the number of samples in the ℵ-dataset (default: the task's ``n``). None for
        optimizers that use loss values rather than comparisons.
        """
        n = n if n is not None else self.n
        if n is None:
            raise ConfigError("the bound needs n, the number of samples in the ℵ-dataset")
        log_outcomes = optimizer_registry.get(self.optimizer).log_outcomes(self.budget)
        return None if log_outcomes is None else bound_from_log_outcomes(log_outcomes, n, delta, self.runs)

    def restore(self) -> None:
        """Put the trained values back into the model, bit for bit."""
        self.aleph.restore()

    def apply(self) -> None:
        """Write the best candidate into the model (again)."""
        self.aleph.write(self.best)

    def losses(self) -> list[float | None]:
        """ℵ-loss of every evaluation in order (None for failures), all runs concatenated."""
        return [evaluation.loss for evaluation in self.history]


def derive_seed(seed: int, run_index: int) -> int:
    """The seed of one run: independent streams per run, reproducible from the user's seed."""
    return int(np.random.SeedSequence([seed, run_index]).generate_state(1)[0])


def _check_settings(
    aleph: Aleph, loss: Loss, budget: int, workers: int, runs: int, seed: int, max_failures: int
) -> None:
    if not isinstance(aleph, Aleph):
        raise ConfigError(f"retrofit needs an afterlearner.Aleph, got {type(aleph).__name__}")
    aleph.check()
    if not callable(loss):
        raise ConfigError(f"loss must be callable as loss(model) -> float, got {type(loss).__name__}")
    for label, value in (
        ("budget", budget),
        ("workers", workers),
        ("runs", runs),
        ("max_failures", max_failures),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{label} must be an integer >= 1, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")


def settings_of(
    aleph: Aleph, optimizer: str, budget: int, workers: int, runs: int, seed: int, **extra: Any
) -> dict:
    """The settings a store is bound to (see :data:`afterlearner.store.IDENTITY_KEYS`)."""
    return {
        "space": aleph.signature(),
        "optimizer": optimizer,
        "budget": int(budget),
        "workers": int(workers),
        "runs": int(runs),
        "seed": int(seed),
        **extra,
    }


def retrofit(
    aleph: Aleph,
    loss: Loss,
    budget: int = 200,
    optimizer: str = optimizer_registry.DEFAULT_OPTIMIZER,
    workers: int = 1,
    runs: int = 1,
    seed: int = 0,
    store: str | Path | Store | None = None,
    test_loss: Loss | None = None,
    *,
    n: int | None = None,
    max_failures: int = MAX_CONSECUTIVE_FAILURES,
    evaluator: Evaluator | None = None,
    progress: bool = True,
    name: str | None = None,
) -> RetrofitResult:
    """Search the ℵ-parameters in ``aleph`` to minimise ``loss(model)`` within ``budget`` evaluations.

    ``workers`` candidates are asked at a time (λ); ``runs`` independent runs are made and the best
    kept. ``store`` journals everything to an SQLite file and resumes from it. ``test_loss`` is
    evaluated on the trained and on the final model only. ``n`` (the ℵ-dataset size) lets the
    result compute its bound without being told. ``evaluator`` replaces in-process evaluation
    (parallel, batched, distributed); retrofit closes it when it returns or raises. By default each
    candidate is written into ``aleph.model`` and ``loss(aleph.model)`` is called under
    ``torch.no_grad()``.
    """
    opened = store is not None and not isinstance(store, Store)
    journal = None
    try:  # a given evaluator is retrofit's to close from here on, even if the settings are refused
        _check_settings(aleph, loss, budget, workers, runs, seed, max_failures)
        info = optimizer_registry.get(optimizer)
        journal = Store.open(store) if opened else store  # type: ignore[arg-type]
        if journal is not None:
            journal.bind(settings_of(aleph, info.name, budget, workers, runs, seed, task=name, n=n))
    except BaseException:
        if evaluator is not None:
            evaluator.close()
        if opened and journal is not None:
            journal.close()
        raise
    evaluator = evaluator or default_evaluator(aleph, loss, workers)
    loop = _Loop(aleph, info, budget, workers, max_failures, evaluator, journal, progress)
    started = time.perf_counter()
    interrupted = False
    try:
        try:
            for run_index in range(runs):
                loop.run(run_index, derive_seed(seed, run_index))
        except KeyboardInterrupt:
            interrupted = True
        except BaseException:
            loop.mark_current("failed")
            raise
        best_run = loop.best_run()
        best = best_run.best if best_run is not None else None
        best_vector = best.vector if best is not None else aleph.identity()
        test_initial = test_best = None
        if test_loss is not None and not interrupted:
            aleph.restore()
            test_initial = _test(test_loss, aleph.model)
            aleph.write(best_vector)
            test_best = _test(test_loss, aleph.model)
        aleph.write(best_vector)
        if journal is not None and best_run is not None and not interrupted:
            journal.finish_run(best_run.run_index, "finished", test_initial=test_initial, test_best=test_best)
        history = [evaluation for outcome in loop.outcomes for evaluation in outcome.history]
        first = loop.outcomes[0].history[0] if loop.outcomes and loop.outcomes[0].history else None
        return RetrofitResult(
            aleph=aleph,
            optimizer=info.name,
            budget=budget,
            workers=workers,
            runs=runs,
            seed=seed,
            best=best_vector.copy(),
            initial_loss=first.loss if first is not None else None,
            best_loss=best.loss if best is not None else None,
            evaluations=len(history),
            failures=sum(not e.ok for e in history),
            interrupted=interrupted,
            wall_time=time.perf_counter() - started,
            test_initial=test_initial,
            test_best=test_best,
            n=n,
            history=history,
            run_outcomes=loop.outcomes,
        )
    except BaseException:
        aleph.restore()  # anything but Ctrl-C during the runs: the trained values, bit for bit
        raise
    finally:
        if interrupted:
            loop.mark_current("interrupted")
        evaluator.close()
        if opened and journal is not None:
            journal.close()


def _test(test_loss: Loss, model: Any) -> float:
    """The held-out loss (evaluated twice per retrofit; a failure here is an error, not a journal row)."""
    with torch.no_grad():
        return as_loss(test_loss(model))


class _Loop:
    """The state of a retrofit across its runs (kept so an interrupt can report the best so far)."""

    def __init__(
        self,
        aleph: Aleph,
        info: optimizer_registry.OptimizerInfo,
        budget: int,
        workers: int,
        max_failures: int,
        evaluator: Evaluator,
        journal: Store | None,
        progress: bool,
    ) -> None:
        self.aleph = aleph
        self.info = info
        self.budget = budget
        self.workers = workers
        self.max_failures = max_failures
        self.evaluator = evaluator
        self.journal = journal
        self.progress = progress
        self.outcomes: list[RunOutcome] = []

    def best_run(self) -> RunOutcome | None:
        candidates = [outcome for outcome in self.outcomes if outcome.best is not None]
        return min(candidates, key=lambda outcome: outcome.best.loss) if candidates else None  # type: ignore[union-attr]

    def mark_current(self, status: str) -> None:
        if self.journal is not None and self.outcomes:
            current = self.outcomes[-1]
            best = current.best
            self.journal.finish_run(
                current.run_index,
                status,
                initial_loss=current.history[0].loss if current.history else None,
                best_loss=best.loss if best else None,
                best_vector=best.vector if best else None,
            )

    def run(self, run_index: int, seed: int) -> None:
        parametrization = self.aleph.parametrization()
        parametrization.random_state = np.random.RandomState(seed)
        optimizer = self.info.make(parametrization, self.budget, self.workers)
        optimizer.suggest(parametrization.value)  # the trained model is always the first candidate
        journaled: dict[int, Evaluation] = {}
        if self.journal is not None:
            self.journal.start_run(run_index, seed)
            journaled = {evaluation.idx: evaluation for evaluation in self.journal.evaluations(run_index)}
        state = _RunState(RunOutcome(run_index, seed, [], None), optimizer, journaled)
        self.outcomes.append(state.outcome)
        label = f"run {run_index + 1}" if run_index else "retrofit"
        with RunProgress(self.budget, label, enabled=self.progress) as bar:
            while len(state.outcome.history) < self.budget:
                self._step(state, bar)
        self.mark_current("finished")

    def _step(self, state: _RunState, bar: RunProgress) -> None:
        """One batch: ask λ candidates, take journaled outcomes or evaluate, tell in ask order."""
        start = len(state.outcome.history)
        candidates = [state.optimizer.ask() for _ in range(min(self.workers, self.budget - start))]
        vectors = [self.aleph.to_vector(candidate.value) for candidate in candidates]
        batch = state.replayed(start, vectors)
        if bar.enabled and any(evaluation is not None for evaluation in batch):
            bar.advance(state.best_loss(batch), steps=sum(evaluation is not None for evaluation in batch))
        todo = [j for j, evaluation in enumerate(batch) if evaluation is None]
        for position, result in self.evaluator.evaluate([vectors[j] for j in todo]):
            j = todo[position]
            status = "ok" if result.ok else "failed"
            evaluation = Evaluation(
                state.outcome.run_index,
                start + j,
                vectors[j],
                result.loss,
                status,
                result.error,
                result.wall_time,
            )
            if self.journal is not None:
                self.journal.record(evaluation)
            batch[j] = evaluation
            if bar.enabled:
                bar.advance(state.best_loss(batch))
        for candidate, evaluation in zip(candidates, batch, strict=True):
            assert evaluation is not None
            state.tell(candidate, evaluation)
            if state.failures_in_a_row >= self.max_failures:
                raise TooManyFailures(
                    f"{state.failures_in_a_row} evaluations in a row failed; the last one: {evaluation.error}"
                )


@dataclass
class _RunState:
    """What one run has seen so far: its history, its best, its optimizer, and its journal."""

    outcome: RunOutcome
    optimizer: Any
    journaled: dict[int, Evaluation]
    worst: float = -math.inf
    failures_in_a_row: int = 0

    def replayed(self, start: int, vectors: list[np.ndarray]) -> list[Evaluation | None]:
        """The journaled evaluations of this batch (None where missing), checked against the proposals."""
        if not self.journaled:
            return [None] * len(vectors)
        batch = [self.journaled.get(start + j) for j in range(len(vectors))]
        for j, evaluation in enumerate(batch):
            if evaluation is not None and not np.array_equal(evaluation.vector, vectors[j]):
                raise StoreError(
                    f"the journal diverges from the optimizer at evaluation {start + j} of run "
                    f"{self.outcome.run_index}: the store was written by different code or settings; "
                    "use another store file"
                )
        return batch

    def tell(self, candidate: Any, evaluation: Evaluation) -> None:
        """Report one evaluation to the optimizer (failures as worse than everything) and keep the best."""
        if evaluation.ok:
            self.worst = max(self.worst, evaluation.loss)  # type: ignore[type-var]
            self.failures_in_a_row = 0
        else:
            self.failures_in_a_row += 1
        self.optimizer.tell(candidate, evaluation.loss if evaluation.ok else _penalty(self.worst))
        self.outcome.history.append(evaluation)
        best = self.outcome.best
        if evaluation.ok and (best is None or evaluation.loss <= best.loss):  # type: ignore[operator]
            self.outcome.best_index = len(self.outcome.history) - 1  # ties go to the latest, as in Nevergrad

    def best_loss(self, batch: list[Evaluation | None]) -> float | None:
        losses = [e.loss for e in batch if e is not None and e.ok]
        if self.outcome.best is not None:
            losses.append(self.outcome.best.loss)
        return min(losses) if losses else None  # type: ignore[type-var]


def _penalty(worst: float) -> float:
    """What a failed evaluation tells the optimizer: worse than every loss seen so far."""
    return 1.0 if worst == -math.inf else worst + abs(worst) + 1.0
