"""Reading an evaluator's outcomes back in position order (they are yielded in completion order)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from afterlearner.evaluators import Evaluator


def losses(evaluator: Evaluator, vectors: Sequence[np.ndarray]) -> list[float | None]:
    """The loss of every candidate (None where it failed), in the order of ``vectors``."""
    return [outcome.loss for _, outcome in sorted(evaluator.evaluate(vectors), key=lambda item: item[0])]
