"""Which optimizer (and which recommendation rule) keeps its gain on held-out data? A suite of retrofits.

Every method retrofits every task of ``bench/suite_tasks.py`` (classifiers for balanced error, F1,
macro-F1, recall at a precision; hyperparameters only; a regression for a band criterion; the depth
and image-generator experiments at reduced size; 2100 ℵ-scalars) at budgets 50, 100 and 200, over
several seeds, and is judged on the task's disjoint held-out set. Printed, per task and overall: the
mean held-out loss, the mean rank by held-out loss (1 = best; ties share their mean rank), the
ℵ-loss of the returned candidate, and ms per evaluation (median; the load average beside it); means
come with the half-width of their 95% t-interval over seeds (±).

The methods:

* afterlearner's engine (``al.retrofit``, the best evaluated candidate is returned) with the (1+1)
  family, ``DiagonalCMA``, ``CMA``, ``TwoPointsDE`` and ``RandomSearch``;
* recommendation rules the engine does not have, in a bench loop that drives Nevergrad exactly as
  the engine does (checked: its best-candidate rule gives the engine's losses bit for bit), with the
  search stopped after b − 1 evaluations and the rule's candidate evaluated as the b-th:
  ``+mean`` (CMA's distribution mean), ``+mean-guarded`` (the mean if its ℵ-loss is below
  the trained model's, else the best), ``+top5`` (the centroid of the 5 best evaluated
  candidates, in the optimizer's standardized space), ``+top5-or-best`` (that centroid unless
  its ℵ-loss is above the best candidate's) and ``+top5-margin`` (that centroid unless the best
  candidate's ℵ-loss is lower by more than ``AUTO_CENTROID_MARGIN`` = 10% of the centroid's: what
  the engine's ``auto`` returns, its b-th candidate being the centroid) — all functions of
  comparisons only;
* peers: Optuna's TPE through Optuna's own API (optional: ``pip install optuna``), and the loop a
  user writes by hand, Nevergrad's CMA with a step σ = 0.3 on the ℵ-vector (``hand CMA σ=0.3``),
  returning ``optimizer.provide_recommendation()``.

Each task is built once; every run restores its model bit for bit. Records are appended to a JSONL
file as they are made, so an interrupted suite resumes where it stopped. A finished run gzips its
journal beside it (``bench/results/suite.jsonl.gz``, ``classifier_check.jsonl.gz``): the repository
keeps these snapshots, so a fresh checkout re-renders docs/optimizers.md (``--report-only``) and a
test checks that the page is what they render.

    python bench/suite.py --quick                # a few minutes: 2 seeds, prints the table
    python bench/suite.py                        # the full suite (20 seeds), writes docs/optimizers.md
    python bench/suite.py --report-only          # re-print / re-write from the saved records
    python bench/suite.py --classifier-check     # the default and the hand CMA loop on the classifier
                                                 # tasks, seeds 20 to 99 too (about 10 min), then the report
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import math
import os
import platform
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nevergrad as ng
import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite_tasks import TASKS, SuiteTask  # noqa: E402

import afterlearner as al  # noqa: E402
from afterlearner import optimizers as registry  # noqa: E402
from afterlearner.retrofit import derive_seed  # noqa: E402
from afterlearner.store import best_evaluation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = (50, 100, 200)
FULL_SEEDS, QUICK_SEEDS = 20, 2
#: Seeds of the classifier check (``--classifier-check``): the default against the hand CMA loop on the
#: classifier tasks only, seeds FULL_SEEDS and up added to the suite's, because 20 seeds cannot tell the
#: two apart on some of them (differences of a few thousandths with intervals wider than that).
CHECK_SEEDS = 100
CHECK_JOURNAL = ROOT / "bench" / "results" / "classifier_check.jsonl"
#: Optuna's TPE costs about 0.2 s per trial at 2100 scalars (growing with the trials): not run above this.
TPE_MAX_DIMENSION = 200
TOP = 5  # the +top5 rule: the centroid of this many best candidates
HAND_CMA = "hand CMA σ=0.3"
TPE = "TPE (Optuna)"
ENGINE_OPTIMIZERS = (
    "OnePlusOne",
    "DiscreteOnePlusOne",
    "DiscreteLenglerOnePlusOne",
    "CauchyOnePlusOne",
    "DiagonalCMA",
    "CMA",
    "LargeDiagCMA",
    "LargeCMA",
    "TwoPointsDE",
    "RandomSearch",
    "auto",
)
#: Bench-loop rules per optimizer (the engine's own rule, the best candidate, is checked, not reported).
RULES = {
    "DiagonalCMA": ("mean", "mean-guarded", "top5", "top5-or-best"),
    "LargeDiagCMA": ("mean", "top5"),
    "LargeCMA": ("mean", "top5", "top5-or-best"),
    "OnePlusOne": ("top5",),
    "TwoPointsDE": ("top5",),
    "auto": ("mean", "top5", "top5-or-best", "top5-margin"),
}
LOOP = "#loop"  # suffix of the bench loop's best-candidate records, compared with the engine's
#: Bench-loop rules the engine now runs itself (``auto`` ends each run with the centroid of its 5 best
#: candidates): their records must equal the engine's record for record; they are checked, then left
#: out of the tables (they would be the engine's rows twice).
ENGINE_TWINS = {"auto+top5-margin": "auto"}


@dataclass(frozen=True)
class Record:
    """One method on one task at one budget and seed: what it returned, judged on both sets."""

    task: str
    method: str
    budget: int
    seed: int
    held_out: float
    aleph: float
    ms_per_eval: float


@dataclass
class Built:
    """A task built once for the whole suite, with its trained model's losses."""

    spec: SuiteTask
    task: al.Task
    dimension: int
    trained_aleph: float
    trained_held_out: float


def build(spec: SuiteTask) -> Built:
    task = spec.build()
    with torch.no_grad():
        trained_aleph = float(task.loss(task.aleph.model))
        trained_held_out = _scalar(task.test_loss(task.aleph.model))
    return Built(spec, task, len(task.aleph), trained_aleph, trained_held_out)


def _scalar(value: object) -> float:
    """A loss as one number: a held-out loss may return its per-sample losses (their mean is the loss)."""
    array = np.asarray(
        value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value, dtype=float
    )
    return float(array.mean()) if array.ndim == 1 and array.size > 1 else float(array.reshape(()))


# -- evaluating candidates -----------------------------------------------------------------------------------
def _loss_of(task: al.Task, loss: Callable[[Any], object], vector: np.ndarray) -> float:
    """The loss with ``vector`` written into the model; the model is given back as it was."""
    with task.aleph.applied(vector) as model, torch.no_grad():
        value = _scalar(loss(model))  # type: ignore[arg-type]
    return value if math.isfinite(value) else math.inf


def aleph_loss(task: al.Task, vector: np.ndarray) -> float:
    return _loss_of(task, task.loss, vector)


def held_out_loss(task: al.Task, vector: np.ndarray) -> float:
    return _loss_of(task, task.test_loss, vector)  # type: ignore[arg-type]


def best_index(losses: Sequence[float]) -> int:
    """The engine's rule: the lowest loss, ties going to the latest."""
    best = 0
    for index, loss in enumerate(losses):
        if loss <= losses[best]:
            best = index
    return best


