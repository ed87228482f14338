"""How candidates get evaluated: in this process one at a time, or (elsewhere) batched or in parallel.

Every evaluator takes a list of candidate vectors and yields ``(position, Outcome)`` pairs as the
evaluations complete, so the retrofit loop can journal each one at once.

* :class:`SequentialEvaluator`: write each candidate into the model, call the loss (any loss).
* :class:`~afterlearner.evaluators.cache.CachedEvaluator`: a :class:`~afterlearner.losses.DatasetLoss`
  with the frozen prefix of the network computed once.
* :class:`~afterlearner.evaluators.batched.BatchedEvaluator`: the λ candidates of a population in one
  ``vmap``-ed forward pass (with or without the prefix cache).
* :class:`~afterlearner.evaluators.processes.ProcessEvaluator`: worker processes on this machine.
* :class:`~afterlearner.evaluators.dask.DaskEvaluator`: workers of a Dask cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from afterlearner.evaluators.base import Evaluator, Outcome, measure
from afterlearner.evaluators.sequential import SequentialEvaluator
from afterlearner.space import Aleph

__all__ = [
    "Evaluator",
    "Outcome",
    "SequentialEvaluator",
    "default_evaluator",
    "describe",
    "make_evaluator",
    "measure",
]

#: The most memory the automatic prefix cache may take; above it, a warning and full forward passes.
AUTOMATIC_CACHE_LIMIT = "2GiB"


def default_evaluator(aleph: Aleph, loss: Callable[[Any], object], workers: int) -> Evaluator:
    """The evaluator ``retrofit`` uses when none is given.

    An opaque loss is called in this process, one candidate at a time. A
    :class:`~afterlearner.losses.DatasetLoss` gets accelerations that keep its values (vmap: to float
    rounding):
    the frozen prefix cached when a boundary is found automatically (up to
    :data:`AUTOMATIC_CACHE_LIMIT`), and, when ``workers`` (λ) > 1,
    the population evaluated with ``vmap`` if that measures faster than a loop. With guards
    (a :class:`~afterlearner.guards.GuardedLoss` of a DatasetLoss), candidates are evaluated one at a
    time, each dataset loss after its cached prefix, guards on the same outputs scored on one pass
    (:class:`~afterlearner.evaluators.cache.CachedGuardedLoss`).
    """
    from afterlearner.guards import GuardedLoss
    from afterlearner.losses import DatasetLoss

    if isinstance(loss, GuardedLoss) and isinstance(loss.loss, DatasetLoss) and aleph.model is not None:
        from afterlearner.evaluators.cache import CachedGuardedLoss

        guarded = CachedGuardedLoss(aleph, loss, AUTOMATIC_CACHE_LIMIT)
        return SequentialEvaluator(aleph, guarded, why=f"with guards: {guarded.describe()}")
    if not isinstance(loss, DatasetLoss):
        return SequentialEvaluator(
            aleph, loss, why="the loss is opaque; a DatasetLoss can be cached and batched"
        )
    if aleph.model is None:
        return SequentialEvaluator(aleph, loss, why="no model: hyperparameters only")
    from afterlearner.evaluators.batched import BatchedEvaluator
    from afterlearner.evaluators.cache import CachedEvaluator, PrefixCache

    try:
        found: PrefixCache | None = PrefixCache(aleph, loss, None, AUTOMATIC_CACHE_LIMIT)
        why = found.describe()  # type: ignore[union-attr]
    except Exception as error:  # noqa: BLE001 - the loss's own error surfaces in the journal
        found, why = None, f"prefix cache off: probing the forward pass failed ({type(error).__name__})"
    cache = found if found is not None and found.enabled else None
    if workers > 1:
        return BatchedEvaluator(aleph, loss, cache=cache, mode="auto")
    if cache is not None:
        return CachedEvaluator(aleph, loss, cache=cache)
    return SequentialEvaluator(aleph, loss, why=why)


def make_evaluator(
    aleph: Aleph,
    loss: Callable[[Any], object],
    *,
    workers: int | None = None,
    processes: int | None = None,
    dask: str | None = None,
    spec: str | None = None,
    factory_kwargs: dict[str, Any] | None = None,
    timeout: float | None = None,
    pin: bool = False,
) -> tuple[Evaluator, int]:
    """The evaluator for a task and the parallel settings, and the λ to ask with.

    ``processes=N``: N worker processes on this machine; ``dask``: a Dask cluster (a scheduler
    address, or ``"local:N"`` for a local one). Both build the task in every worker from ``spec``
    (``"path/to/task.py:factory"``, called with ``factory_kwargs``) and need it. Otherwise the
    candidates are evaluated in this process by :func:`default_evaluator`. ``workers`` (λ) defaults
    to the parallel slots (1 in this process). ``timeout`` (seconds per evaluation) needs workers;
    ``pin`` (a core per worker process, see :class:`ProcessEvaluator`) needs ``processes``.
    One function for the command line, ``reproduce`` and the Python API (``retrofit`` calls it).
    """
    from afterlearner.checks import check_positive_int
    from afterlearner.errors import ConfigError

    if processes is not None and dask is not None:
        raise ConfigError("choose worker processes or a Dask cluster, not both")
    if workers is not None:
        check_positive_int("workers", workers)
    if pin and processes is None:
        raise ConfigError("pinning workers to cores needs worker processes (processes=N, --processes N)")
    if (processes is not None or dask is not None) and spec is None:
        raise ConfigError("evaluation in workers needs the task file: spec='path/to/task.py:factory'")
    if processes is not None:
        from afterlearner.evaluators.processes import ProcessEvaluator

        evaluator: Evaluator = ProcessEvaluator(
            spec,
            processes,
            timeout=timeout,
            aleph=aleph,
            kwargs=factory_kwargs,  # type: ignore[arg-type]
            pin=pin,
        )
        return evaluator, workers or processes
    if dask is not None:
        from afterlearner.evaluators.dask import DaskEvaluator

        local = dask.startswith("local:")
        if local and not dask[6:].isdigit():
            raise ConfigError(f"a local Dask cluster is 'local:N' with N workers, got {dask!r}")
        if factory_kwargs:
            raise ConfigError(
                "Dask workers build the task with no arguments: factory_kwargs are not supported"
            )
        dask_evaluator = DaskEvaluator(
            spec,  # type: ignore[arg-type]
            None if local else dask,
            timeout=timeout,
            aleph=aleph,
            n_workers=int(dask[6:]) if local else 2,
        )
        return dask_evaluator, workers or dask_evaluator.slots()
    if timeout is not None:
        raise ConfigError("a timeout applies to evaluation in worker processes or on Dask")
    workers = workers or 1
    return default_evaluator(aleph, loss, workers), workers


def describe(evaluator: Evaluator) -> str:
    """One line saying how an evaluator evaluates candidates (its own ``describe()``, if it has one)."""
    own = getattr(evaluator, "describe", None)
    return own() if callable(own) else type(evaluator).__name__
