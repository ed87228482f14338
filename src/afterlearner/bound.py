"""The overfitting bound of a comparison-based retrofit (see ``shared/AFTERLEARNER.md``).

A comparison-based optimizer whose seed does not depend on the data returns one of at most
``k · κ^T`` points fixed before the data are seen (``T = ⌈b/λ⌉`` iterations, ``κ`` outcomes per
iteration, ``k`` runs). Hoeffding's inequality and a union bound over those points give, with
probability at least ``1 − δ``, for per-sample losses in [0, 1] and an ℵ-dataset of ``n`` i.i.d.
samples::

    |L_test − L_aleph| ≤ sqrt( (ln(2k/δ) + ln(number of outcome sequences)) / (2n) )
"""

from __future__ import annotations

import math

from afterlearner.errors import ConfigError


def bound_from_log_outcomes(log_outcomes: float, n: int, delta: float = 0.05, runs: int = 1) -> float:
    """ε for a run whose outcome sequences number ``exp(log_outcomes)``, ``runs`` runs, best kept."""
    if n < 1:
        raise ConfigError(f"n (the ℵ-dataset size) must be >= 1, got {n}")
    if not 0 < delta < 1:
        raise ConfigError(f"delta must be in (0, 1), got {delta}")
    if runs < 1:
        raise ConfigError(f"runs must be >= 1, got {runs}")
    return math.sqrt((math.log(2 * runs / delta) + log_outcomes) / (2 * n))


def generalization_bound(
    budget: int, n: int, delta: float = 0.05, workers: int = 1, runs: int = 1, outcomes: int = 2
) -> float:
    """ε = sqrt((ln(2k/δ) + T·ln κ) / (2n)) with T = ⌈budget/workers⌉ and κ = ``outcomes``.

    ``outcomes`` is κ, the number of possible comparison outcomes per iteration: 2 for a (1+1)
    scheme, λ when only the best of λ is used, λ! for a full ranking of λ candidates.
    """
    if budget < 1 or workers < 1:
        raise ConfigError(f"budget and workers must be >= 1, got budget={budget}, workers={workers}")
    if outcomes < 1:
        raise ConfigError(f"outcomes must be >= 1, got {outcomes}")
    iterations = math.ceil(budget / workers)
    return bound_from_log_outcomes(iterations * math.log(outcomes), n, delta, runs)


def bound_of(optimizer: str, budget: int, n: int | None, delta: float = 0.05, runs: int = 1) -> float | None:
    """ε of a retrofit by ``optimizer`` (its comparison class counts the outcomes); None when the
    bound does not apply: the optimizer uses loss values, or ``n`` is unknown.

    The one place a retrofit's bound is computed: results, stores, patches and reports call it.
    """
    from afterlearner import optimizers  # the registry depends on nothing here; imported late

    log_outcomes = optimizers.get(optimizer).log_outcomes(budget)
    if log_outcomes is None or not n:
        return None
    return bound_from_log_outcomes(log_outcomes, n, delta, runs)
