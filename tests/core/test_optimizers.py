"""Optimizers by name, NGOpt with the installed numpy, and the bound against hand-computed values.

Each name's comparison class and bound count: tests/core/test_optimizer_classes.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import afterlearner as al
from afterlearner import optimizers
from afterlearner._compat import _scalar_float
from afterlearner.bound import bound_from_log_outcomes
from afterlearner.errors import ConfigError


def test_scalar_float_shim_accepts_one_element_arrays() -> None:
    assert _scalar_float(np.array([2.5])) == 2.5
    assert _scalar_float(np.array([[1.5]])) == 1.5
    assert _scalar_float(3) == 3.0
    with pytest.raises(TypeError):
        _scalar_float(np.array([1.0, 2.0]))


@pytest.mark.timeout(120)
def test_ngopt_runs_its_metamodel_with_the_installed_numpy() -> None:
    """NGOpt picks MetaModel for this problem; before the shim it hung on numpy >= 2.4."""
    layer = torch.nn.Linear(5, 5)
    target = torch.linspace(-1, 1, 5)

    def loss(m: torch.nn.Module) -> float:
        return float(((m.bias - target) ** 2).sum())

    aleph = al.Aleph(layer).add("bias", step=0.5)
    parametrization = aleph.parametrization()
    chosen = optimizers.get("NGOpt").make(parametrization, budget=100, workers=1)
    assert chosen._info()["sub-optim"] == "MetaModel"
    result = al.retrofit(aleph, loss, budget=100, optimizer="NGOpt", progress=False)
    assert result.evaluations == 100
    # only the surrogate model's steps get this close to the optimum within 100 evaluations
    assert result.best_loss < 1e-6


@pytest.mark.parametrize(
    "name",
    [
        "OnePlusOne",
        "DiagonalCMA",
        "TwoPointsDE",
        "PSO",
        "RandomSearch",
        "DiscreteLenglerOnePlusOne",
        "CMA",
        "random",
        "NGOpt",
        "TBPSA",
    ],
)
def test_optimizers_by_name_run(name, tiny_net, quadratic_loss) -> None:
    result = al.retrofit(
        al.Aleph(tiny_net).add("fc.bias"), quadratic_loss, budget=25, optimizer=name, progress=False
    )
    assert result.evaluations == 25 and result.best_loss <= result.initial_loss


def test_unknown_optimizer_lists_close_names() -> None:
    with pytest.raises(ConfigError, match="unknown optimizer 'DiagonalCMAA'; did you mean DiagonalCMA"):
        optimizers.get("DiagonalCMAA")


def test_bound_matches_hand_computed_values() -> None:
    # the example of AFTERLEARNER.md: b=100, λ=1, κ=2, k=1, δ=0.05
    assert al.generalization_bound(100, 500, 0.05) == pytest.approx(0.2702, abs=1e-4)
    assert al.generalization_bound(100, 10_000, 0.05) == pytest.approx(0.0604, abs=1e-4)
    by_hand = math.sqrt((math.log(2 * 3 / 0.1) + math.ceil(50 / 4) * math.log(24)) / (2 * 1000))
    assert al.generalization_bound(50, 1000, 0.1, workers=4, runs=3, outcomes=24) == pytest.approx(by_hand)
    with pytest.raises(ConfigError):
        al.generalization_bound(0, 100)
    with pytest.raises(ConfigError):
        bound_from_log_outcomes(1.0, n=0)
    with pytest.raises(ConfigError):
        bound_from_log_outcomes(1.0, n=10, delta=1.5)
