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

__all__ = ["Evaluator", "Outcome", "SequentialEvaluator", "default_evaluator", "describe", "measure"]

#: The most memory the automatic prefix cache may take; above it, a warning and full forward passes.
AUTOMATIC_CACHE_LIMIT = "2GiB"


def default_evaluator(aleph: Aleph, loss: Callable[[Any], object], workers: int) -> Evaluator:
    """The evaluator ``retrofit`` uses when none is given.

    An opaque loss is called in this process, one candidate at a time. A
    :class:`~afterlearner.losses.DatasetLoss` gets accelerations that keep its values (vmap: to float
    rounding):
    the frozen prefix cached when a boundary is found automatically (up to
    :data:`AUTOMATIC_CACHE_LIMIT`), and, when ``workers`` (λ) > 1,
    the population evaluated with ``vmap`` if that measures faster than a loop.
    """
    from afterlearner.losses import DatasetLoss

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


def describe(evaluator: Evaluator) -> str:
    """One line saying how an evaluator evaluates candidates (its own ``describe()``, if it has one)."""
    own = getattr(evaluator, "describe", None)
    return own() if callable(own) else type(evaluator).__name__
