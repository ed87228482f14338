"""Process and Dask evaluation: same losses and same journal as in-process, whatever the worker count;
a worker that dies or hangs costs one evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from paths import TASKS

from afterlearner import retrofit
from afterlearner.cli import main
from afterlearner.errors import TaskError
from afterlearner.evaluators import SequentialEvaluator
from afterlearner.evaluators.dask import DaskEvaluator
from afterlearner.evaluators.processes import ProcessEvaluator
from afterlearner.store import Store
from afterlearner.task import load_task

WORKER_TASKS = TASKS / "worker_tasks.py"
TASK = f"{WORKER_TASKS}:task"
FRAGILE = f"{WORKER_TASKS}:fragile"
DIE, HANG = 99.0, 77.0


def with_first(vector: np.ndarray, value: float) -> np.ndarray:
    vector = vector.copy()
    vector[0] = value
    return vector


@pytest.mark.slow
def test_workers_that_die_or_hang_cost_one_evaluation():
    task = load_task(FRAGILE)
    identity = task.aleph.identity()
    vectors = [with_first(identity, v) for v in (0.0, DIE, 0.3, HANG, -0.2, 0.1)]
    expected = {
        i: o.loss
        for i, o in SequentialEvaluator(task.aleph, task.loss).evaluate(
            [v for v in vectors if v[0] not in (DIE, HANG)]
        )
    }
    with ProcessEvaluator(FRAGILE, processes=2, timeout=1.5, aleph=task.aleph) as evaluator:
        outcomes = dict(evaluator.evaluate(vectors))
        assert sorted(outcomes) == list(range(6))
        assert "died (exit code 3)" in outcomes[1].error and outcomes[1].loss is None
        assert "timed out after 1.5 s" in outcomes[3].error
        assert [outcomes[i].loss for i in (0, 2, 4, 5)] == [expected[i] for i in range(4)]
        assert evaluator.restarts == 2
        again = dict(evaluator.evaluate(vectors[:1]))  # the replaced workers serve the next batch
        assert again[0].loss == expected[0]


@pytest.mark.slow
def test_a_retrofit_goes_on_when_workers_die(tmp_path):
    spec = f"{WORKER_TASKS}:dies_above_zero"
    task = load_task(spec)
    evaluator = ProcessEvaluator(spec, processes=2, aleph=task.aleph)
    result = retrofit(
        task.aleph,
        task.loss,
        budget=16,
        workers=2,
        seed=1,
        store=tmp_path / "dies.sqlite",
        evaluator=evaluator,
        progress=False,
    )
    with Store.open(tmp_path / "dies.sqlite", readonly=True) as store:
        journaled = store.evaluations()
    failed = [e for e in journaled if not e.ok]
    assert len(journaled) == 16 and result.evaluations == 16
    assert failed and all("died (exit code 4)" in e.error for e in failed)
    assert all(e.vector[0] > 0 for e in failed) and all(e.vector[0] <= 0 for e in journaled if e.ok)
    assert result.best[0] <= 0 and evaluator.restarts == len(failed)


def test_broken_task_and_mismatched_space_are_refused():
    with pytest.raises(TaskError, match="has no function 'nonexistent'"):
        with ProcessEvaluator(f"{WORKER_TASKS}:nonexistent", processes=1) as evaluator:
            list(evaluator.evaluate([np.zeros(4)]))
    other = load_task(FRAGILE).aleph  # 4 ℵ-scalars, the task has 8
    with pytest.raises(TaskError, match="differs"):
        with ProcessEvaluator(TASK, processes=1, aleph=other) as evaluator:
            list(evaluator.evaluate([other.identity()]))


def journal(path: Path) -> list[tuple[int, bytes, float | None, str]]:
    with Store.open(path, readonly=True) as store:
        return [(e.idx, e.vector.tobytes(), e.loss, e.status) for e in store.evaluations()]


@pytest.mark.slow
def test_same_journal_with_1_or_2_processes_or_dask(tmp_path):
    from distributed import LocalCluster

    settings = dict(budget=20, workers=4, seed=5, progress=False)
    task = load_task(TASK)
    plain = retrofit(
        task.aleph,
        task.loss,
        store=tmp_path / "plain.sqlite",
        evaluator=SequentialEvaluator(task.aleph, task.loss),
        **settings,
    )
    task.aleph.restore()
    one = retrofit(
        task.aleph,
        task.loss,
        store=tmp_path / "one.sqlite",
        evaluator=ProcessEvaluator(TASK, processes=1, aleph=task.aleph),
        **settings,
    )
    code = main(
        [
            "run",
            TASK,
            "--processes",
            "2",
            "--workers",
            "4",
            "--budget",
            "20",
            "--seed",
            "5",
            "--quiet",
            "--store",
            str(tmp_path / "two.sqlite"),
        ]
    )
    assert code == 0
    task.aleph.restore()
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with DaskEvaluator(TASK, cluster.scheduler_address, aleph=task.aleph) as evaluator:
            assert evaluator.slots() == 2
            dask = retrofit(
                task.aleph, task.loss, store=tmp_path / "dask.sqlite", evaluator=evaluator, **settings
            )
        arguments = ["--workers", "4", "--budget", "20", "--seed", "5", "--quiet"]
        address = ["--dask", cluster.scheduler_address, "--store", str(tmp_path / "dask-cli.sqlite")]
        assert main(["run", TASK, *arguments, *address]) == 0
    reference = journal(tmp_path / "plain.sqlite")
    assert len(reference) == 20 and len({loss for _, _, loss, _ in reference}) > 1
    for name in ("one", "two", "dask", "dask-cli"):
        assert journal(tmp_path / f"{name}.sqlite") == reference, name
    for result in (one, dask):
        np.testing.assert_array_equal(result.best, plain.best)
        assert result.best_loss == plain.best_loss


def test_dask_timeout_and_failure_cost_one_evaluation():
    from distributed import Client, LocalCluster

    task = load_task(FRAGILE)
    identity = task.aleph.identity()
    vectors = [with_first(identity, v) for v in (0.0, HANG, np.nan, 0.2)]
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client, DaskEvaluator(FRAGILE, client, timeout=1.0) as evaluator:
            outcomes = dict(evaluator.evaluate(vectors))
    assert sorted(outcomes) == [0, 1, 2, 3]
    assert "timed out after 1 s" in outcomes[1].error
    assert "refuses NaN candidates" in outcomes[2].error  # the loss raised: one failed evaluation
    assert outcomes[0].ok and outcomes[3].ok


@pytest.mark.slow
def test_dask_worker_that_dies_costs_one_evaluation_and_is_replaced():
    import time

    task = load_task(FRAGILE)
    identity = task.aleph.identity()
    vectors = [with_first(identity, v) for v in (0.0, DIE, 0.3, 0.1)]
    expected = dict(SequentialEvaluator(task.aleph, task.loss).evaluate([vectors[i] for i in (0, 2, 3)]))
    with DaskEvaluator(FRAGILE, None, aleph=task.aleph, n_workers=2) as evaluator:  # worker processes
        outcomes = dict(evaluator.evaluate(vectors))
        assert sorted(outcomes) == [0, 1, 2, 3]
        assert outcomes[1].loss is None and "the Dask worker failed" in outcomes[1].error
        assert [outcomes[i].loss for i in (0, 2, 3)] == [expected[i].loss for i in range(3)]
        deadline = time.monotonic() + 60
        while len(evaluator.client.nthreads()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # the nanny restarts the dead worker
        again = dict(evaluator.evaluate([vectors[0], vectors[2]]))
        assert [again[0].loss, again[1].loss] == [expected[0].loss, expected[1].loss]
        assert len(evaluator._slots) == 2  # the restarted worker got an actor of its own


@pytest.mark.slow
def test_dask_candidates_wait_for_a_thread_stuck_on_a_timed_out_call():
    import time

    from distributed import Client, LocalCluster

    task = load_task(FRAGILE)
    identity = task.aleph.identity()
    vectors = [with_first(identity, v) for v in (HANG, 0.0)]  # the hang lasts 3 s
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client, DaskEvaluator(FRAGILE, client, timeout=1.0) as evaluator:
            outcomes = list(evaluator.evaluate(vectors))
            time.sleep(2.0)  # the hung call returns and frees the only thread
            again = list(evaluator.evaluate(vectors[1:]))
    assert [position for position, _ in outcomes] == [0, 1]
    assert "timed out after 1 s" in outcomes[0][1].error
    assert "all are stuck on evaluations that timed out" in outcomes[1][1].error  # waited 1 s in vain
    assert again[0][1].ok


def test_cli_refuses_inconsistent_parallel_options(capsys):
    assert main(["run", TASK, "--timeout", "3", "--budget", "2", "--quiet"]) == 2
    assert "a timeout applies to evaluation in worker processes or on Dask" in capsys.readouterr().err
    assert main(["run", TASK, "--dask", "local:two", "--budget", "2", "--quiet"]) == 2
    assert "a local Dask cluster is 'local:N'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", TASK, "--processes", "2", "--dask", "tcp://localhost:8786"])
    assert main(["run", TASK, "--pin", "--budget", "2", "--quiet"]) == 2
    assert "pinning workers to cores needs worker processes" in capsys.readouterr().err


def test_pinned_workers_each_have_a_core_and_give_the_same_losses():
    import os

    task = load_task(TASK)
    cores = sorted(os.sched_getaffinity(0))
    vectors = [with_first(task.aleph.identity(), v) for v in (0.0, 0.3, -0.2, 0.1)]
    expected = dict(SequentialEvaluator(task.aleph, task.loss).evaluate(vectors))
    with ProcessEvaluator(TASK, processes=2, aleph=task.aleph, pin=True) as evaluator:
        outcomes = dict(evaluator.evaluate(vectors))
        pids = [worker.process.pid for worker in evaluator.workers]
        assert [os.sched_getaffinity(pid) for pid in pids] == [{cores[i % len(cores)]} for i in range(2)]
    assert {i: o.loss for i, o in outcomes.items()} == {i: o.loss for i, o in expected.items()}