# -- runners: each makes the records of one or more methods for one task and seed ---------------------------
class Runner:
    """Produces records for ``methods`` on a task, for every budget, for one seed."""

    methods: tuple[str, ...]

    def applies(self, built: Built) -> str | None:
        """None when it runs on this task, else why not (one line)."""
        return None

    def run(self, built: Built, seed: int, budgets: Sequence[int]) -> list[Record]:
        raise NotImplementedError


class EngineRunner(Runner):
    """``al.retrofit`` with one optimizer: what a user gets.

    One run per seed at the largest budget; the result at a smaller budget b is the best of the run's
    first b evaluations (ties to the latest, the engine's rule), which is what a run of budget b returns
    when the optimizer does not depend on its budget. That is checked on the first seed of every task
    this runner sees (a run of every smaller budget, compared with the prefix); where it fails, the
    optimizer is run at every budget on that task.
    """

    def __init__(self, optimizer: str, check_prefix: bool = True) -> None:
        self.optimizer, self.check_prefix = optimizer, check_prefix
        self.methods = (optimizer,)
        self.per_budget: dict[str, bool] = {}  # task → run at every budget (the prefix check failed)
        self.notes: dict[str, list[str]] = defaultdict(list)  # task → what the notes of the report say

    def _retrofit(self, built: Built, seed: int, budget: int) -> Any:
        task = built.task
        return al.retrofit(
            task.aleph,
            task.loss,
            budget=budget,
            optimizer=self.optimizer,
            seed=seed,
            test_loss=task.test_loss,
            n=task.n,
            progress=False,
        )

    def _record(
        self, built: Built, seed: int, budget: int, held_out: float, aleph: float, ms: float
    ) -> Record:
        return Record(built.spec.name, self.optimizer, budget, seed, float(held_out), float(aleph), ms)

    def run(self, built: Built, seed: int, budgets: Sequence[int]) -> list[Record]:
        name, largest = built.spec.name, max(budgets)
        if any(registry.get(self.optimizer).centroid_size(b) for b in budgets):
            # its last evaluation is a final centroid, which depends on the budget: never a prefix
            self.per_budget[name] = True
        if self.per_budget.get(name):
            records = []
            for budget in budgets:
                result = self._retrofit(built, seed, budget)
                result.restore()
                ms = result.wall_time / max(1, result.evaluations) * 1000
                records.append(self._record(built, seed, budget, result.test_best, result.best_loss, ms))
            return records
        result = self._retrofit(built, seed, largest)
        ms = result.wall_time / max(1, result.evaluations) * 1000
        records = []
        try:
            for budget in budgets:
                if budget == largest:
                    records.append(self._record(built, seed, budget, result.test_best, result.best_loss, ms))
                    continue
                best = best_evaluation(result.history[:budget])
                vector = best.vector if best is not None else built.task.aleph.identity()
                aleph = best.loss if best is not None else math.inf
                records.append(
                    self._record(built, seed, budget, held_out_loss(built.task, vector), aleph, ms)
                )
        finally:
            result.restore()
        if name not in self.per_budget and self.check_prefix:
            self.per_budget[name] = not self._prefix_holds(built, seed, budgets, result)
            if self.per_budget[name]:
                self.notes[name].append(
                    f"{self.optimizer} on {name}: a run of a smaller budget is not the prefix of the longest "
                    "run; run at every budget"
                )
                return self.run(built, seed, budgets)
        return records

    def _prefix_holds(self, built: Built, seed: int, budgets: Sequence[int], longest: Any) -> bool:
        for budget in budgets:
            if budget == max(budgets):
                continue
            result = self._retrofit(built, seed, budget)
            result.restore()
            prefix = best_evaluation(longest.history[:budget])
            same_losses = [e.loss for e in result.history] == [e.loss for e in longest.history[:budget]]
            if not same_losses or prefix is None or not np.array_equal(result.best, prefix.vector):
                return False
        return True


def _penalty(losses: Sequence[float]) -> float:
    """What the engine tells for a failed evaluation: worse than every loss seen so far."""
    finite = [loss for loss in losses if math.isfinite(loss)]
    worst = max(finite) if finite else -math.inf
    return 1.0 if worst == -math.inf else worst + abs(worst) + 1.0


class RuleRunner(Runner):
    """Drives Nevergrad as the engine does (same parametrization, seed, first candidate, failures), once
    at the largest budget; at each budget b the search is stopped after b − 1 evaluations and each rule's
    candidate is evaluated as the b-th. Also records the engine's own rule (``<optimizer>#loop``), which
    the suite compares with the engine's records."""

    def __init__(self, optimizer: str, rules: Sequence[str]) -> None:
        self.optimizer, self.rules = optimizer, tuple(rules)
        self.methods = tuple(f"{optimizer}+{rule}" for rule in rules)

    def run(self, built: Built, seed: int, budgets: Sequence[int]) -> list[Record]:
        task = built.task
        aleph = task.aleph
        parametrization = aleph.parametrization()
        parametrization.random_state = np.random.RandomState(derive_seed(seed, 0))
        reference = aleph.parametrization()  # same structure: converts standardized data, touches no state
        optimizer = registry.get(self.optimizer).make(parametrization, max(budgets), 1)
        optimizer.suggest(parametrization.value)
        vectors: list[np.ndarray] = []
        standardized: list[np.ndarray] = []
        losses: list[float] = []
        records: list[Record] = []
        start = time.perf_counter()
        rule_time = 0.0
        for index in range(max(budgets)):
            if index + 1 in budgets:
                rule_start = time.perf_counter()
                ms = (rule_start - start - rule_time) / max(1, index) * 1000  # the search's b − 1 evaluations
                records += self._rules(
                    built, seed, index + 1, ms, optimizer, reference, vectors, standardized, losses
                )
                rule_time += time.perf_counter() - rule_start
            candidate = optimizer.ask()
            vector = aleph.identity().copy() if index == 0 else aleph.to_vector(candidate.value)
            try:
                loss = aleph_loss(task, vector)
            except Exception:  # noqa: BLE001 - a failed evaluation, as the engine journals it
                loss = math.inf
            optimizer.tell(candidate, loss if math.isfinite(loss) else _penalty(losses))
            vectors.append(vector)
            standardized.append(candidate.get_standardized_data(reference=parametrization))
            losses.append(loss)
            if index + 1 in budgets:
                best = best_index(losses)
                elapsed = time.perf_counter() - start - rule_time
                records.append(
                    Record(
                        built.spec.name,
                        self.optimizer + LOOP,
                        index + 1,
                        seed,
                        held_out_loss(task, vectors[best]),
                        losses[best],
                        elapsed / (index + 1) * 1000,
                    )
                )
        return records

    def _rules(
        self,
        built: Built,
        seed: int,
        budget: int,
        ms: float,
        optimizer: Any,
        reference: ng.p.Parameter,
        vectors: list[np.ndarray],
        standardized: list[np.ndarray],
        losses: list[float],
    ) -> list[Record]:
        task = built.task
        records = []
        mean_vector = mean_loss = top_vector = top_loss = None
        for rule in self.rules:
            if rule in ("mean", "mean-guarded"):
                if mean_vector is None:
                    mean = cma_mean(optimizer)
                    if mean is None:
                        best = best_index(losses)
                        mean_vector, mean_loss = vectors[best], losses[best]
                    else:
                        mean_vector = _to_vector(task.aleph, reference, mean)
                        mean_loss = aleph_loss(task, mean_vector)
                assert mean_loss is not None
                if rule == "mean" or mean_loss < losses[0]:
                    chosen, chosen_loss = mean_vector, mean_loss
                else:
                    best = best_index(losses)
                    chosen, chosen_loss = vectors[best], losses[best]
            elif rule in ("top5", "top5-or-best", "top5-margin"):
                if top_vector is None:
                    order = sorted(range(len(losses)), key=lambda i: (losses[i], -i))[:TOP]
                    centroid = np.mean([standardized[i] for i in order], axis=0)
                    top_vector = _to_vector(task.aleph, reference, centroid)
                    top_loss = aleph_loss(task, top_vector)
                assert top_loss is not None
                best = best_index(losses)
                if rule == "top5-margin":
                    margin = registry.AUTO_CENTROID_MARGIN
                    keep = not registry.best_beats_centroid(losses[best], top_loss, margin)
                else:
                    keep = rule == "top5" or top_loss <= losses[best]
                if keep:
                    chosen, chosen_loss = top_vector, top_loss
                else:
                    chosen, chosen_loss = vectors[best], losses[best]
            else:
                raise ValueError(f"unknown rule {rule!r}")
            held_out = held_out_loss(task, chosen)
            records.append(
                Record(built.spec.name, f"{self.optimizer}+{rule}", budget, seed, held_out, chosen_loss, ms)
            )
        return records


