"""The plain evaluator: write each candidate into the model, call the loss, in this process."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from afterlearner.evaluators.base import Outcome, measure
from afterlearner.space import Aleph


class SequentialEvaluator:
    """Evaluates candidates one after the other on the user's own model (no copies, no processes)."""

    def __init__(self, aleph: Aleph, loss: Callable[[torch.nn.Module | None], object], why: str = "") -> None:
        self.aleph = aleph
        self.loss = loss
        self.why = why  # why no faster evaluator was chosen (shown by the CLI)

    def describe(self) -> str:
        """One line: how candidates are evaluated, and why not faster."""
        return "in this process, one candidate at a time" + (f" ({self.why})" if self.why else "")

    def evaluate(self, vectors: Sequence[np.ndarray]) -> Iterator[tuple[int, Outcome]]:
        for position, vector in enumerate(vectors):
            with torch.no_grad():
                self.aleph.write(vector)
                outcome = measure(lambda: self.loss(self.aleph.model))
            yield position, outcome

    def close(self) -> None:
        """Nothing to release."""
