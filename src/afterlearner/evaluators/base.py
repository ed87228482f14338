"""The evaluator interface and the one rule every evaluator shares: what counts as a failure."""

from __future__ import annotations

import math
import numbers
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Outcome:
    """The result of one evaluation: a finite loss, or None and the reason it failed.

    ``guards``: the guard losses measured with it (name → finite value), when the loss reports them.
    """

    loss: float | None
    error: str | None = None
    wall_time: float = 0.0
    guards: Mapping[str, float] | None = None

    @property
    def ok(self) -> bool:
        return self.loss is not None


class Evaluator(Protocol):
    """Evaluates candidate vectors. Yields ``(position in vectors, Outcome)`` in completion order."""

    def evaluate(self, vectors: Sequence[np.ndarray]) -> Iterator[tuple[int, Outcome]]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Measured:
    """What a guarded loss returns: the ℵ-loss and the guard losses of the same candidate."""

    loss: object
    guards: Mapping[str, object] = field(default_factory=dict)


def as_loss(value: object) -> float:
    """The float a loss returned, or a ValueError saying why it is not a usable loss."""
    if type(value) is float and math.isfinite(value):  # the common case, without the checks below
        return value
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, np.generic)):
        if hasattr(value, "item") and getattr(value, "numel", lambda: 0)() == 1:  # a torch scalar
            value = value.item()  # type: ignore[attr-defined]
        else:
            raise ValueError(f"the loss returned {type(value).__name__} {value!r:.80}, not a number")
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"the loss returned an array of shape {value.shape}, not a number")
        value = value.reshape(())
    loss = float(value)  # type: ignore[arg-type]
    if not math.isfinite(loss):
        raise ValueError(f"the loss returned {loss}")
    return loss


def measure(call: Callable[[], object]) -> Outcome:
    """Run one loss call; any exception, NaN, inf or non-number becomes a failed Outcome.

    KeyboardInterrupt and SystemExit are not failures of the loss: they propagate.
    """
    start = time.perf_counter()
    try:
        value = call()
        if isinstance(value, Measured):
            guards = as_guard_values(value.guards)
            return Outcome(as_loss(value.loss), None, time.perf_counter() - start, guards)
        loss = as_loss(value)
    except Exception as error:  # noqa: BLE001 - a failing loss is journaled, not fatal
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        return Outcome(None, detail, time.perf_counter() - start)
    return Outcome(loss, None, time.perf_counter() - start)


def as_guard_values(values: Mapping[str, object]) -> dict[str, float]:
    """The guard losses as floats; a ValueError naming the guard whose value is not a usable loss."""
    checked = {}
    for name, value in values.items():
        try:
            checked[str(name)] = as_loss(value)
        except ValueError as error:
            raise ValueError(f"guard {name!r}: {error}") from None
    return checked