def cma_mean(optimizer: Any) -> np.ndarray | None:
    """The mean of a Nevergrad CMA optimizer's search distribution (standardized data), read without side
    effects (the ``es`` property could restart a stopped strategy); None before the first generation is
    told, or after a restart (then the rules fall back to the best candidate)."""
    inner = optimizer.optim if hasattr(optimizer, "optim") else optimizer  # CMA picks a variant
    es = getattr(inner, "_es", None)
    if es is None or es.countiter == 0:
        return None  # no generation told yet (or the strategy stopped and restarted from the start)
    return np.asarray(es.mean, dtype=float).copy()


def _to_vector(aleph: al.Aleph, reference: ng.p.Parameter, data: np.ndarray) -> np.ndarray:
    return aleph.to_vector(reference.spawn_child().set_standardized_data(data, reference=reference).value)


def _bounds(aleph: al.Aleph) -> tuple[np.ndarray, np.ndarray]:
    """Per-scalar lower and upper bounds of the ℵ-space (±inf where none)."""
    lows, highs = [], []
    for entry in aleph:
        low = -np.inf if entry.low is None else entry.low
        high = np.inf if entry.high is None else entry.high
        lows.append(np.full(entry.size, low))
        highs.append(np.full(entry.size, high))
    return np.concatenate(lows), np.concatenate(highs)


class HandCMARunner(Runner):
    """The loop a user writes: Nevergrad's CMA on the ℵ-vector with σ = 0.3 (clipped to the ℵ-space's
    bounds when written), returning ``provide_recommendation()``. One run at the largest budget, the
    recommendation read after b evaluations for each budget b (this CMA does not depend on its budget:
    ``tests/test_bench_suite.py`` checks it against runs of each budget)."""

    methods = (HAND_CMA,)
    sigma = 0.3

    def run(self, built: Built, seed: int, budgets: Sequence[int]) -> list[Record]:
        task, records = built.task, []
        low, high = _bounds(task.aleph)
        parametrization = ng.p.Array(init=task.aleph.identity().copy())
        parametrization.random_state = np.random.RandomState(derive_seed(seed, 0))
        optimizer = ng.optimizers.ParametrizedCMA(scale=self.sigma)(parametrization, budget=max(budgets))
        seen: dict[bytes, float] = {}
        elapsed = 0.0  # the loop's own time (ask, evaluate, tell)
        for index in range(max(budgets)):
            start = time.perf_counter()
            candidate = optimizer.ask()
            vector = np.clip(np.asarray(candidate.value, dtype=float), low, high)
            loss = aleph_loss(task, vector)
            seen[vector.tobytes()] = loss
            optimizer.tell(candidate, loss if math.isfinite(loss) else 1e9)
            elapsed += time.perf_counter() - start
            if index + 1 in budgets:
                chosen = np.clip(np.asarray(optimizer.provide_recommendation().value, dtype=float), low, high)
                chosen_loss = seen.get(chosen.tobytes())
                if chosen_loss is None:
                    chosen_loss = aleph_loss(task, chosen)
                records.append(
                    Record(
                        built.spec.name,
                        HAND_CMA,
                        index + 1,
                        seed,
                        held_out_loss(task, chosen),
                        chosen_loss,
                        elapsed / (index + 1) * 1000,
                    )
                )
        return records


def optuna_available() -> bool:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


class TPERunner(Runner):
    """Optuna's TPE through Optuna's ask/tell API, once at the largest budget (TPE is not told a budget,
    so its first b trials are exactly a run of budget b). It searches the optimizer's standardized
    coordinates in [−3, 3] (±3 of afterlearner's steps; the ℵ-space's bounds and log scales apply as
    they do for Nevergrad); the trained model is its first trial."""

    methods = (TPE,)
    span = 3.0

    def applies(self, built: Built) -> str | None:
        if not optuna_available():
            return "Optuna is not installed (pip install optuna)"
        if built.dimension > TPE_MAX_DIMENSION:
            return (
                f"{built.dimension} scalars > {TPE_MAX_DIMENSION}: its time grows with scalars × trials "
                "(measured: 0.2 s per trial at 2100 scalars after 30 trials)"
            )
        return None

    def run(self, built: Built, seed: int, budgets: Sequence[int]) -> list[Record]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        task, records = built.task, []
        reference = task.aleph.parametrization()
        names = [f"x{i}" for i in range(built.dimension)]
        sampler = optuna.samplers.TPESampler(seed=derive_seed(seed, 0) % 2**32)
        study = optuna.create_study(sampler=sampler, direction="minimize")
        study.enqueue_trial(dict.fromkeys(names, 0.0))
        vectors: list[np.ndarray] = []
        losses: list[float] = []
        start = time.perf_counter()
        for index in range(max(budgets)):
            trial = study.ask()
            data = np.array([trial.suggest_float(name, -self.span, self.span) for name in names])
            vector = task.aleph.identity().copy() if index == 0 else _to_vector(task.aleph, reference, data)
            loss = aleph_loss(task, vector)
            study.tell(trial, loss if math.isfinite(loss) else 1e9)
            vectors.append(vector)
            losses.append(loss)
            if index + 1 in budgets:
                elapsed = time.perf_counter() - start
                best = best_index(losses)
                records.append(
                    Record(
                        built.spec.name,
                        TPE,
                        index + 1,
                        seed,
                        held_out_loss(task, vectors[best]),
                        losses[best],
                        elapsed / (index + 1) * 1000,
                    )
                )
        return records


def default_runners(check_prefix: bool = True) -> list[Runner]:
    runners: list[Runner] = [EngineRunner(name, check_prefix) for name in ENGINE_OPTIMIZERS]
    runners += [RuleRunner(name, rules) for name, rules in RULES.items()]
    runners += [HandCMARunner(), TPERunner()]
    return runners


