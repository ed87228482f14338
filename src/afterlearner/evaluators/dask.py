"""Distributed evaluation on a Dask cluster (``dask.distributed``).

The same worker design as :mod:`afterlearner.evaluators.processes`: each worker thread builds the
task once from its factory spec (``"path/to/task.py:factory"``, a path the workers can read, with
afterlearner installed there) and keeps it; afterwards only candidate vectors travel. Give a
scheduler address (``tcp://host:8786``) for a real cluster, a ``Client`` you made, or nothing for a
``LocalCluster`` started (and stopped by :meth:`DaskEvaluator.close`) here.

A task that raises, is lost with its worker or exceeds ``timeout`` (it is cancelled) is one failed
evaluation; the run goes on with the other workers. Dask cannot interrupt a running Python call: a
hung call keeps its worker thread busy until it returns, and the other threads take the work.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from afterlearner.errors import ConfigError, TaskError
from afterlearner.evaluators.base import Outcome
from afterlearner.space import Aleph

#: Tasks built on this worker, one per (spec, thread), so concurrent threads never share a model.
_BUILT: dict[tuple[str, int], Any] = {}


def _evaluator(spec: str) -> Any:
    key = (spec, threading.get_ident())
    if key not in _BUILT:
        from afterlearner.evaluators import default_evaluator
        from afterlearner.task import load_task

        task = load_task(spec)
        _BUILT[key] = (default_evaluator(task.aleph, task.loss, 1), task.aleph.signature())
    return _BUILT[key]


def remote_signature(spec: str) -> list[Any]:
    """Runs on a worker: the signature of the ℵ-space the task factory builds there."""
    return _evaluator(spec)[1]


def remote_evaluate(spec: str, vector: np.ndarray) -> tuple[float | None, str | None, float]:
    """Runs on a worker: the outcome of one candidate, as ``(loss, error, wall_time)``."""
    evaluator, _ = _evaluator(spec)
    _, outcome = next(iter(evaluator.evaluate([vector])))
    return outcome.loss, outcome.error, outcome.wall_time


class DaskEvaluator:
    """Evaluates candidates on the workers of a Dask cluster.

    ``address``: a scheduler address, a ``distributed.Client``, or None for a local cluster of
    ``n_workers`` single-threaded worker processes. ``timeout``: seconds one evaluation may take.
    ``aleph``: the space of the main process, checked against the one the workers build.
    """

    def __init__(
        self,
        spec: str,
        address: str | Any | None = None,
        timeout: float | None = None,
        aleph: Aleph | None = None,
        n_workers: int = 2,
    ) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as error:  # pragma: no cover - depends on the installed extras
            raise ConfigError("Dask evaluation needs: pip install 'afterlearner[distributed]'") from error
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout!r}")
        from afterlearner.evaluators.processes import absolute_spec

        self.spec = absolute_spec(spec)
        self.timeout = timeout
        self.cluster = None
        self.owns_client = not isinstance(address, Client)
        if address is None:
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self.cluster = LocalCluster(
                    n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
                )
            self.client = Client(self.cluster)
        elif isinstance(address, str):
            try:
                self.client = Client(address, timeout="30s")
            except OSError as error:
                raise ConfigError(f"cannot reach the Dask scheduler at {address}: {error}") from error
        else:
            self.client = address
        if aleph is not None:
            signature = self.client.submit(remote_signature, self.spec, pure=False).result()
            if signature != aleph.signature():
                self.close()
                raise TaskError(
                    f"the Dask workers' ℵ-space from {spec} differs from the one being retrofitted"
                )

    def slots(self) -> int:
        """How many evaluations run at once: the cluster's worker threads (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def evaluate(self, vectors: Sequence[np.ndarray]) -> Iterator[tuple[int, Outcome]]:
        from distributed import as_completed, wait

        if self.timeout is None:  # submit the whole population; results stream back as they finish
            futures = {
                self.client.submit(
                    remote_evaluate, self.spec, np.asarray(vector, dtype=float), pure=False
                ): position
                for position, vector in enumerate(vectors)
            }
            started = time.perf_counter()
            for future, value in as_completed(futures, with_results=True, raise_errors=False):
                if future.status == "finished":
                    yield futures[future], Outcome(*value)
                else:
                    yield futures[future], _outcome(future, time.perf_counter() - started)
            return
        pending = deque(enumerate(np.asarray(v, dtype=float) for v in vectors))
        running: dict[Any, tuple[int, float]] = {}
        # With a timeout, at most one task per worker thread is out, so the clock of each starts when
        # it runs (without one, the whole population was submitted above and streamed back).
        slots = self.slots()
        while pending or running:
            while pending and len(running) < slots:
                position, vector = pending.popleft()
                future = self.client.submit(remote_evaluate, self.spec, vector, pure=False)
                running[future] = (position, time.perf_counter())
            try:
                done, _ = wait(
                    list(running), timeout=self._next_deadline(running), return_when="FIRST_COMPLETED"
                )
            except TimeoutError:
                done = set()
            for future in done:
                position, started = running.pop(future)
                yield position, _outcome(future, time.perf_counter() - started)
            now = time.perf_counter()
            for future, (position, started) in list(running.items()):
                if self.timeout is not None and now - started > self.timeout:
                    future.cancel()
                    del running[future]
                    yield (
                        position,
                        Outcome(None, f"timed out after {self.timeout:g} s (task cancelled)", now - started),
                    )

    def _next_deadline(self, running: dict[Any, tuple[int, float]]) -> float | None:
        if self.timeout is None or not running:
            return None
        first = min(started for _, started in running.values())
        return max(0.0, first + self.timeout - time.perf_counter()) + 0.01

    def close(self) -> None:
        """Close the client and the local cluster if this evaluator made them."""
        if self.owns_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def __enter__(self) -> DaskEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _outcome(future: Any, elapsed: float) -> Outcome:
    if future.status == "finished":
        loss, error, wall_time = future.result()
        return Outcome(loss, error, wall_time)
    try:
        future.result()
    except BaseException as error:  # noqa: BLE001 - a lost or failed task is one failed evaluation
        return Outcome(None, f"the Dask task failed: {type(error).__name__}: {error}", elapsed)
    return Outcome(None, f"the Dask task ended with status {future.status}", elapsed)  # pragma: no cover
