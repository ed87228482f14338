"""The bound's kl form: never looser than Hoeffding's, right at the edges, and it covers in practice."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import afterlearner as al
from afterlearner.bound import bound_from_log_outcomes, kl_bernoulli, kl_bound_from_log_outcomes


@settings(max_examples=300, deadline=None)
@given(
    log_outcomes=st.floats(0, 2000),
    n=st.integers(1, 100_000),
    loss=st.floats(0, 1),
    delta=st.floats(0.001, 0.5),
    runs=st.integers(1, 10),
)
def test_the_kl_form_is_never_looser_than_hoeffding(log_outcomes, n, loss, delta, runs) -> None:
    kl = kl_bound_from_log_outcomes(log_outcomes, n, loss, delta, runs)
    assert 0 <= kl <= bound_from_log_outcomes(log_outcomes, n, delta, runs) + 1e-12


def test_the_kl_form_by_hand() -> None:
    t = (math.log(2 / 0.05) + 100 * math.log(2)) / 1000
    # at an observed loss of 0 the set is q ≤ 1 − exp(−t), exactly
    assert kl_bound_from_log_outcomes(100 * math.log(2), 1000, 0.0) == pytest.approx(
        1 - math.exp(-t), rel=1e-9
    )
    # elsewhere the farther end sits on kl = t
    epsilon = kl_bound_from_log_outcomes(100 * math.log(2), 1000, 0.1)
    ends = [q for q in (0.1 - epsilon, 0.1 + epsilon) if 0 <= q <= 1]
    assert max(kl_bernoulli(0.1, q) for q in ends) == pytest.approx(t, rel=1e-6)
    # tighter than Hoeffding's, much tighter when the loss is small
    hoeffding = bound_from_log_outcomes(100 * math.log(2), 1000)
    assert epsilon < 0.8 * hoeffding
    assert kl_bound_from_log_outcomes(100 * math.log(2), 1000, 0.01) < 0.6 * hoeffding
    assert al.generalization_bound(100, 1000, loss=0.1) == pytest.approx(epsilon)


def test_result_bound_takes_the_kl_form_for_zero_one_losses() -> None:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(2))
    y = (x[:, 0] > 0).long()
    aleph = al.Aleph(model).add("bias")
    result = al.retrofit(
        aleph, al.DatasetLoss(x, y), budget=30, progress=False, n=200, optimizer="OnePlusOne"
    )
    assert result.zero_one
    hoeffding = bound_from_log_outcomes(30 * math.log(2), 200)
    assert result.bound() == pytest.approx(
        kl_bound_from_log_outcomes(30 * math.log(2), 200, result.best_loss)
    )
    assert result.bound() < hoeffding


# -- Monte-Carlo: on tasks whose true loss is known, |true − ℵ| exceeds ε in at most δ of the runs ----
NOISE = 0.2  # labels flipped with this probability around the true threshold 0.5


def true_loss(threshold: float) -> float:
    """Error of ``predict 1 iff x > threshold`` when x ~ U[0, 1] and y = [x > 0.5] flipped w.p. 0.2."""
    return NOISE + (1 - 2 * NOISE) * abs(threshold - 0.5)


@pytest.mark.slow
@pytest.mark.parametrize(("optimizer", "n", "budget"), [("OnePlusOne", 60, 40), ("RandomSearch", 40, 60)])
def test_the_bound_covers_the_true_loss_in_at_least_1_minus_delta_of_the_runs(optimizer, n, budget) -> None:
    delta, repeats, misses, widest = 0.05, 80, 0, 0.0
    for repeat in range(repeats):
        data = np.random.default_rng(1000 + repeat)  # a new ℵ-set each run; the search's seed is fixed
        x = data.random(n)
        y = (x > 0.5) ^ (data.random(n) < NOISE)
        rule = {"threshold": 0.5}
        aleph = al.Aleph().hyper(rule, "threshold", low=0.0, high=1.0, name="threshold")
        retrofitter = al.Retrofitter(aleph, budget=budget, optimizer=optimizer, seed=7)
        while (candidate := retrofitter.ask()) is not None:
            threshold = float(candidate.vector[0])
            retrofitter.tell(candidate, float(np.mean((x > threshold) != y)))
        result = retrofitter.result()
        result.zero_one, result.n = True, n
        epsilon = result.bound(delta=delta)
        gap = abs(true_loss(float(result.best[0])) - result.best_loss)
        widest = max(widest, gap)
        misses += gap > epsilon
    assert misses <= delta * repeats
    assert widest > 0.05  # the selection really overfits a little: the check is not empty


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["TwoPointsDE", "PSO"])
def test_the_population_bounds_cover_the_true_loss_too(optimizer) -> None:
    delta, repeats, misses, n, budget = 0.05, 80, 0, 150, 40
    for repeat in range(repeats):
        data = np.random.default_rng(2000 + repeat)
        x = data.random(n)
        y = (x > 0.5) ^ (data.random(n) < NOISE)
        rule = {"threshold": 0.5}
        aleph = al.Aleph().hyper(rule, "threshold", low=0.0, high=1.0, name="threshold")
        retrofitter = al.Retrofitter(aleph, budget=budget, optimizer=optimizer, seed=3)
        while (candidate := retrofitter.ask()) is not None:
            retrofitter.tell(candidate, float(np.mean((x > float(candidate.vector[0])) != y)))
        result = retrofitter.result()
        result.zero_one, result.n = True, n
        epsilon = result.bound(delta=delta)
        assert epsilon < 1  # not vacuous with the per-evaluation counts
        misses += abs(true_loss(float(result.best[0])) - result.best_loss) > epsilon
    assert misses <= delta * repeats