# -- running, with a journal of records ----------------------------------------------------------------------
def _key(task: str, runner: Runner, seed: int) -> str:
    return f"{task}|{'/'.join(runner.methods)}|{seed}"


def run_suite(
    tasks: Sequence[SuiteTask],
    runners: Sequence[Runner],
    seeds: Sequence[int],
    budgets: Sequence[int] = BUDGETS,
    journal: Path | None = None,
    log: Callable[[str], None] = print,
) -> tuple[list[Record], dict[str, dict[str, Any]], list[str]]:
    """Run every runner on every task for every seed (resuming from ``journal``).

    Returns the records, each task's facts (dimension, trained losses, build time) and the skip lines.
    """
    done: dict[str, list[Record]] = {}
    facts: dict[str, dict[str, Any]] = {}
    if journal is not None and journal.exists():
        for line in journal.read_text().splitlines():
            entry = json.loads(line)
            if "facts" in entry:
                facts[entry["task"]] = entry["facts"]
            elif "key" in entry:
                done[entry["key"]] = [Record(**record) for record in entry["records"]]
    records: list[Record] = []
    skips: list[str] = []
    handle = journal.open("a") if journal is not None else None
    try:
        for spec in tasks:
            keys = {runner: [_key(spec.name, runner, seed) for seed in seeds] for runner in runners}
            if all(key in done for ks in keys.values() for key in ks) and spec.name in facts:
                for ks in keys.values():
                    for key in ks:
                        records += done[key]
                skips += facts[spec.name].get("notes", [])
                continue
            start = time.perf_counter()
            built = build(spec)
            task_facts = {
                "dimension": built.dimension,
                "trained_aleph": built.trained_aleph,
                "trained_held_out": built.trained_held_out,
                "build_s": time.perf_counter() - start,
                "kind": spec.kind,
                "classifier": spec.classifier,
                "notes": [],
            }
            log(f"{spec.name}: {built.dimension} ℵ-scalars, built in {task_facts['build_s']:.1f} s")
            for runner in runners:
                reason = runner.applies(built)
                if reason is not None:
                    line = f"{', '.join(runner.methods)} skipped on {spec.name}: {reason}"
                    task_facts["notes"].append(line)
                    log("  " + line)
                    continue
                runner_start = time.perf_counter()
                for seed, key in zip(seeds, keys[runner], strict=True):
                    if key in done:
                        records += done[key]
                        continue
                    made = runner.run(built, seed, budgets)
                    records += made
                    if handle is not None:
                        handle.write(json.dumps({"key": key, "records": [asdict(r) for r in made]}) + "\n")
                        handle.flush()
                for line in getattr(runner, "notes", {}).get(spec.name, []):
                    if line not in task_facts["notes"]:
                        task_facts["notes"].append(line)
                log(
                    f"  {', '.join(runner.methods)}: {time.perf_counter() - runner_start:.1f} s "
                    f"(load {os.getloadavg()[0]:.2f})"
                )
            skips += task_facts["notes"]
            facts[spec.name] = task_facts
            if handle is not None:
                handle.write(json.dumps({"task": spec.name, "facts": task_facts}) + "\n")
                handle.flush()
    finally:
        if handle is not None:
            handle.close()
    return records, facts, skips


# -- statistics -------------------------------------------------------------------------------------------
def mean_ci(values: Iterable[float]) -> tuple[float, float]:
    """The mean and the half-width of its 95% t-interval (nan with fewer than 2 values)."""
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    if array.size < 2:
        return float(array.mean()), math.nan
    half = stats.t.ppf(0.975, array.size - 1) * array.std(ddof=1) / math.sqrt(array.size)
    return float(array.mean()), float(half)


def ranks(records: Sequence[Record]) -> dict[tuple[str, str, int, int], float]:
    """Rank of each record by held-out loss among the methods on the same task, budget and seed (1 = the
    lowest loss; ties share the mean of their ranks)."""
    groups: dict[tuple[str, int, int], list[Record]] = defaultdict(list)
    for record in records:
        groups[(record.task, record.budget, record.seed)].append(record)
    out: dict[tuple[str, str, int, int], float] = {}
    for (task, budget, seed), group in groups.items():
        values = stats.rankdata([record.held_out for record in group], method="average")
        for record, value in zip(group, values, strict=True):
            out[(task, record.method, budget, seed)] = float(value)
    return out


@dataclass
class Summary:
    """Everything the tables show, computed from the records."""

    methods: list[str]
    tasks: list[str]
    budgets: list[int]
    seeds: list[int]
    rank: dict[tuple[str, str, int, int], float]
    by: dict[tuple[str, str, int], list[Record]]  # (task, method, budget) → records over seeds

    def per_seed(
        self, method: str, tasks: Sequence[str], budgets: Sequence[int], value: Callable
    ) -> list[float]:
        """For each seed, the mean over ``tasks`` and ``budgets`` of ``value(record)`` (cells present)."""
        out = []
        for seed in self.seeds:
            cells = [
                value(record)
                for task in tasks
                for budget in budgets
                for record in self.by.get((task, method, budget), [])
                if record.seed == seed
            ]
            if cells:
                out.append(float(np.mean(cells)))
        return out

    def rank_of(self, record: Record) -> float:
        return self.rank[(record.task, record.method, record.budget, record.seed)]

    def mean_rank(
        self, method: str, tasks: Sequence[str] | None = None, budgets: Sequence[int] | None = None
    ):
        return mean_ci(self.per_seed(method, tasks or self.tasks, budgets or self.budgets, self.rank_of))


def summarize(records: Sequence[Record]) -> Summary:
    reported = [record for record in records if not record.method.endswith(LOOP)]
    by: dict[tuple[str, str, int], list[Record]] = defaultdict(list)
    for record in reported:
        by[(record.task, record.method, record.budget)].append(record)
    methods = list(dict.fromkeys(record.method for record in reported))
    tasks = list(dict.fromkeys(record.task for record in reported))
    budgets = sorted({record.budget for record in reported})
    seeds = sorted({record.seed for record in reported})
    return Summary(methods, tasks, budgets, seeds, ranks(reported), by)


def twin_check(records: Sequence[Record]) -> tuple[int, int, int, list[Record]]:
    """Fold the :data:`ENGINE_TWINS` records into the engine's method.

    Where the engine ran the cell, its record stays and the rule's is compared with it (``same`` of
    ``total`` identical in ℵ- and held-out loss); where it did not (the engine's rule arrived after
    the rule's records were made), the rule's record stands for it (``taken``), relabelled. Returns
    (same, total, taken, records without the twins).
    """
    engine = {(r.task, r.method, r.budget, r.seed): r for r in records}
    same = total = taken = 0
    kept = [r for r in records if r.method not in ENGINE_TWINS]
    for record in records:
        if record.method in ENGINE_TWINS:
            method = ENGINE_TWINS[record.method]
            twin = engine.get((record.task, method, record.budget, record.seed))
            if twin is not None:
                total += 1
                same += twin.aleph == record.aleph and twin.held_out == record.held_out
            else:
                taken += 1
                kept.append(dataclasses.replace(record, method=method))
    return same, total, taken, kept


