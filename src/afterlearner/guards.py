"""Guardrail metrics: improve the ℵ-loss without making another metric worse than allowed.

::

    al.retrofit(aleph, loss, guards={"absrel": (absrel_loss, 0.01)})

A guard is a second loss (lower is better) with a tolerance. Every candidate's guard losses are
measured with its ℵ-loss; a candidate whose guard loss exceeds the trained model's by more than the
tolerance is *infeasible*: journaled with its losses and the reason, never the best, and told to
the optimizer as worse than every feasible candidate (like a failed evaluation). The trained model
(evaluation 0 of every run) is the reference, so it is always feasible and the result is never
worse than the trained model on any guard, on the ℵ-set.

Each guard is one comparison per evaluation (within tolerance or not): the bound counts ln 2 nats
more per guard and evaluation (:func:`afterlearner.bound.bound_of`). A guard with a ``test_loss``
is checked on held-out data at the end (:class:`GuardCheck`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from afterlearner.errors import ConfigError
from afterlearner.evaluators.base import Measured

Loss = Callable[[Any], object]


@dataclass(frozen=True)
class Guard:
    """A guard loss (lower is better), how much worse than the trained model it may get, and,
    optionally, its held-out version checked once at the end."""

    loss: Loss
    tolerance: float = 0.0
    test_loss: Loss | None = None

    def __post_init__(self) -> None:
        if not callable(self.loss):
            raise ConfigError(f"a guard's loss must be callable as loss(model) -> float, got {self.loss!r}")
        tolerance = self.tolerance
        if (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, (int, float))
            or not math.isfinite(tolerance)
        ):
            raise ConfigError(f"a guard's tolerance must be a finite number ≥ 0, got {tolerance!r}")
        if tolerance < 0:
            raise ConfigError(f"a guard's tolerance must be ≥ 0 (how much worse it may get), got {tolerance}")
        if self.test_loss is not None and not callable(self.test_loss):
            raise ConfigError(f"a guard's test_loss must be callable, got {self.test_loss!r}")


GuardSpec = Guard | tuple


def as_guards(guards: Mapping[str, GuardSpec] | None) -> dict[str, Guard]:
    """``{name: Guard or (loss, tolerance[, test_loss])}`` checked and as Guards, in name order."""
    if guards is None:
        return {}
    if not isinstance(guards, Mapping):
        raise ConfigError(f"guards must be a mapping name → (loss, tolerance), got {type(guards).__name__}")
    checked: dict[str, Guard] = {}
    for name in sorted(guards):
        spec = guards[name]
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a guard's name must be a non-empty string, got {name!r}")
        if isinstance(spec, Guard):
            checked[name] = spec
        elif isinstance(spec, tuple) and 2 <= len(spec) <= 3:
            checked[name] = Guard(*spec)
        else:
            raise ConfigError(
                f"guard {name!r} must be a Guard or a tuple (loss, tolerance[, test_loss]), got {spec!r}"
            )
    return checked


def tolerances(guards: Mapping[str, Guard]) -> dict[str, float]:
    """What the engine needs of the guards (and the store records): name → tolerance."""
    return {name: float(guard.tolerance) for name, guard in guards.items()}


class GuardedLoss:
    """``loss(model)`` with every guard loss measured on the same model: returns a ``Measured``."""

    def __init__(self, loss: Loss, guards: Mapping[str, Guard]) -> None:
        self.loss, self.guards = loss, dict(guards)

    def __call__(self, model: Any) -> Measured:
        return Measured(self.loss(model), {name: guard.loss(model) for name, guard in self.guards.items()})


def missing(values: Mapping[str, float] | None, limits: Mapping[str, float]) -> str | None:
    """Why guard losses told with a loss are not those of the guards (some missing), or None."""
    if values is not None and set(values) == set(limits):
        return None
    absent = sorted(set(limits) - set(values or {}))
    return f"the loss did not report the guard(s) {', '.join(absent) or '?'}"


def violation(
    values: Mapping[str, float] | None, reference: Mapping[str, float], limits: Mapping[str, float]
) -> str | None:
    """Why a candidate is infeasible (its guard losses against the trained model's), or None.

    Comparisons only: each guard is within ``reference + tolerance`` or not.
    """
    absent = missing(values, limits)
    if absent is not None:
        return absent
    assert values is not None
    broken = [
        f"{name} {values[name]:.6g} > {reference[name]:.6g} + {limits[name]:g}"
        for name in sorted(limits)
        if values[name] > reference[name] + limits[name]
    ]
    return "guard: " + "; ".join(broken) if broken else None


@dataclass(frozen=True)
class GuardCheck:
    """One guard at the end of a retrofit: its tolerance, its ℵ-set values on the trained and the
    returned model, and its held-out values (when the guard has a ``test_loss``)."""

    name: str
    tolerance: float
    trained: float | None
    retrofitted: float | None
    test_trained: float | None = None
    test_retrofitted: float | None = None

    @property
    def held(self) -> bool | None:
        """Held-out value within the tolerance of the trained model's (None: no held-out check)."""
        if self.test_trained is None or self.test_retrofitted is None:
            return None
        return self.test_retrofitted <= self.test_trained + self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tolerance": self.tolerance,
            "trained": self.trained,
            "retrofitted": self.retrofitted,
            "test_trained": self.test_trained,
            "test_retrofitted": self.test_retrofitted,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuardCheck:
        return cls(**{key: data.get(key) for key in cls.__dataclass_fields__})  # type: ignore[arg-type]

    def describe(self) -> str:
        """``absrel (tolerance 0.01): ℵ 0.3300 → 0.3350; held-out 0.3400 → 0.3420, within tolerance``."""

        def pair(before: float | None, after: float | None) -> str:
            return f"{_g(before)} → {_g(after)}"

        text = f"{self.name} (tolerance {self.tolerance:g}): ℵ {pair(self.trained, self.retrofitted)}"
        if self.held is not None:
            verdict = "within tolerance" if self.held else "NOT within tolerance on held-out data"
            text += f"; held-out {pair(self.test_trained, self.test_retrofitted)}, {verdict}"
        return text


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
