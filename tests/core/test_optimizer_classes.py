"""Every optimizer class against its bound count (docs/bound.md, "Counting M").

Every registered name (aliases included) falls in one comparison class or is value-based; its
``log_outcomes(b)`` is its class's formula, written here again from the table of docs/bound.md;
every comparison-based count is at most the ranking count; value-based names give None. A retrofit
by one optimizer of each class reports ``result.bound()`` = sqrt((ln(2k/δ) + ln M) / (2n)) with
that count, computed here by hand.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
import torch

import afterlearner as al
from afterlearner import optimizers


def ranking(b: int) -> float:
    """ln ∏(2i − 1), i = 1..b: the i-th loss falls in one of 2i − 1 places among the earlier ones."""
    return sum(math.log(2 * i - 1) for i in range(1, b + 1))


#: ln M for a budget b, per class (docs/bound.md's table). The first evaluation has one outcome.
FORMULAS = {
    "parent": lambda b: min(b * math.log(2), ranking(b)),
    "parent-and-best": lambda b: min((b - 1) * math.log(3), ranking(b)),
    "particle": lambda b: min((b - 1) * math.log(4), ranking(b)),
    "ranking": ranking,
    "fixed": lambda b: math.log(b),
}

#: The names docs/bound.md and the optimizers module give as examples of each class.
DOCUMENTED = {
    "parent": ["OnePlusOne", "DiscreteLenglerOnePlusOne", "1+1"],
    "parent-and-best": ["TwoPointsDE", "DE", "LhsDE", "NoisyDE", "de"],
    "particle": ["PSO", "RealSpacePSO"],
    "ranking": ["CMA", "DiagonalCMA", "ES", "cma"],
    "fixed": ["RandomSearch", "random"],
    None: ["NGOpt", "MetaModel", "BO", "NoisyOnePlusOne", "Powell", "Cobyla", "SQP", "TBPSA"],
}

BUDGETS = [1, 2, 3, 10, 50, 200, 1000]


def by_class() -> dict[str | None, list[str]]:
    classes: dict[str | None, list[str]] = defaultdict(list)
    for name in optimizers.available():
        classes[optimizers.get(name).outcome_class].append(name)
    return classes


def test_every_name_falls_in_a_class_and_every_class_has_names() -> None:
    classes = by_class()
    assert sum(len(names) for names in classes.values()) == len(optimizers.available()) > 500
    assert set(classes) == {*FORMULAS, None}


@pytest.mark.parametrize("outcome_class", [*FORMULAS, None])
def test_the_documented_examples_are_in_their_class(outcome_class) -> None:
    info = {name: optimizers.get(name) for name in DOCUMENTED[outcome_class]}
    assert {name: i.outcome_class for name, i in info.items()} == dict.fromkeys(info, outcome_class)
    assert all(i.comparison_based is (outcome_class is not None) for i in info.values())


@pytest.mark.parametrize("outcome_class", [*FORMULAS, None])
def test_every_name_counts_by_its_class_formula(outcome_class) -> None:
    for name in by_class()[outcome_class]:
        info = optimizers.get(name)
        for b in BUDGETS:
            if outcome_class is None:
                assert info.log_outcomes(b) is None, (name, b)
            else:
                expected = FORMULAS[outcome_class](b)
                if info.centroid_size(b) and info.centroid_margin:  # auto: its margin test, one bit
                    expected += math.log(2)
                assert info.log_outcomes(b) == pytest.approx(expected, rel=1e-12, abs=1e-12), (name, b)


@pytest.mark.parametrize(
    "outcome_class",
    [c for c in FORMULAS],
)
def test_no_comparison_class_counts_more_than_the_ranking(outcome_class) -> None:
    """The docs: no optimizer here sees more than the relative order of its losses, so the smaller of
    the two counts is used."""
    info = optimizers.get(DOCUMENTED[outcome_class][0])
    for b in range(1, 301):
        assert info.log_outcomes(b) <= ranking(b) + 1e-9, b


def test_the_parent_count_is_within_the_ranking_count_from_a_budget_of_3() -> None:
    info = optimizers.get("OnePlusOne")
    assert all(info.log_outcomes(b) <= ranking(b) for b in range(3, 301))


@pytest.mark.parametrize("outcome_class", ["parent-and-best", "particle"])
def test_the_per_evaluation_counts_are_much_tighter_than_the_ranking_on_a_real_budget(outcome_class) -> None:
    info = optimizers.get(DOCUMENTED[outcome_class][0])
    assert all(info.log_outcomes(b) < 0.4 * ranking(b) for b in (50, 200, 1000))


N, DELTA = 200, 0.05


def _retrofit(name: str, runs: int = 1) -> al.RetrofitResult:
    """A budget of 12 on a smooth opaque loss (not a 0/1 loss, so the bound takes Hoeffding's form)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    target = torch.tensor([0.4, -0.3])

    def loss(m: torch.nn.Module) -> float:
        return float(((m.bias - target) ** 2).sum())

    aleph = al.Aleph(model).add("bias")
    return al.retrofit(aleph, loss, budget=12, optimizer=name, runs=runs, seed=1, n=N, progress=False)


@pytest.mark.parametrize(
    ("name", "runs"),
    [
        ("OnePlusOne", 1),
        ("OnePlusOne", 2),
        ("TwoPointsDE", 1),
        ("PSO", 1),
        ("DiagonalCMA", 1),
        ("RandomSearch", 1),
    ],
)
def test_a_retrofit_reports_the_bound_of_its_class(name, runs) -> None:
    result = _retrofit(name, runs)
    assert result.evaluations == 12 * runs and not result.zero_one
    log_m = FORMULAS[optimizers.get(name).outcome_class](12)
    by_hand = math.sqrt((math.log(2 * runs / DELTA) + log_m) / (2 * N))
    assert result.bound(delta=DELTA) == pytest.approx(by_hand, rel=1e-12)


def test_a_value_based_retrofit_has_no_bound() -> None:
    result = _retrofit("NoisyOnePlusOne")
    assert result.evaluations == 12 and result.bound() is None