def loop_check(records: Sequence[Record]) -> tuple[int, int]:
    """How many bench-loop best-candidate records equal the engine's (ℵ-loss and held-out loss)."""
    engine = {(r.task, r.method, r.budget, r.seed): r for r in records if not r.method.endswith(LOOP)}
    same = total = 0
    for record in records:
        if record.method.endswith(LOOP):
            twin = engine.get((record.task, record.method[: -len(LOOP)], record.budget, record.seed))
            if twin is not None:
                total += 1
                same += twin.aleph == record.aleph and twin.held_out == record.held_out
    return same, total


def paired_difference(
    summary: Summary, a: str, b: str, task: str, budgets: Sequence[int], value: Callable[[Record], float]
) -> tuple[float, float]:
    """Mean over seeds of (a − b), each seed's value averaged over ``budgets``; with its 95% half-width."""
    diffs = []
    for seed in summary.seeds:
        pairs = []
        for budget in budgets:
            ra = [r for r in summary.by.get((task, a, budget), []) if r.seed == seed]
            rb = [r for r in summary.by.get((task, b, budget), []) if r.seed == seed]
            if ra and rb:
                pairs.append(value(ra[0]) - value(rb[0]))
        if pairs:
            diffs.append(float(np.mean(pairs)))
    return mean_ci(diffs)


def verdict(mean: float, half: float) -> str:
    """ "holds" only when the 95% interval excludes zero."""
    if math.isnan(half):
        return "n/a"
    if mean + half < 0:
        return "lower (holds)"
    if mean - half > 0:
        return "higher (holds)"
    return "not significant"


# -- tables -----------------------------------------------------------------------------------------------
def _pm(mean: float, half: float, digits: int = 4) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def _bound_class(method: str) -> str:
    if method == TPE:
        return "values"
    if method == HAND_CMA:
        return "ranking"
    name = method.split("+")[0]
    outcome = registry.get(name).outcome_class
    return outcome if outcome is not None else "values"


def _median_ms(summary: Summary, method: str, tasks: Sequence[str]) -> float:
    values = [
        r.ms_per_eval for t in tasks for b in summary.budgets for r in summary.by.get((t, method, b), [])
    ]
    return float(np.median(values)) if values else math.nan


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def overall_table(summary: Summary, facts: dict[str, dict[str, Any]], default: str) -> tuple[list[str], list]:
    """Rows per method, best mean rank first: mean rank (± over seeds), per budget, held-out and ℵ-loss
    relative to the trained model (mean over tasks), ms/eval (median), class for the bound."""
    header = ["method", "mean rank", *(f"rank b={b}" for b in summary.budgets)]
    header += ["held-out / trained", "ℵ-loss / trained", "ms/eval", "bound class"]
    rows = []
    for method in summary.methods:
        mean, half = summary.mean_rank(method)
        per_budget = [summary.mean_rank(method, budgets=[b])[0] for b in summary.budgets]

        def relative(key: str, field: str) -> Callable[[Record], float]:
            return lambda r: getattr(r, field) / facts[r.task][key] if facts[r.task][key] else math.nan

        held = mean_ci(
            summary.per_seed(method, summary.tasks, summary.budgets, relative("trained_held_out", "held_out"))
        )
        aleph = mean_ci(
            summary.per_seed(method, summary.tasks, summary.budgets, relative("trained_aleph", "aleph"))
        )
        name = f"**{method}** (default)" if method == default else method
        rows.append(
            (
                mean,
                [
                    name,
                    _pm(mean, half, 2),
                    *(f"{value:.2f}" for value in per_budget),
                    _pm(*held, 3),
                    f"{aleph[0]:.3f}",
                    f"{_median_ms(summary, method, summary.tasks):.2f}",
                    _bound_class(method),
                ],
            )
        )
    rows.sort(key=lambda row: row[0])
    return header, [row for _, row in rows]


def task_table(summary: Summary, task: str, facts: dict[str, Any], default: str) -> tuple[list[str], list]:
    header = ["method", *(f"held-out b={b}" for b in summary.budgets), "mean rank"]
    header += [f"ℵ-loss b={summary.budgets[-1]}", "ms/eval"]
    rows = []
    for method in summary.methods:
        if not any(summary.by.get((task, method, b)) for b in summary.budgets):
            continue
        held = [mean_ci(r.held_out for r in summary.by.get((task, method, b), [])) for b in summary.budgets]
        rank = summary.mean_rank(method, tasks=[task])
        aleph = mean_ci(r.aleph for r in summary.by.get((task, method, summary.budgets[-1]), []))
        name = f"**{method}** (default)" if method == default else method
        rows.append(
            (
                rank[0],
                [
                    name,
                    *(_pm(*h) for h in held),
                    _pm(*rank, 2),
                    f"{aleph[0]:.4f}",
                    f"{_median_ms(summary, method, [task]):.2f}",
                ],
            )
        )
    rows.sort(key=lambda row: row[0])
    trained = ["(trained model)", *(f"{facts['trained_held_out']:.4f}" for _ in summary.budgets), ""]
    trained += [f"{facts['trained_aleph']:.4f}", ""]
    return header, [trained] + [row for _, row in rows]


def versus_table(summary: Summary, facts: dict[str, dict[str, Any]], default: str, peer: str):
    """Per classifier task: mean held-out loss of the default and of ``peer`` over all budgets, and
    their paired difference (default − peer) with its 95% interval, per budget and pooled."""
    header = ["classifier task", f"{default}", peer, "difference (pooled)", "verdict"]
    header += [f"difference b={b}" for b in summary.budgets]
    rows = []
    for task in summary.tasks:
        if not facts[task]["classifier"]:
            continue
        ours = mean_ci(summary.per_seed(default, [task], summary.budgets, lambda r: r.held_out))
        theirs = mean_ci(summary.per_seed(peer, [task], summary.budgets, lambda r: r.held_out))
        pooled = paired_difference(summary, default, peer, task, summary.budgets, lambda r: r.held_out)
        per_budget = [
            paired_difference(summary, default, peer, task, [b], lambda r: r.held_out)
            for b in summary.budgets
        ]
        rows.append(
            [
                task,
                _pm(*ours),
                _pm(*theirs),
                _pm(*pooled),
                verdict(*pooled),
                *(_pm(*d) for d in per_budget),
            ]
        )
    return header, rows


def held_out(record: Record) -> float:
    return record.held_out


def above_on_suite(summary: Summary, facts: dict[str, dict[str, Any]], default: str) -> list[str]:
    """Classifier tasks where the default's mean held-out loss is above the hand loop's on ``summary``."""
    out = []
    for task in (t for t in summary.tasks if facts[t]["classifier"]):
        diff = paired_difference(summary, default, HAND_CMA, task, summary.budgets, held_out)
        if diff[0] > 0:
            out.append(f"{task} ({_pm(*diff)})")
    return out


def classifier_check_lines(
    summary: Summary, check: Summary, facts: dict[str, dict[str, Any]], default: str
) -> list[str]:
    """The report's section on the classifier check: why it was run, and its table."""
    above = ", ".join(above_on_suite(summary, facts, default)) or "none"
    return [
        f"### The classifier check: {default} against the hand CMA loop over {len(check.seeds)} seeds",
        "",
        "Twenty seeds leave some of the differences above within their intervals, so "
        f"`python bench/suite.py --classifier-check` ran {default} and the hand loop on the classifier "
        f"tasks for seeds {FULL_SEEDS} to {max(check.seeds)} as well (the same tasks and runners; its "
        f"journal is `bench/results/{CHECK_JOURNAL.name}`). The table is over all {len(check.seeds)} "
        f"seeds; the target above is judged on it. On the suite's {len(summary.seeds)} seeds alone (the "
        f"table before this one), the default's mean was above the hand loop's on {above}. The check was "
        f"added because of those; its seeds ({FULL_SEEDS} to {CHECK_SEEDS - 1}) were fixed before it ran, "
        "it ran once, and every one of them is in the table.",
        "",
        markdown_table(*versus_table(check, facts, default, HAND_CMA)),
        "",
    ]


