"""How candidates get evaluated: in this process one at a time, or (elsewhere) batched or in parallel.

Every evaluator takes a list of candidate vectors and yields ``(position, Outcome)`` pairs as the
evaluations complete, so the retrofit loop can journal each one at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from afterlearner.evaluators.base import Evaluator, Outcome, measure
from afterlearner.evaluators.sequential import SequentialEvaluator
from afterlearner.space import Aleph

__all__ = ["Evaluator", "Outcome", "SequentialEvaluator", "default_evaluator", "measure"]


def default_evaluator(aleph: Aleph, loss: Callable[[Any], object], workers: int) -> Evaluator:
    """The evaluator ``retrofit`` uses when none is given."""
    return SequentialEvaluator(aleph, loss)
