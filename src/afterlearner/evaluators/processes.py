"""Parallel evaluation in worker processes on this machine.

Each worker process imports the task file and calls its factory ONCE (``load_task(spec)``), so it
holds its own copy of the model and loss; afterwards it only receives candidate vectors and sends
back outcomes. Inside a worker the candidate is evaluated by ``default_evaluator``, so a
:class:`~afterlearner.losses.DatasetLoss` gets its prefix cache there too.

Failures cost one evaluation: a worker that dies (segfault, ``os._exit``, out of memory) or exceeds
the per-evaluation ``timeout`` (it is killed) yields a failed outcome for the candidate it held, and
a fresh worker is started in its place. Results do not depend on the number of processes: every
worker builds the same model, and the retrofit loop tells the optimizer in ask order.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import traceback
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from afterlearner.checks import check_positive_int
from afterlearner.errors import ConfigError, TaskError
from afterlearner.evaluators.base import Outcome
from afterlearner.space import Aleph
from afterlearner.task import absolute_spec

#: Modules the fork server imports once, so each worker starts without re-importing them.
PRELOAD = [
    "torch",
    "numpy",
    "nevergrad",
    "sklearn.metrics",
    "afterlearner.evaluators.processes",
    "afterlearner.evaluators.cache",
    "afterlearner.evaluators.batched",
]


def worker_main(
    spec: str, connection: Connection, threads: int | None, kwargs: dict[str, Any] | None = None
) -> None:
    """The body of a worker process: build the task once, then evaluate the vectors it is sent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the workers
    try:
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        from afterlearner.evaluators import default_evaluator
        from afterlearner.task import load_task, measured_loss

        task = load_task(spec, **(kwargs or {}))
        evaluator = default_evaluator(task.aleph, measured_loss(task), 1)
        connection.send(("ready", task.aleph.signature()))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it
        connection.send(
            ("broken", "".join(traceback.format_exception(type(error), error, error.__traceback__)))
        )
        return
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        position, vector = message
        _, outcome = next(iter(evaluator.evaluate([vector])))
        connection.send(("done", position, outcome))


@dataclass(eq=False)
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: Connection
    ready: bool = False
    job: tuple[int, float] | None = None  # (position, started)
    signature: list[Any] | None = field(default=None)


