"""Optimizers by name: every Nevergrad optimizer, plus what each one means for the bound.

The bound of :mod:`afterlearner.bound` holds only for *comparison-based* optimizers, and its size
depends on how many comparison outcomes a run can have. Each optimizer falls in one class:

``parent``
    Every evaluation is compared with the current best only (better-or-equal, or worse): the (1+1)
    family, Lengler's discrete (1+1) included. 2 outcomes per evaluation: ``b·ln 2``.
``parent-and-best``
    Differential evolution (Nevergrad's ``DifferentialEvolution`` family: ``TwoPointsDE``, ``DE``,
    ...). After its evaluation, a child is compared with its parent only (it replaces it when
    ``loss <= parent``) and with the best so far (which the next donors use); since the best is no
    worse than the parent, that is at most 3 outcomes: ``(b − 1)·ln 3`` (the first evaluation has
    one). ``recommend()`` may use values (``high_speed``, ``"noisy"``), but afterlearner never calls
    it: it returns its own best. See docs/bound.md for the argument, line by line.
``particle``
    Particle swarm (``ConfPSO``: ``PSO``, ...): a particle's new position is compared with the
    global best (``<``: better, tied or worse) and with its own best (``<=``); the global best is no
    worse than its own, so at most 4 outcomes: ``(b − 1)·ln 4``.
``ranking``
    Uses the ranking of evaluated points (CMA-ES, evolution strategies). Counted conservatively:
    each evaluation's outcome is its place among all earlier ones, ties included, ``ln ∏(2i−1)`` for
    ``i = 1..b``. (A per-generation count would be much smaller, but pycma restarts on termination
    tests that compare best values across generations, so the whole history can matter.)

Every count is also at most the ranking count (any of these optimizers sees no more than the
relative order of all its losses), so the smaller of the two is used.
``fixed``
    Proposals do not depend on the losses at all (random search): the result is the best of ``b``
    points fixed by the seed, ``ln b``.
``None``
    Uses loss values (surrogate models, line searches, noise averaging, portfolios that may pick
    those: NGOpt may pick a MetaModel): no bound is given.

afterlearner always returns the best evaluated candidate, ties going to the latest (the rule
Nevergrad's own best tracking uses), so the returned point is a function of those outcomes.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Literal

import nevergrad as ng

import afterlearner._compat  # noqa: F401  (makes NGOpt work with numpy >= 2.4)
from afterlearner.errors import ConfigError

OutcomeClass = Literal["parent", "parent-and-best", "particle", "ranking", "fixed"]

#: Outcomes per evaluation (after the first) of the classes counted per evaluation.
PER_EVALUATION = {"parent-and-best": 3, "particle": 4}

#: The default optimizer; chosen by measurement, see the README ("Choosing the default optimizer").
DEFAULT_OPTIMIZER = "OnePlusOne"

#: Short names for the optimizers people reach for first.
ALIASES = {"random": "RandomSearch", "cma": "CMA", "1+1": "OnePlusOne", "de": "TwoPointsDE"}


@dataclass(frozen=True)
class OptimizerInfo:
    """A registered optimizer and the class of comparison outcomes it can observe."""

    name: str
    outcome_class: OutcomeClass | None

    @property
    def comparison_based(self) -> bool:
        return self.outcome_class is not None

    def log_outcomes(self, budget: int) -> float | None:
        """ln of the number of outcome sequences of one run of ``budget`` evaluations, or None."""
        ranking = sum(math.log(2 * i - 1) for i in range(1, budget + 1))
        if self.outcome_class == "parent":
            return min(ranking, budget * math.log(2))
        if self.outcome_class in PER_EVALUATION:
            return min(ranking, (budget - 1) * math.log(PER_EVALUATION[self.outcome_class]))
        if self.outcome_class == "ranking":
            return ranking
        if self.outcome_class == "fixed":
            return math.log(budget)
        return None

    def make(self, parametrization: ng.p.Parameter, budget: int, workers: int) -> Any:
        """A fresh Nevergrad optimizer on ``parametrization`` (seed it through the parametrization)."""
        return ng.optimizers.registry[self.name](
            parametrization=parametrization, budget=budget, num_workers=workers
        )


def _outcome_class(name: str) -> OutcomeClass | None:
    from nevergrad.optimization import optimizerlib as lib

    optimizer = ng.optimizers.registry[name]
    config = getattr(optimizer, "_config", {}) or {}
    if isinstance(optimizer, lib.ParametrizedOnePlusOne):
        plain = (
            config.get("noise_handling") is None
            and not config.get("smoother")
            and not config.get("use_pareto")
        )
        return "parent" if plain else None
    if isinstance(optimizer, lib.RandomSearchMaker):
        return "fixed"
    if isinstance(optimizer, lib.ParametrizedCMA):
        return None if config.get("high_speed") or config.get("fcmaes") else "ranking"
    if optimizer is lib.CMA:
        return "ranking"
    if isinstance(optimizer, lib.DifferentialEvolution):
        return "parent-and-best"
    if isinstance(optimizer, lib.ConfPSO):
        return "particle"
    if isinstance(optimizer, lib.EvolutionStrategy):
        return "ranking"
    return None


def available() -> list[str]:
    """Every optimizer name :func:`get` accepts."""
    return sorted(ng.optimizers.registry) + sorted(ALIASES)


def get(name: str) -> OptimizerInfo:
    """Look an optimizer up by name; unknown names raise :class:`ConfigError` with close matches."""
    if not isinstance(name, str):
        raise ConfigError(f"optimizer must be a name, got {name!r}")
    resolved = ALIASES.get(name, name)
    if resolved not in ng.optimizers.registry:
        close = difflib.get_close_matches(name, available(), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see afterlearner.optimizers.available()"
        raise ConfigError(f"unknown optimizer {name!r}{hint}")
    return OptimizerInfo(resolved, _outcome_class(resolved))
