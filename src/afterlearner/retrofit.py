"""``retrofit``: the ask/tell engine (:class:`~afterlearner.retrofitter.Retrofitter`) driven by an evaluator.

Guarantees:

* The first candidate of every run is the trained model itself, so the best-so-far is never worse
  than the trained model on the ℵ-loss.
* Evaluations are journaled as they complete; running again with the same store replays them into
  the optimizer instead of recomputing, so a killed or stopped run resumes to the same result.
* When ``retrofit`` returns, the model holds the best candidate. On Ctrl-C it returns the result so
  far (``interrupted=True``) with the model at the best so far; a time limit, a target or a callback
  stop it the same way (``status="stopped: <reason>"``). On any other exception the model is
  restored bit for bit before the exception propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from afterlearner import optimizers as optimizer_registry
from afterlearner.errors import ConfigError
from afterlearner.evaluators import Evaluator, make_evaluator
from afterlearner.guard import ModelGuard, due
from afterlearner.guards import GuardedLoss, GuardSpec, as_guards, tolerances
from afterlearner.losses import is_zero_one
from afterlearner.progress import RunProgress
from afterlearner.result import RetrofitResult, RunOutcome
from afterlearner.retrofitter import (
    MAX_CONSECUTIVE_FAILURES,
    Callback,
    Retrofitter,
    derive_seed,
    settings_of,
)
from afterlearner.space import Aleph
from afterlearner.store import Store

__all__ = ["RetrofitResult", "RunOutcome", "derive_seed", "retrofit", "settings_of"]

Loss = Callable[[Any], object]


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
    time_limit: float | None = None,
    target: float | None = None,
    callbacks: Sequence[Callback] = (),
    task_file: str | None = None,
    guards: Mapping[str, GuardSpec] | None = None,
) -> RetrofitResult:
    """Search the ℵ-parameters in ``aleph`` to minimise ``loss(model)`` within ``budget`` evaluations.

    ``workers`` candidates are asked at a time (λ); ``runs`` independent runs are made and the best
    kept. ``store`` journals everything to an SQLite file and resumes from it. ``test_loss`` is
    evaluated on the trained and on the final model only. ``n`` (the ℵ-dataset size) lets the
    result compute its bound without being told. ``evaluator`` replaces in-process evaluation
    (parallel, batched, distributed); retrofit closes it when it returns or raises. By default each
    candidate is written into ``aleph.model`` and ``loss(aleph.model)`` is called under
    ``torch.no_grad()``.

    Run control: ``time_limit`` (seconds of this call) and ``target`` (an ℵ-loss; stop once reached)
    end the search early, with the best so far; each callback is called as ``fn(evaluation, state)``
    after every evaluation journaled by this call, and may end it with ``state.stop()``.
    ``task_file`` (``"path/to/task.py:factory"``) is recorded in the store, for exports.

    ``guards`` (name → ``(guard_loss, tolerance[, test_guard_loss])`` or :class:`~afterlearner.Guard`):
    improve the ℵ-loss without letting another loss get worse than the trained model's by more than
    its tolerance (see :mod:`afterlearner.guards`). The guard losses are measured with every
    candidate, in this process or in workers that build the same guards from the task file.
    """
    try:  # a given evaluator is retrofit's to close from here on, even if the settings are refused
        if not isinstance(aleph, Aleph):  # the loss is called on aleph.model: a plain parameter has none
            raise ConfigError(f"retrofit needs an afterlearner.Aleph, got {type(aleph).__name__}")
        if not callable(loss):
            raise ConfigError(f"loss must be callable as loss(model) -> float, got {type(loss).__name__}")
        checked_guards = as_guards(guards)  # a given evaluator must measure them: see task.measured_loss
        engine = Retrofitter(
            aleph,
            budget,
            optimizer,
            workers,
            runs,
            seed,
            store,
            n=n,
            name=name,
            max_failures=max_failures,
            time_limit=time_limit,
            target=target,
            callbacks=callbacks,
            journal_asks=False,  # asked and evaluated in this call: a restart re-asks the same candidates
            settings=_recorded(loss, task_file),
            guards=tolerances(checked_guards),
        )
    except BaseException:
        if evaluator is not None:
            evaluator.close()
        raise
    guard = None
    try:
        try:
            if evaluator is None and not engine.done and not engine.already_complete:
                measured = GuardedLoss(loss, checked_guards) if checked_guards else loss
                evaluator, _ = make_evaluator(aleph, measured, workers=workers)
            if aleph.model is not None and getattr(evaluator, "in_process", True):
                guard = ModelGuard(aleph)  # the loss runs on this model: it may change only the ℵ-tensors
            _drive(engine, evaluator, budget * runs, progress, guard)
        except KeyboardInterrupt:
            engine.interrupt()
        except BaseException:
            engine.fail()
            raise
        guard_tests = {name: g.test_loss for name, g in checked_guards.items() if g.test_loss is not None}
        result = engine.result(test_loss, guard_tests if test_loss is not None else None)
        if guard is not None:
            guard.check()  # the held-out loss too
        return result
    except BaseException:
        aleph.restore()  # anything but Ctrl-C during the runs: the trained values, bit for bit
        if guard is not None:
            guard.restore()  # and every other parameter and buffer
        raise
    finally:
        if evaluator is not None:
            evaluator.close()
        engine.close()


def _recorded(loss: Loss, task_file: str | None) -> dict[str, Any] | None:
    """What the store records beyond the settings: the loss is 0/1 (the bound's kl form applies),
    the task file it came from (so an export or the dashboard can name it)."""
    recorded: dict[str, Any] = {}
    if is_zero_one(loss):
        recorded["zero_one"] = True
    if task_file is not None:
        recorded["task_file"] = task_file
    return recorded or None


def _drive(
    engine: Retrofitter, evaluator: Evaluator | None, total: int, progress: bool, guard: ModelGuard | None
) -> None:
    """Ask each batch, evaluate it, tell every loss as it completes; until done or stopped.

    The guard checks the frozen rest of the model after the first evaluations of this call, then at
    every power of two, and at the end.
    """
    evaluated = 0
    with RunProgress(total, "retrofit", enabled=progress) as bar:
        while batch := engine.ask_batch():
            bar.update(engine.evaluations, lambda: engine.best_loss)
            assert evaluator is not None
            for position, outcome in evaluator.evaluate([candidate.vector for candidate in batch]):
                engine.tell(batch[position], outcome)
                evaluated += 1
                if guard is not None and due(evaluated):
                    guard.check()
                bar.update(engine.evaluations, lambda: engine.best_loss)
                if engine.done:
                    break
        bar.update(engine.evaluations, lambda: engine.best_loss)
    if guard is not None and evaluated:
        guard.check()
