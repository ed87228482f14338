"""Every evaluator against the sequential one, on the same candidate vectors.

The contract of :class:`afterlearner.evaluators.Evaluator`: ``evaluate(vectors)`` yields each position
once, with the outcome of the candidate at that position, in whatever order the evaluations complete;
a loss that raises or is not finite is a failed outcome carrying the error's text; ``close()`` leaves
nothing running. Every evaluator must give what :class:`SequentialEvaluator` gives:

* the same losses **exactly**, bit for bit: they run the same float operations on the same inputs
  (the prefix cache replays the outputs the full pass computes; worker processes build the same
  seeded model), except
* the ``vmap`` path of :class:`BatchedEvaluator`, held to float rounding (relative 1e-5 on float32),
  which is all the library promises for it: the population's forward pass runs batched kernels,
  which may accumulate sums of products in another order than one candidate's matrix product. (On
  this task and this machine's CPU it is in fact bit-identical too.)

The task (``tests/tasks/conformance_task.py``) has a continuous metric, so a difference in the last
bit of an output would show, and candidates chosen to raise, to give NaN and to complete late.
"""

from __future__ import annotations

import multiprocessing
import runpy
import time
from collections.abc import Callable

import numpy as np
import pytest
from paths import TASKS

from afterlearner.evaluators import Evaluator, Outcome, SequentialEvaluator, default_evaluator
from afterlearner.evaluators.batched import BatchedEvaluator
from afterlearner.evaluators.cache import CachedEvaluator, PrefixCache
from afterlearner.task import Task, load_task

SPEC = f"{TASKS / 'conformance_task.py'}:task"
_TASK_FILE = runpy.run_path(str(TASKS / "conformance_task.py"))  # its constants; workers load it by path
RAISE, NAN, SLOW, REFUSED = (_TASK_FILE[name] for name in ("RAISE", "NAN", "SLOW", "REFUSED"))

#: Positions of the candidates that fail or complete late, in ``candidates()``.
SLOW_AT, RAISE_AT, NAN_AT = 0, 3, 6
#: A second batch: some of the same candidates in another order (failures included, the slow one not).
SHUFFLED = [6, 3, 9, 1, 4]


def candidates(task: Task) -> list[np.ndarray]:
    """Ten candidates: the trained model (made slow), nine random neighbours, two of them failing."""
    rng = np.random.default_rng(0)
    identity = task.aleph.identity()
    vectors = [identity.copy()] + [identity + rng.normal(0, 0.3, len(identity)) for _ in range(9)]
    vectors[SLOW_AT][1] = SLOW  # fc.bias[1]: the metric sleeps first
    vectors[RAISE_AT][0] = RAISE  # fc.bias[0]: the metric raises
    vectors[NAN_AT][0] = NAN  # fc.bias[0]: the metric returns NaN
    return vectors


def _processes(task: Task) -> Evaluator:
    from afterlearner.evaluators.processes import ProcessEvaluator

    evaluator = ProcessEvaluator(SPEC, processes=2, aleph=task.aleph)
    deadline = time.monotonic() + 120
    while not all(worker.ready for worker in evaluator.workers) and time.monotonic() < deadline:
        list(evaluator.evaluate(candidates(task)[1:2]))  # wait for both workers, so both take work
    assert all(worker.ready for worker in evaluator.workers)
    return evaluator


def _dask(task: Task) -> Evaluator:
    from afterlearner.evaluators.dask import DaskEvaluator

    evaluator = DaskEvaluator(SPEC, None, aleph=task.aleph, n_workers=2)
    assert evaluator.slots() == 2
    list(evaluator.evaluate(candidates(task)[1:5]))  # two calls per worker: both build the task
    return evaluator


def _default(task: Task, workers: int) -> Evaluator:
    evaluator = default_evaluator(task.aleph, task.loss, workers)
    assert isinstance(evaluator, BatchedEvaluator) and evaluator.cache is not None
    return evaluator


def _cache(task: Task) -> PrefixCache:
    cache = PrefixCache(task.aleph, task.loss)
    assert cache.boundaries == ["features"]  # the cached variants do skip the frozen features
    return cache


