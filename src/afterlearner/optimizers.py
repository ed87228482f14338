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

afterlearner returns the best evaluated candidate, ties going to the latest (the rule Nevergrad's own
best tracking uses), so the returned point is a function of those outcomes; ``"auto"``'s final
centroid is the one exception, below.

``"auto"`` (the default) is resolved per run by :func:`auto` from the dimension, the budget and λ; it
always picks a comparison-based optimizer and is counted in the ``ranking`` class. Its last
evaluation of a run (budget ≥ 10) is not the optimizer's: it is the centroid, in the optimizer's
standardized space, of the :data:`AUTO_CENTROID` best candidates so far. It is returned unless the
best evaluated candidate beats it by more than :data:`AUTO_CENTROID_MARGIN` of the centroid's ℵ-loss
(:func:`best_beats_centroid`). Which candidates are the best is a function of the ranking of the
losses, so the ranking count covers the centroid; the margin test is one more binary outcome per
run, ``ln 2``. On the suite this rule keeps more of the gain on held-out data than the best
candidate, than the centroid always, and than the centroid only when no worse
(``docs/optimizers.md``).
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
DEFAULT_OPTIMIZER = "auto"

#: ``optimizer="auto"``: each run uses the optimizer :func:`auto` picks for its dimension, budget and λ.
AUTO = "auto"
#: ``"auto"`` ends each run by evaluating the centroid of this many best candidates (its last
#: evaluation; returned unless the best beats it by more than the margin below): it keeps more of
#: its gain on held-out data (``docs/optimizers.md``).
AUTO_CENTROID = 5
#: ... and returns that centroid unless the best candidate's ℵ-loss is lower by more than this fraction
#: of the centroid's. The best of many candidates on a small ℵ-set owes part of its lead to luck on
#: that set, and a small lead mostly so. 0.10 was chosen on the suite, and the choice holds out of
#: sample there: chosen on half its seeds, it ranks best on the other half (``docs/optimizers.md``).
AUTO_CENTROID_MARGIN = 0.10
#: Runs shorter than this never end with a final centroid (too few candidates to average).
CENTROID_MIN_BUDGET = 10
#: :func:`auto`'s threshold: up to this many ℵ-scalars, large steps (see :func:`auto`).
AUTO_SMALL_DIMENSION = 30


def auto(dimension: int, budget: int, workers: int = 1) -> str:
    """The optimizer ``optimizer="auto"`` runs: a pure function of the dimension, the budget and λ,
    always a comparison-based optimizer of the ``ranking`` class (the bound of "auto" counts that
    class's outcomes, which is never below the chosen optimizer's own count).

    Chosen from ``bench/suite.py`` (the table is in ``docs/optimizers.md``), which measured budgets 50
    to 200 at λ = 1; the budget and λ do not change the choice in that range (CMA's population is
    ``max(λ, 4 + 3 ln d)``, so it uses any λ):

    * one ℵ-scalar: ``OnePlusOne`` (Nevergrad's CMA needs a second dimension);
    * up to :data:`AUTO_SMALL_DIMENSION` ℵ-scalars: ``LargeCMA``, CMA-ES whose first step is three
      times each entry's step: the classifier tasks of the suite gain more, and keep more of it on
      held-out data, with these larger first steps;
    * above: ``DiagonalCMA``, CMA-ES with one step per ℵ-scalar starting at each entry's step, cheap
      in thousands of dimensions, where large steps find nothing.
    """
    del budget, workers  # measured not to matter in the suite's range (see the docstring)
    if dimension <= 1:
        return "OnePlusOne"
    if dimension <= AUTO_SMALL_DIMENSION:
        return "LargeCMA"
    return "DiagonalCMA"


def best_beats_centroid(best: float, centroid: float, margin: float) -> bool:
    """True if a run with a final centroid returns its best evaluated candidate (ℵ-loss ``best``)
    rather than the centroid (``centroid``): only when the best is lower by more than ``margin`` of the
    centroid's loss (its magnitude, for losses below zero). One comparison, so the bound adds ln 2."""
    return best < centroid - margin * abs(centroid)


#: Short names for the optimizers people reach for first.
ALIASES = {"random": "RandomSearch", "cma": "CMA", "1+1": "OnePlusOne", "de": "TwoPointsDE"}


@dataclass(frozen=True)
class OptimizerInfo:
    """A registered optimizer and the class of comparison outcomes it can observe."""

    name: str
    outcome_class: OutcomeClass | None
    final_centroid: int = 0  # > 0: a run's last evaluation is the centroid of this many best candidates
    centroid_margin: float = 0.0  # the centroid is returned unless the best is lower by this fraction

    @property
    def comparison_based(self) -> bool:
        return self.outcome_class is not None

    def log_outcomes(self, budget: int) -> float | None:
        """ln of the number of outcome sequences of one run of ``budget`` evaluations, or None."""
        ranking = sum(math.log(2 * i - 1) for i in range(1, budget + 1))
        if self.outcome_class == "ranking" and self.centroid_size(budget) and self.centroid_margin:
            ranking += math.log(2)  # the margin test: the centroid or the best, one more bit
        if self.outcome_class == "parent":
            return min(ranking, budget * math.log(2))
        if self.outcome_class in PER_EVALUATION:
            return min(ranking, (budget - 1) * math.log(PER_EVALUATION[self.outcome_class]))
        if self.outcome_class == "ranking":
            return ranking
        if self.outcome_class == "fixed":
            return math.log(budget)
        return None

    def centroid_size(self, budget: int) -> int:
        """How many best candidates a run of ``budget`` evaluations averages as its last one (0: none)."""
        return self.final_centroid if budget >= CENTROID_MIN_BUDGET else 0

    def make(self, parametrization: ng.p.Parameter, budget: int, workers: int) -> Any:
        """A fresh Nevergrad optimizer on ``parametrization`` (seed it through the parametrization)."""
        name = self.resolve(parametrization.dimension, budget, workers)
        return ng.optimizers.registry[name](
            parametrization=parametrization, budget=budget, num_workers=workers
        )

    def resolve(self, dimension: int, budget: int, workers: int = 1) -> str:
        """The Nevergrad optimizer a run of this one uses (``"auto"`` picks by :func:`auto`)."""
        return auto(dimension, budget, workers) if self.name == AUTO else self.name


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
    return [AUTO] + sorted(ng.optimizers.registry) + sorted(ALIASES)


def get(name: str) -> OptimizerInfo:
    """Look an optimizer up by name; unknown names raise :class:`ConfigError` with close matches."""
    if not isinstance(name, str):
        raise ConfigError(f"optimizer must be a name, got {name!r}")
    if name == AUTO:
        return OptimizerInfo(
            AUTO, "ranking", final_centroid=AUTO_CENTROID, centroid_margin=AUTO_CENTROID_MARGIN
        )
    resolved = ALIASES.get(name, name)
    if resolved not in ng.optimizers.registry:
        close = difflib.get_close_matches(name, available(), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see afterlearner.optimizers.available()"
        raise ConfigError(f"unknown optimizer {name!r}{hint}")
    return OptimizerInfo(resolved, _outcome_class(resolved))