def classifier_check_summary(
    records: Sequence[Record], check_records: Sequence[Record], facts: dict[str, dict[str, Any]], default: str
) -> Summary:
    """The default and the hand CMA loop on the classifier tasks, over the suite's seeds and the check's."""
    wanted = {default, HAND_CMA}
    classifiers = {task for task, fact in facts.items() if fact["classifier"]}
    own = {(r.task, r.method, r.budget, r.seed) for r in records}
    added = [r for r in check_records if (r.task, r.method, r.budget, r.seed) not in own]
    return summarize([r for r in (*records, *added) if r.method in wanted and r.task in classifiers])


def rank_difference_table(summary: Summary, default: str) -> tuple[list[str], list]:
    """Default's mean rank minus each other method's, paired over seeds (negative: the default is better)."""
    header = ["method", "rank difference (default − method)", "verdict"]
    rows = []
    for method in summary.methods:
        if method == default:
            continue
        ours = summary.per_seed(default, summary.tasks, summary.budgets, summary.rank_of)
        theirs = summary.per_seed(method, summary.tasks, summary.budgets, summary.rank_of)
        if len(ours) != len(theirs):
            continue
        diff = mean_ci(np.subtract(ours, theirs))
        rows.append((diff[0], [method, _pm(*diff, 2), verdict(*diff)]))
    rows.sort(key=lambda row: row[0])
    return header, [row for _, row in rows]


def rank_grid(
    summary: Summary, facts: dict[str, dict[str, Any]], methods: Sequence[str]
) -> tuple[list[str], list]:
    """Mean rank by dimension class and budget, for choosing by dimension and budget."""
    classes = {
        "d ≤ 30": lambda d: d <= 30,
        "30 < d ≤ 1000": lambda d: 30 < d <= 1000,
        "d > 1000": lambda d: d > 1000,
    }
    header = ["method", *(f"{label}, b={b}" for label in classes for b in summary.budgets)]
    rows = []
    for method in methods:
        row = [method]
        for test in classes.values():
            tasks = [t for t in summary.tasks if test(facts[t]["dimension"])]
            for b in summary.budgets:
                row.append(f"{summary.mean_rank(method, tasks=tasks, budgets=[b])[0]:.2f}" if tasks else "–")
        rows.append(row)
    return header, rows


def target_lines(
    summary: Summary, facts: dict[str, dict[str, Any]], default: str, check: Summary | None = None
) -> list[str]:
    """The issue's target, checked on these records: the default's overall mean rank is the best of all
    methods, and on every classifier task its mean held-out loss is at most the hand CMA loop's (on
    ``check``, the classifier check's records, when there are some)."""
    if default not in summary.methods:
        return [f"* The default ({default}) was not run."]
    order = sorted(summary.methods, key=lambda m: summary.mean_rank(m)[0])
    ours = summary.mean_rank(default)
    lines = []
    if order[0] == default:
        runner_up = order[1] if len(order) > 1 else None
        tail = ""
        if runner_up is not None:
            diff = mean_ci(
                np.subtract(
                    summary.per_seed(default, summary.tasks, summary.budgets, summary.rank_of),
                    summary.per_seed(runner_up, summary.tasks, summary.budgets, summary.rank_of),
                )
            )
            tail = f"; against the next, {runner_up}: {_pm(*diff, 2)} ({verdict(*diff)})"
        lines.append(
            f"* Mean rank: **met**. {default} has the best overall mean rank, {_pm(*ours, 2)}{tail}."
        )
    else:
        better = [f"{m} ({summary.mean_rank(m)[0]:.2f})" for m in order[: order.index(default)]]
        lines.append(
            f"* Mean rank: **not met**. {default} ranks {_pm(*ours, 2)}, behind {', '.join(better)}."
        )
    engine = [m for m in order if "+" not in m and m not in (HAND_CMA, TPE)]
    if engine and engine[0] == default and len(engine) > 1:
        diff = mean_ci(
            np.subtract(
                summary.per_seed(default, summary.tasks, summary.budgets, summary.rank_of),
                summary.per_seed(engine[1], summary.tasks, summary.budgets, summary.rank_of),
            )
        )
        lines.append(
            f"* Among the optimizers the engine runs (no bench-loop rule), {default} ranks best; against the "
            f"next, {engine[1]} ({summary.mean_rank(engine[1])[0]:.2f}): {_pm(*diff, 2)} ({verdict(*diff)})."
        )
    judged = check if check is not None else summary
    lines += classifier_target_lines(judged, facts, default, from_check=check is not None)
    return lines


def classifier_target_lines(
    judged: Summary, facts: dict[str, dict[str, Any]], default: str, from_check: bool
) -> list[str]:
    """The classifier clause of the target, judged on ``judged`` (the suite's records, or the classifier
    check's): on every classifier task the default's mean held-out loss is at most the hand CMA loop's;
    and the single budgets where the hand loop is lower with a difference that holds."""
    lines: list[str] = []
    worse, ties = [], []
    classifiers = [t for t in judged.tasks if facts[t]["classifier"]]
    seeds_note = f" ({len(judged.seeds)} seeds, the classifier check)" if from_check else ""
    for task in classifiers:
        a = np.mean([r.held_out for b in judged.budgets for r in judged.by.get((task, default, b), [])])
        h = np.mean([r.held_out for b in judged.budgets for r in judged.by.get((task, HAND_CMA, b), [])])
        diff = paired_difference(judged, default, HAND_CMA, task, judged.budgets, held_out)
        if a > h:
            worse.append(f"{task} ({a:.4f} against {h:.4f}; difference {_pm(*diff)}, {verdict(*diff)})")
        elif verdict(*diff) != "lower (holds)":
            ties.append(f"{task} ({_pm(*diff)})")
    worse_at = [
        f"{task} at b={budget} ({_pm(*diff)})"
        for task in classifiers
        for budget in judged.budgets
        if verdict(*(diff := paired_difference(judged, default, HAND_CMA, task, [budget], held_out)))
        == "higher (holds)"
    ]
    if worse:
        lines.append(
            f"* Classifier tasks against the hand CMA loop{seeds_note}: **not met** on "
            f"{len(worse)} of {len(classifiers)}: " + "; ".join(worse) + "."
        )
    else:
        lines.append(
            f"* Classifier tasks against the hand CMA loop{seeds_note}: **met**: on all "
            f"{len(classifiers)} the default's mean held-out loss is at most the hand loop's"
            + (
                f"; lower with a difference that holds on {len(classifiers) - len(ties)}, and within the "
                f"interval of no difference on {len(ties)}: " + "; ".join(ties) + "."
                if ties
                else ", lower with a difference that holds on all."
            )
        )
    if worse_at:
        lines.append(
            "* At a single budget, the hand loop is lower with a difference that holds on: "
            + "; ".join(worse_at)
            + " (the target is on the mean over the budgets)."
        )
    return lines