#: name → (how to build it, whether its losses are exact, whether it evaluates side by side).
EVALUATORS: dict[str, tuple[Callable[[Task], Evaluator], bool, bool]] = {
    "cached": (lambda task: CachedEvaluator(task.aleph, task.loss, cache=_cache(task)), True, False),
    "batched-loop": (lambda task: BatchedEvaluator(task.aleph, task.loss, mode="loop"), True, False),
    "batched-loop-cached": (
        lambda task: BatchedEvaluator(task.aleph, task.loss, cache=_cache(task), mode="loop"),
        True,
        False,
    ),
    "batched-vmap": (lambda task: BatchedEvaluator(task.aleph, task.loss, mode="vmap"), False, False),
    "batched-vmap-cached": (
        lambda task: BatchedEvaluator(task.aleph, task.loss, cache=_cache(task), mode="vmap"),
        False,
        False,
    ),
    # what retrofit picks for a DatasetLoss and λ = 4: prefix cache, vmap or a loop by measurement
    "default-population": (lambda task: _default(task, workers=4), False, False),
    "processes": (_processes, True, True),
    "dask": (_dask, True, True),
}
SLOW_EVALUATORS = {"processes", "dask"}  # worker start-up: many seconds on a loaded 2-core machine


@pytest.fixture(scope="module")
def reference() -> list[Outcome]:
    """The sequential evaluator's outcomes, in position order."""
    task = load_task(SPEC)
    outcomes = list(SequentialEvaluator(task.aleph, task.loss).evaluate(candidates(task)))
    assert [position for position, _ in outcomes] == list(range(len(outcomes)))
    return [outcome for _, outcome in outcomes]


def test_the_reference_has_what_the_suite_checks(reference) -> None:
    """The candidates do fail where planned, and the others' losses differ (so a mix-up would show)."""
    failed = [k for k, outcome in enumerate(reference) if not outcome.ok]
    assert failed == [RAISE_AT, NAN_AT]
    assert reference[RAISE_AT].error == f"ValueError: {REFUSED}"
    assert reference[NAN_AT].error == "ValueError: the loss returned nan"
    losses = [outcome.loss for outcome in reference if outcome.ok]
    assert len(set(losses)) == len(losses)


def _helpers() -> set[int]:
    """multiprocessing's fork server and resource tracker: children of this process, started once per
    interpreter and shared by everything that uses them (the fork server's own children, the workers,
    are not helpers, though they share its command line)."""
    import psutil

    helpers = set()
    for process in psutil.Process().children():
        try:
            command = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if "multiprocessing.forkserver" in command or "multiprocessing.resource_tracker" in command:
            helpers.add(process.pid)
    return helpers


def _running_descendants() -> set[int]:
    """Processes below this one that still run (all of them with psutil; else multiprocessing's)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with distributed
        return {process.pid for process in multiprocessing.active_children()}
    running = set()
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                running.add(process.pid)
        except psutil.NoSuchProcess:
            continue
    return running - _helpers()


def _left_running(before: set[int], within: float = 20.0) -> set[int]:
    """Processes started since ``before`` that still run ``within`` seconds from now (at most)."""
    deadline = time.monotonic() + within
    while (left := _running_descendants() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _check(outcomes: list[tuple[int, Outcome]], expected: list[Outcome], exact: bool) -> None:
    positions = [position for position, _ in outcomes]
    assert sorted(positions) == list(range(len(expected))), "every position exactly once"
    got = dict(outcomes)
    for position, want in enumerate(expected):
        outcome = got[position]
        assert outcome.error == want.error, position
        if want.ok:
            if exact:
                assert outcome.loss == want.loss, position
            else:
                assert outcome.loss == pytest.approx(want.loss, rel=1e-5), position
        else:
            assert outcome.loss is None, position


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_EVALUATORS else n for n in EVALUATORS]
)
def test_same_outcomes_as_the_sequential_evaluator_and_nothing_left_after_close(name, reference) -> None:
    build, exact, side_by_side = EVALUATORS[name]
    task = load_task(SPEC)
    vectors = candidates(task)
    before = _running_descendants()
    evaluator = build(task)
    handles = [worker.process for worker in getattr(evaluator, "workers", [])]
    try:
        outcomes = list(evaluator.evaluate(vectors))
        _check(outcomes, reference, exact)
        if side_by_side:  # the slow first candidate completed after others: positions are not order
            assert outcomes[0][0] != SLOW_AT, [position for position, _ in outcomes]
            assert len(_running_descendants() - before) >= 2  # its processes are seen: the check below bites
        shuffled = list(evaluator.evaluate([vectors[k] for k in SHUFFLED]))
        _check(shuffled, [reference[k] for k in SHUFFLED], exact)
    finally:
        evaluator.close()
    assert not any(process.is_alive() for process in handles)
    assert getattr(evaluator, "cluster", None) is None  # a local Dask cluster it started is closed
    assert _left_running(before) == set()
