"""The overfitting bound of a comparison-based retrofit (the argument: ``docs/bound.md``).

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
    budget: int,
    n: int,
    delta: float = 0.05,
    workers: int = 1,
    runs: int = 1,
    outcomes: int = 2,
    loss: float | None = None,
) -> float:
    """ε = sqrt((ln(2k/δ) + T·ln κ) / (2n)) with T = ⌈budget/workers⌉ and κ = ``outcomes``.

    ``outcomes`` is κ, the number of possible comparison outcomes per iteration: 2 for a (1+1)
    scheme, λ when only the best of λ is used, λ! for a full ranking of λ candidates. With ``loss``,
    the observed ℵ-loss of 0/1 per-sample losses, the binomial-tail (kl-inverse) form is used: never
    looser, much tighter when the loss is small (see :func:`kl_bound_from_log_outcomes`).
    """
    if budget < 1 or workers < 1:
        raise ConfigError(f"budget and workers must be >= 1, got budget={budget}, workers={workers}")
    if outcomes < 1:
        raise ConfigError(f"outcomes must be >= 1, got {outcomes}")
    log_outcomes = math.ceil(budget / workers) * math.log(outcomes)
    if loss is not None:
        return kl_bound_from_log_outcomes(log_outcomes, n, loss, delta, runs)
    return bound_from_log_outcomes(log_outcomes, n, delta, runs)


def bound_of(
    optimizer: str,
    budget: int,
    n: int | None,
    delta: float = 0.05,
    runs: int = 1,
    loss: float | None = None,
    guards: int = 0,
) -> float | None:
    """ε of a retrofit by ``optimizer`` (its comparison class counts the outcomes); None when the
    bound does not apply: the optimizer uses loss values, or ``n`` is unknown.

    The one place a retrofit's bound is computed: results, stores, patches and reports call it.
    ``loss`` (the observed ℵ-loss, when it is a mean of 0/1 per-sample losses) selects the kl form.
    ``guards``: the number of guards (:mod:`afterlearner.guards`); each adds one comparison per
    evaluation (within tolerance of the trained model or not), ln 2 nats.
    """
    from afterlearner import optimizers  # the registry depends on nothing here; imported late

    log_outcomes = optimizers.get(optimizer).log_outcomes(budget)
    if log_outcomes is None or not n:
        return None
    log_outcomes += guard_log_outcomes(budget, guards)
    if loss is not None:
        return kl_bound_from_log_outcomes(log_outcomes, n, loss, delta, runs)
    return bound_from_log_outcomes(log_outcomes, n, delta, runs)


def guard_log_outcomes(budget: int, guards: int) -> float:
    """ln of the feasibility outcomes of ``guards`` guards over ``budget`` evaluations: one bit each
    (evaluation 0, the trained model, is the reference and always feasible)."""
    return max(budget - 1, 0) * guards * math.log(2)


def kl_bernoulli(p: float, q: float) -> float:
    """kl(p‖q) between Bernoulli(p) and Bernoulli(q), in nats (∞ where q excludes what p has)."""

    def term(a: float, b: float) -> float:
        if a == 0:
            return 0.0
        return math.inf if b == 0 else a * math.log(a / b)

    return term(p, q) + term(1 - p, 1 - q)


def kl_bound_from_log_outcomes(
    log_outcomes: float, n: int, loss: float, delta: float = 0.05, runs: int = 1
) -> float:
    """ε of the binomial-tail (kl-inverse) form, for an observed ℵ-loss ``loss`` of 0/1 per-sample losses.

    Chernoff's bound per candidate, P(kl(L̂‖L) > t) ≤ 2·exp(−n·t), and the same union bound as
    Hoeffding's form give, with probability ≥ 1 − δ, L ∈ {q : kl(L̂‖q) ≤ t} with
    t = (ln(2k/δ) + ln(outcome sequences)) / n. ε is the farther end of that set from L̂. Since
    kl(p‖q) ≥ 2(p − q)² (Pinsker), it is never larger than Hoeffding's ε, and much smaller when L̂ is
    near 0 or 1.
    """
    hoeffding = bound_from_log_outcomes(log_outcomes, n, delta, runs)
    if not 0 <= loss <= 1:
        raise ConfigError(f"the kl form needs an ℵ-loss in [0, 1] (a mean of 0/1 losses), got {loss}")
    t = (math.log(2 * runs / delta) + log_outcomes) / n
    low = _invert(loss, t, lower=True)
    high = _invert(loss, t, lower=False)
    return min(hoeffding, max(loss - low, high - loss))


def _invert(p: float, t: float, lower: bool) -> float:
    """The q farthest from p (below or above) with kl(p‖q) ≤ t, by bisection (kl grows away from p)."""
    inside, outside = p, (0.0 if lower else 1.0)
    if kl_bernoulli(p, outside) <= t:
        return outside
    for _ in range(100):
        middle = (inside + outside) / 2
        if kl_bernoulli(p, middle) <= t:
            inside = middle
        else:
            outside = middle
    return inside