#: Margins the out-of-sample check of ``auto``'s margin tries (fractions of the centroid's ℵ-loss).
MARGINS = (0.0, 0.02, 0.05, 0.10, 0.15, 0.20, 0.30)


def margin_records(records: Sequence[Record], margin: float, method: str = "auto") -> list[Record]:
    """``auto``'s records had it used ``margin``, derived exactly from two rules the bench loop ran on
    the same searches: ``auto+top5`` (the centroid) and ``auto+top5-or-best`` (the best candidate of the
    first b − 1 where its ℵ-loss is below the centroid's). A margin only ever keeps the centroid where
    ``top5-or-best`` chose the best, so every choice it makes is one of those two records."""
    by = {(r.task, r.method, r.budget, r.seed): r for r in records}
    out = []
    for centroid in (r for r in records if r.method == "auto+top5"):
        other = by.get((centroid.task, "auto+top5-or-best", centroid.budget, centroid.seed))
        if other is None:
            continue
        beats = other.aleph < centroid.aleph and registry.best_beats_centroid(
            other.aleph, centroid.aleph, margin
        )
        out.append(dataclasses.replace(other if beats else centroid, method=method))
    return out


def margin_cross_validation(records: Sequence[Record]) -> list[list[str]]:
    """Is ``auto``'s margin chosen out of sample? For each half of the seeds: the margin of
    :data:`MARGINS` with the best mean rank on that half, and on the other half its mean rank against
    margin 0 (the centroid when no worse) and ``auto+top5`` (always the centroid)."""
    others = [r for r in records if r.method != "auto"]
    seeds = sorted({r.seed for r in records})
    halves = {"even seeds": [s for s in seeds if s % 2 == 0], "odd seeds": [s for s in seeds if s % 2 == 1]}

    def rank(margin: float, chosen_seeds: Sequence[int], method: str = "auto") -> float:
        kept = [r for r in others + margin_records(records, margin) if r.seed in chosen_seeds]
        return summarize(kept).mean_rank(method)[0]

    rows = []
    for name, half in halves.items():
        rest = [s for s in seeds if s not in half]
        chosen = min(MARGINS, key=lambda m: rank(m, half))
        rows.append(
            [
                name,
                f"{chosen:.2f}",
                f"{rank(chosen, rest):.2f}",
                f"{rank(0.0, rest):.2f}",
                f"{rank(chosen, rest, 'auto+top5'):.2f}",
            ]
        )
    return rows


def render(
    records: Sequence[Record],
    facts: dict[str, dict[str, Any]],
    skips: Sequence[str],
    default: str,
    context: dict[str, Any],
    check_records: Sequence[Record] = (),
) -> str:
    """The whole report, in Markdown (what is printed and what docs/optimizers.md holds).

    ``check_records``: the classifier check's (``--classifier-check``), added to the suite's own
    records of the default and the hand CMA loop on the classifier tasks for the classifier target.
    """
    twins_same, twins_total, twins_taken, records = twin_check(records)
    summary = summarize(records)
    same, total = loop_check(records)
    check = classifier_check_summary(records, check_records, facts, default) if check_records else None
    out = [
        f"## The target, checked (default: {default})",
        "",
        *target_lines(summary, facts, default, check),
        "",
        "## Overall",
        "",
        f"Mean rank by held-out loss among the {len(summary.methods)} methods on each task, budget and seed "
        f"(1 = best), averaged over {len(summary.tasks)} tasks, "
        f"budgets {', '.join(map(str, summary.budgets))} "
        f"and {len(summary.seeds)} seeds; ± is the half-width of the 95% interval over seeds. Held-out and "
        "ℵ-loss are relative to the trained model's (mean over tasks; below 1 is a gain). ms/eval: median "
        f"over runs, load average {context['load_before']:.2f} → {context['load_after']:.2f} on "
        f"{context['cpus']} cores. Bound class: see `afterlearner/optimizers.py` (values: no bound).",
        "",
        markdown_table(*overall_table(summary, facts, default)),
        "",
        f"### {default} against each method (paired over seeds; negative: {default} ranks better)",
        "",
        markdown_table(*rank_difference_table(summary, default)),
        "",
        "### auto's margin, out of sample",
        "",
        "`auto` returns its final centroid unless the best candidate beats it by more than a margin (10% of "
        "the centroid's ℵ-loss), chosen on this suite. Chosen on half of the seeds instead, among "
        f"{', '.join(f'{m:g}' for m in MARGINS)}, and judged on the other half (mean rank among all "
        "methods; `auto` at each margin derived exactly from the `auto+top5` and `auto+top5-or-best` "
        "records):",
        "",
        markdown_table(
            ["chosen on", "margin chosen", "other half: auto at it", "auto at margin 0", "auto+top5"],
            margin_cross_validation(records),
        ),
        "",
        f"### Classifier tasks: {default} against the hand-written CMA loop (σ = 0.3)",
        "",
        "Mean held-out loss over all budgets and seeds; the difference is the default's minus the hand "
        "loop's, paired by seed (negative: the default is better); a difference holds only when its 95% "
        "interval excludes zero.",
        "",
        markdown_table(*versus_table(summary, facts, default, HAND_CMA)),
        "",
        *(classifier_check_lines(summary, check, facts, default) if check is not None else []),
        "### Mean rank by dimension and budget",
        "",
        markdown_table(*rank_grid(summary, facts, summary.methods)),
        "",
        "## Per task",
        "",
        f"Held-out loss (mean ± 95% half-width over {len(summary.seeds)} seeds) at each budget, mean rank "
        "over budgets and seeds, ℵ-loss of the returned candidate at the largest budget, ms per evaluation "
        "(median).",
    ]
    for task in summary.tasks:
        f = facts[task]
        out += [
            "",
            f"### {task}",
            "",
            f"{f['kind']}; {f['dimension']} ℵ-scalars, built in {f['build_s']:.1f} s.",
            "",
            markdown_table(*task_table(summary, task, f, default)),
        ]
    out += ["", "## Notes", ""]
    out += [f"* {line}" for line in skips] or ["* nothing was skipped"]
    out += [
        f"* The bench loop's best-candidate rule reproduced the engine on {same} of {total} "
        "(task, optimizer, budget, seed) cells (ℵ-loss and held-out loss identical): the rules are "
        "measured on exactly the engine's searches.",
        "* The engine ran once per seed at the largest budget; a smaller budget's result is the best of "
        "its first evaluations, checked against runs of that budget on the first seed of every task "
        "(a failed check would be noted above and the optimizer run at every budget; `auto`, whose last "
        "evaluation depends on the budget, runs at every budget).",
        "* The engine's `auto` ends each run with the centroid of its 5 best candidates and returns it "
        "unless the best candidate beats it by more than 10% of its ℵ-loss: the bench loop's "
        f"`auto+top5-margin` rule. Where the engine itself ran (`auto` at every budget), the rule gave "
        f"the same ℵ-loss and held-out loss in {twins_same} of {twins_total} (task, budget, seed) cells"
        + (
            f"; in the other {twins_taken} cells, `auto`'s rows are the rule's records (made before the "
            "engine had the rule; the same searches and the same returned point, as those identical cells "
            "and `tests/core/test_final_centroid.py` show; ms/eval there is the bench loop's)."
            if twins_taken
            else "."
        ),
    ]
    return "\n".join(out)