class ProcessEvaluator:
    """Evaluates candidates in ``processes`` worker processes built from the task factory ``spec``.

    ``spec`` is ``"path/to/task.py:factory"`` (as for ``afterlearner run``); ``kwargs``, if given, are
    passed to the factory (e.g. ``{"reduced": True}``). ``timeout``: seconds
    one evaluation may take before its worker is killed and the evaluation journaled as failed.
    ``aleph``: the space of the main process, checked against the workers' (same signature).
    ``threads``: torch threads per worker (default 1, so workers do not fight over cores).
    ``max_restarts``: replacements of dead or killed workers in a row, without any evaluation
    completing, after which the evaluator gives up with a :class:`TaskError` (default 4 per process).
    ``start_method``: ``"forkserver"`` (default: workers fork from a server process that imported
    torch once, so they start and restart fast) or ``"spawn"``. Either way, a script that creates
    this evaluator must do so under ``if __name__ == "__main__":``. ``pin``: pin worker i to the
    i-th core this process may use (Linux), so that on a busy machine the scheduler cannot stack two
    workers on one core while another program has the other (``bench/speed_parallel.py --busy 1``
    measures it); off by default, since two pinned runs on one machine would share the same cores.
    """

    #: Candidates are evaluated on the workers' own models: the caller's model is never touched.
    in_process = False

    def __init__(
        self,
        spec: str,
        processes: int = 2,
        timeout: float | None = None,
        aleph: Aleph | None = None,
        threads: int | None = 1,
        start_method: str = "forkserver",
        max_restarts: int | None = None,
        kwargs: dict[str, Any] | None = None,
        pin: bool = False,
    ) -> None:
        check_positive_int("processes", processes)
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.spec = absolute_spec(spec)
        self.timeout = timeout
        self.expected = aleph.signature() if aleph is not None else None
        self.threads = threads
        self.kwargs = dict(kwargs or {})
        self.context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":  # workers fork from a server that imported torch once: fast starts
            self.context.set_forkserver_preload(PRELOAD)
        self.cores = sorted(os.sched_getaffinity(0)) if pin and hasattr(os, "sched_getaffinity") else []
        self.max_restarts = 4 * processes if max_restarts is None else max_restarts
        self.restarts_left = self.max_restarts
        self.restarts = 0
        self.workers = [self._spawn(slot) for slot in range(processes)]

    def describe(self) -> str:
        """One line: how candidates are evaluated."""
        limit = f", {self.timeout:g} s per evaluation at most" if self.timeout else ""
        return f"{len(self.workers)} worker processes, each built from {self.spec} once{limit}"

    def _spawn(self, slot: int) -> _Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(
            target=worker_main,
            args=(self.spec, child, self.threads, self.kwargs),
            daemon=True,
            name="afterlearner-worker",
        )
        process.start()
        child.close()
        if self.cores:
            os.sched_setaffinity(process.pid, {self.cores[slot % len(self.cores)]})  # type: ignore[arg-type]
        return _Worker(process, parent)

    def _replace(self, worker: _Worker) -> None:
        _stop(worker)
        if self.restarts_left <= 0:
            raise TaskError(
                f"worker processes keep dying: {self.max_restarts} restarts in a row without a completed "
                f"evaluation ({self.restarts} in all)"
            )
        self.restarts_left -= 1
        self.restarts += 1
        slot = self.workers.index(worker)
        self.workers[slot] = self._spawn(slot)

    def _on_message(self, worker: _Worker, message: tuple[Any, ...]) -> tuple[int, Outcome] | None:
        kind = message[0]
        if kind == "broken":
            self.close()
            raise TaskError(f"a worker could not build the task {self.spec}:\n{message[1]}")
        if kind == "ready":
            if self.expected is not None and message[1] != self.expected:
                self.close()
                raise TaskError(
                    f"the workers' ℵ-space from {self.spec} differs from the one being retrofitted"
                )
            worker.ready, worker.signature = True, message[1]
            return None
        _, position, outcome = message
        worker.job = None
        self.restarts_left = self.max_restarts  # only deaths in a row, with no evaluation done, give up
        return position, outcome

    def _died(self, worker: _Worker) -> tuple[int, Outcome] | None:
        """A worker's process ended: fail its evaluation (if any) and start another."""
        if not worker.ready:
            code = worker.process.exitcode
            self.close()
            raise TaskError(
                f"a worker process exited with code {code} while building the task {self.spec} "
                "(a script that "
                "starts workers must do so under `if __name__ == '__main__':`, workers re-import it)"
            )
        job = worker.job
        self._replace(worker)
        if job is None:
            return None
        position, started = job
        error = f"the worker process died (exit code {worker.process.exitcode}) during this evaluation"
        return position, Outcome(None, error, time.perf_counter() - started)

    def _timed_out(self, worker: _Worker) -> tuple[int, Outcome]:
        assert worker.job is not None
        position, started = worker.job
        self._replace(worker)
        return position, Outcome(
            None, f"timed out after {self.timeout:g} s (worker killed)", time.perf_counter() - started
        )

    def evaluate(self, vectors: Sequence[np.ndarray]) -> Iterator[tuple[int, Outcome]]:
        pending = deque(enumerate(np.asarray(v, dtype=float) for v in vectors))
        left = len(pending)
        while left:
            for worker in self.workers:
                if worker.ready and worker.job is None and pending:
                    position, vector = pending.popleft()
                    worker.job = (position, time.perf_counter())
                    try:
                        worker.connection.send((position, vector))
                    except (BrokenPipeError, OSError):
                        pass  # its death is noticed below through the process sentinel
            for result in self._wait():
                left -= 1
                yield result

    def _wait(self) -> list[tuple[int, Outcome]]:
        """Block until something happens (a message, a death, a deadline); the evaluations it ends."""
        by_handle: dict[Any, _Worker] = {}
        for worker in self.workers:
            by_handle[worker.connection] = worker
            by_handle[worker.process.sentinel] = worker
        ready = wait(list(by_handle), timeout=self._next_deadline())
        finished: list[tuple[int, Outcome]] = []
        handled: set[int] = set()
        for handle in ready:
            worker = by_handle[handle]
            if id(worker) in handled:
                continue
            handled.add(id(worker))
            result = self._read(worker)
            if result is not None:
                finished.append(result)
        now = time.perf_counter()
        for worker in list(self.workers):
            if self.timeout is not None and worker.job is not None and now - worker.job[1] > self.timeout:
                finished.append(self._timed_out(worker))
        return finished

    def _read(self, worker: _Worker) -> tuple[int, Outcome] | None:
        try:
            if worker.connection.poll():
                return self._on_message(worker, worker.connection.recv())
        except (EOFError, OSError):
            pass
        if not worker.process.is_alive():
            return self._died(worker)
        return None

    def _next_deadline(self) -> float | None:
        jobs = [worker.job[1] for worker in self.workers if worker.job is not None]
        if self.timeout is None or not jobs:
            return None
        return max(0.0, min(jobs) + self.timeout - time.perf_counter()) + 0.01

    def close(self) -> None:
        """Stop the workers (asks them to exit, kills those that do not)."""
        for worker in self.workers:
            try:
                worker.connection.send(None)
            except (BrokenPipeError, OSError):
                pass
        for worker in self.workers:
            _stop(worker, grace=2.0)
        self.workers = []

    def __enter__(self) -> ProcessEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stop(worker: _Worker, grace: float = 0.0) -> None:
    process = worker.process
    if grace:
        process.join(grace)
    if process.is_alive():
        process.kill()
        process.join(5)
    worker.connection.close()