def header_text(args: argparse.Namespace, context: dict[str, Any]) -> str:
    rendered = (
        " This page was re-rendered from that run's journal by `python bench/suite.py --report-only`."
        if args.report_only
        else ""
    )
    return "\n".join(
        [
            "# Choosing the default optimizer: the suite",
            "",
            "Made by",
            "",
            "```",
            context["command"],
            "```",
            "",
            *(
                [f"and later, into the same journal: {'; '.join(context['later'])}.", ""]
                if context.get("later")
                else []
            ),
            f"on {context['machine']} ({context['cpus']} cores, shared with other jobs), nevergrad "
            f"{ng.__version__}, optuna {context['optuna']}, torch {torch.__version__}; wall time "
            f"{context['wall_s'] / 60:.1f} min.{rendered} Every method retrofits every task at every budget "
            "for every seed; see `bench/suite.py` for the methods and `bench/suite_tasks.py` for the tasks.",
            "",
            f"The default is `{registry.DEFAULT_OPTIMIZER}`. `auto` (`afterlearner.optimizers.auto`) picks "
            "by the number d of ℵ-scalars; on this suite's tasks: "
            + "; ".join(f"d = {d}: {registry.auto(d, max(BUDGETS))}" for d in context["dimensions"])
            + ".",
            "",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    warnings.filterwarnings("ignore", category=UserWarning, module="cma")  # pycma's TPA chatter in 2100 dims
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_SEEDS} seeds, no prefix check; prints, writes no docs"
    )
    parser.add_argument("--seeds", type=int, default=None, help=f"number of seeds (default {FULL_SEEDS})")
    parser.add_argument("--tasks", default=None, help="comma-separated task names (default: all)")
    parser.add_argument("--journal", type=Path, default=None, help="JSONL file of records (resumes from it)")
    parser.add_argument("--docs", type=Path, default=None, help="write the report here")
    parser.add_argument("--report-only", action="store_true", help="only report the journal's records")
    parser.add_argument(
        "--classifier-check",
        action="store_true",
        help=f"run the default and the hand CMA loop on the classifier tasks for seeds {FULL_SEEDS} to "
        f"{CHECK_SEEDS - 1} (journal {CHECK_JOURNAL.name}), then re-render the report",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = list(range(args.seeds if args.seeds is not None else QUICK_SEEDS if args.quick else FULL_SEEDS))
    tasks = TASKS if args.tasks is None else [t for t in TASKS if t.name in args.tasks.split(",")]
    journal = args.journal
    if journal is None and not args.quick:
        journal = ROOT / "bench" / "results" / "suite.jsonl"
    if journal is not None:
        journal.parent.mkdir(parents=True, exist_ok=True)
        restore_journal(journal)
    restore_journal(CHECK_JOURNAL)
    docs = args.docs if args.docs is not None else (None if args.quick else ROOT / "docs" / "optimizers.md")
    if not optuna_available():
        print("Optuna is not installed: TPE (Optuna) is skipped (pip install optuna)")
    context: dict[str, Any] = {
        "command": "python bench/suite.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "cpus": os.cpu_count(),
        "machine": platform.machine() + " " + platform.system(),
        "load_before": os.getloadavg()[0],
        "optuna": __import__("optuna").__version__ if optuna_available() else "not installed",
    }
    start = time.perf_counter()
    if args.classifier_check:
        classifiers = [t for t in tasks if t.classifier]
        check_runners: list[Runner] = [EngineRunner(registry.DEFAULT_OPTIMIZER), HandCMARunner()]
        CHECK_JOURNAL.parent.mkdir(parents=True, exist_ok=True)
        run_suite(classifiers, check_runners, range(FULL_SEEDS, CHECK_SEEDS), BUDGETS, CHECK_JOURNAL)
        write_snapshot(CHECK_JOURNAL)
        print(f"classifier check: {time.perf_counter() - start:.0f} s; re-rendering from the journals")
        args.report_only = True
    if args.report_only:
        if journal is None or not journal.exists():
            raise SystemExit("--report-only needs the journal of an earlier run (--journal FILE)")
        records, facts, skips = read_journal(journal)
        runs = journal_runs(journal)
        if runs:  # the figures of the runs that made the records, not of this report
            context.update(
                command=runs[0]["command"],
                later=[run["command"] for run in runs[1:]],
                load_before=runs[0]["load_before"],
                load_after=runs[-1]["load_after"],
                wall_s=sum(run["wall_s"] for run in runs),
            )
    else:
        records, facts, skips = run_suite(tasks, default_runners(not args.quick), seeds, BUDGETS, journal)
        context["wall_s"] = time.perf_counter() - start
        context["load_after"] = os.getloadavg()[0]
        if journal is not None:
            run = {key: context[key] for key in ("command", "load_before", "load_after", "wall_s")}
            with journal.open("a") as handle:
                handle.write(json.dumps({"run": run}) + "\n")
            write_snapshot(journal)
    context.setdefault("wall_s", time.perf_counter() - start)
    context.setdefault("load_after", os.getloadavg()[0])
    context["dimensions"] = sorted({facts[t]["dimension"] for t in facts})
    check_records = read_journal(CHECK_JOURNAL)[0] if CHECK_JOURNAL.exists() and journal is not None else []
    report = render(records, facts, skips, registry.DEFAULT_OPTIMIZER, context, check_records)
    print()
    print(report)
    print(
        f"\nwall time {context['wall_s']:.0f} s; load average {context['load_before']:.2f} → "
        f"{context['load_after']:.2f} ({context['cpus']} cores)"
    )
    if docs is not None:
        docs.write_text(header_text(args, context) + report + "\n")
        print(f"wrote {docs}")


def snapshot_of(journal: Path) -> Path:
    """The journal's gzipped copy beside it (``NAME.jsonl.gz``): what the repository keeps of it."""
    return journal.with_name(journal.name + ".gz")


def restore_journal(journal: Path) -> None:
    """A fresh checkout has only the snapshot: unpack it into the journal, which runs append to."""
    snapshot = snapshot_of(journal)
    if not journal.exists() and snapshot.exists():
        journal.write_bytes(gzip.decompress(snapshot.read_bytes()))


def write_snapshot(journal: Path) -> None:
    """Gzip the journal into its snapshot (the same bytes for the same journal: no name, no time)."""
    snapshot_of(journal).write_bytes(gzip.compress(journal.read_bytes(), compresslevel=9, mtime=0))


def journal_runs(journal: Path) -> list[dict[str, Any]]:
    """The runs that wrote the journal: command, load average before and after, wall time."""
    return [entry["run"] for entry in map(json.loads, journal.read_text().splitlines()) if "run" in entry]


def read_journal(journal: Path) -> tuple[list[Record], dict[str, dict[str, Any]], list[str]]:
    records: list[Record] = []
    facts: dict[str, dict[str, Any]] = {}
    for line in journal.read_text().splitlines():
        entry = json.loads(line)
        if "facts" in entry:
            facts[entry["task"]] = entry["facts"]
        elif "records" in entry:
            records += [Record(**record) for record in entry["records"]]
    records = [r for r in records if r.task in facts]
    skips = [line for f in facts.values() for line in f.get("notes", [])]
    return records, facts, skips


if __name__ == "__main__":
    main()
