"""Distributed evaluation on a Dask cluster (``dask.distributed``).

The same worker design as :mod:`afterlearner.evaluators.processes`: each worker builds the task
once from its factory spec (``"path/to/task.py:factory"``, a path the workers can read, with
afterlearner installed there) and keeps it; afterwards only candidate vectors travel. Give a
scheduler address (``tcp://host:8786``) for a real cluster, a ``Client`` you made, or nothing for a
``LocalCluster`` started (and stopped by :meth:`DaskEvaluator.close`) here.

Why actors: one :class:`WorkerEvaluator` actor lives on each worker and candidates are sent to it
directly, client to worker. Ordinary Dask tasks go through the scheduler, whose batched messages
add about 20 ms to every round trip (measured here: 5.6 ms per no-op task in populations of 4 on
2 workers, against 1.7 ms per actor call), which is as much as a whole evaluation of a fast loss.

A loss that raises, or a call that exceeds ``timeout``, is one failed evaluation; the run goes on
with the other workers. Calls lost with a worker are sent again, each alone on a worker, and only
a call lost alone is failed: a candidate that kills its worker costs one evaluation. A worker
restarted by its nanny gets a new actor. Dask cannot interrupt a running Python call: a hung call
keeps its worker thread busy until it returns, and the other threads take the work.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from afterlearner.errors import ConfigError, TaskError
from afterlearner.evaluators.base import Outcome
from afterlearner.space import Aleph

#: Tasks built on this worker, one per (spec, thread), so concurrent threads never share a model.
_BUILT: dict[tuple[str, int], Any] = {}
#: How long to wait for a worker (and its actor) when none is left, e.g. while a nanny restarts one.
WORKER_WAIT_S = 30.0


def _evaluator(spec: str) -> Any:
    key = (spec, threading.get_ident())
    if key not in _BUILT:
        from afterlearner.evaluators import default_evaluator
        from afterlearner.task import load_task, measured_loss

        task = load_task(spec)
        _BUILT[key] = (default_evaluator(task.aleph, measured_loss(task), 1), task.aleph.signature())
    return _BUILT[key]


def remote_signature(spec: str) -> list[Any]:
    """Runs on a worker: the signature of the ℵ-space the task factory builds there."""
    return _evaluator(spec)[1]


def remote_evaluate(spec: str, vector: np.ndarray) -> tuple[float | None, str | None, float]:
    """Runs on a worker: the outcome of one candidate, as ``(loss, error, wall_time)``."""
    evaluator, _ = _evaluator(spec)
    _, outcome = next(iter(evaluator.evaluate([vector])))
    return outcome.loss, outcome.error, outcome.wall_time


class WorkerEvaluator:
    """The actor on one Dask worker: evaluates candidates in ``threads`` threads of its own, each
    with its own copy of the task (built on first use)."""

    def __init__(self, spec: str, threads: int) -> None:
        self.spec = spec
        self.pool = concurrent.futures.ThreadPoolExecutor(max(1, threads), thread_name_prefix="afterlearner")

    async def evaluate(self, vector: np.ndarray) -> tuple[float | None, str | None, float]:
        """The outcome of one candidate (async, so calls run side by side in the pool)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, remote_evaluate, self.spec, vector)

    async def signature(self) -> list[Any]:
        """The signature of the ℵ-space built on this worker."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, remote_signature, self.spec)


@dataclass
class _Slot:
    """One worker's actor, how many calls it can run at once, and the calls it runs."""

    worker: str
    actor: Any
    handle: Any  # the future that keeps the actor alive
    capacity: int
    calls: set[concurrent.futures.Future] = field(default_factory=set)
    alone: bool = False  # it runs a suspect alone (see DaskEvaluator.evaluate)

    def free(self, depth: int) -> bool:
        """Whether it takes another call, with up to ``depth`` calls per thread sent ahead."""
        return not self.alone and len(self.calls) < self.capacity * depth


@dataclass
class _Call:
    """A candidate sent to a worker: where it goes back, when it was sent, and whether it runs alone."""

    position: int
    vector: np.ndarray
    alone: bool
    slot: _Slot
    started: float = field(default_factory=time.perf_counter)


class DaskEvaluator:
    """Evaluates candidates on the workers of a Dask cluster.

    ``address``: a scheduler address, a ``distributed.Client``, or None for a local cluster of
    ``n_workers`` single-threaded worker processes. ``timeout``: seconds one evaluation may take.
    ``aleph``: the space of the main process, checked against the one the workers build.
    """

    #: Candidates are evaluated on the workers' own models: the caller's model is never touched.
    in_process = False

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
        from afterlearner.task import absolute_spec

        self.spec = absolute_spec(spec)
        self.timeout = timeout
        self.cluster = None
        self.owns_client = not isinstance(address, Client)
        self._slots: dict[str, _Slot] = {}
        #: Calls that timed out but still occupy a worker thread, with the slot they occupy.
        self._stuck: dict[concurrent.futures.Future, _Slot] = {}
        if address is None:
            # Dask's nannies set MALLOC_TRIM_THRESHOLD_=65536 in their workers, which makes glibc map
            # and unmap every large tensor afresh: forward passes took 25% longer here (24.8 vs 19.4 ms).
            environ = dask.config.get("distributed.nanny.pre-spawn-environ", {})
            environ = {key: value for key, value in environ.items() if key != "MALLOC_TRIM_THRESHOLD_"}
            settings = {
                "distributed.scheduler.allowed-failures": 0,  # a candidate that kills its worker kills one
                "distributed.nanny.pre-spawn-environ": environ,
                # Health checks and monitors for the dashboard (off here) woke every process of the
                # cluster every 20-500 ms: 7% of a core between them when idle, and 28% slower evaluations.
                "distributed.worker.profile.enabled": False,
                "distributed.admin.tick.interval": "1s",
                "distributed.admin.system-monitor.interval": "5s",
                "distributed.admin.system-monitor.gil.enabled": False,
                "distributed.worker.memory.monitor-interval": "1s",
            }
            with dask.config.set(settings):
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
        try:
            self._refresh()
            if aleph is not None:
                slot = next(iter(self._slots.values()))
                signature = self._call(slot.actor.signature()).result()
                if signature != aleph.signature():
                    raise TaskError(
                        f"the Dask workers' ℵ-space from {spec} differs from the one being retrofitted"
                    )
        except BaseException:
            self.close()
            raise

    def slots(self) -> int:
        """How many evaluations run at once: the cluster's worker threads (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def describe(self) -> str:
        """One line: how candidates are evaluated."""
        where = (
            "a local Dask cluster"
            if self.cluster is not None
            else f"the Dask cluster at {self.client.scheduler.address}"
        )
        return (
            f"{where}: {len(self._slots)} workers, {self.slots()} evaluations at a time, one actor per worker"
        )

    def _refresh(self, wait: float = WORKER_WAIT_S) -> None:
        """Start an actor on every worker that has none (new workers, restarted ones); wait up to
        ``wait`` seconds for a worker when there is none."""
        self._reap_stuck()
        deadline = time.monotonic() + wait
        while True:
            workers = self.client.nthreads()
            for gone in set(self._slots) - set(workers):
                del self._slots[gone]
            new = {
                worker: self.client.submit(
                    WorkerEvaluator,
                    self.spec,
                    threads,
                    actor=True,
                    workers=[worker],
                    allow_other_workers=False,
                    pure=False,
                )
                for worker, threads in workers.items()
                if worker not in self._slots
            }
            for worker, handle in new.items():
                try:
                    actor = handle.result(timeout=WORKER_WAIT_S)
                except Exception:  # noqa: BLE001 - the worker left meanwhile; the next refresh retries
                    continue
                self._slots[worker] = _Slot(worker, actor, handle, workers[worker])
            if self._slots or time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def _call(self, actor_future: Any) -> concurrent.futures.Future:
        """An actor call as a ``concurrent.futures.Future``, so several can be waited on at once."""

        async def result() -> Any:
            return await actor_future

        return asyncio.run_coroutine_threadsafe(result(), self.client.loop.asyncio_loop)

    def _reap_stuck(self) -> None:
        for call in [call for call in self._stuck if call.done()]:
            self._stuck.pop(call).calls.discard(call)

    def _depth(self) -> int:
        """Calls sent ahead per worker thread. Without a timeout each thread gets its next candidate
        before it finishes the current one, so it never waits for a round trip; with one, a call is
        sent only to a free thread, whose clock then starts when the evaluation does."""
        return 2 if self.timeout is None else 1

    def _free_slot(self, alone: bool = False) -> _Slot | None:
        """The least busy slot that takes another call; ``alone``: one with no call at all."""
        if not self._slots:
            self._refresh()
        slots = sorted(self._slots.values(), key=lambda slot: len(slot.calls) / slot.capacity)
        if alone:
            return next((slot for slot in slots if not slot.calls), None)
        return next((slot for slot in slots if slot.free(self._depth())), None)

    def evaluate(self, vectors: Sequence[np.ndarray]) -> Iterator[tuple[int, Outcome]]:
        """Outcomes as they complete. When a worker is lost, the calls it held are suspects: each is
        sent again, alone on a worker, and only one that is lost alone is a failed evaluation (so a
        candidate that kills its worker costs one evaluation, and up to two worker restarts)."""
        self._refresh(wait=0.0 if self._slots else WORKER_WAIT_S)  # new or restarted workers join
        pending = deque((i, np.asarray(v, dtype=float), False) for i, v in enumerate(vectors))
        running: dict[concurrent.futures.Future, _Call] = {}
        while pending or running:
            while pending and (slot := self._free_slot(alone=pending[0][2])) is not None:
                position, vector, alone = pending.popleft()
                call = self._call(slot.actor.evaluate(vector))
                slot.calls.add(call)
                slot.alone = alone
                running[call] = _Call(position, vector, alone, slot)
            if not running:  # every worker thread is stuck on a timed-out call, or no worker is left
                if not self._wait_for_a_thread(alone=pending[0][2]):
                    position, _, _ = pending.popleft()
                    yield position, Outcome(None, self._no_thread_reason(), 0.0)
                continue
            done, _ = concurrent.futures.wait(
                list(running), timeout=self._next_deadline(running), return_when="FIRST_COMPLETED"
            )
            for call in sorted(done, key=lambda call: running[call].position):
                sent = running.pop(call)
                sent.slot.calls.discard(call)
                sent.slot.alone = False
                try:
                    outcome = Outcome(*call.result())
                except Exception as error:  # noqa: BLE001 - a lost worker or a failed call
                    if self._slots.get(sent.slot.worker) is sent.slot:  # a new actor at the next refresh
                        del self._slots[sent.slot.worker]
                    if not sent.alone:
                        pending.appendleft((sent.position, sent.vector, True))
                        continue
                    reason = f"the Dask worker failed: {type(error).__name__}: {error}"
                    outcome = Outcome(None, reason, time.perf_counter() - sent.started)
                yield sent.position, outcome
            now = time.perf_counter()
            for call, sent in list(running.items()):
                if self.timeout is not None and now - sent.started > self.timeout:
                    del running[call]
                    self._stuck[call] = sent.slot  # its thread stays busy until the call returns
                    sent.slot.alone = False
                    yield (
                        sent.position,
                        Outcome(None, f"timed out after {self.timeout:g} s", now - sent.started),
                    )

    def _wait_for_a_thread(self, alone: bool) -> bool:
        """Wait (up to the timeout) for a stuck call to return or a worker to appear."""
        if self._stuck:
            concurrent.futures.wait(list(self._stuck), timeout=self.timeout, return_when="FIRST_COMPLETED")
        return self._free_slot(alone) is not None

    def _no_thread_reason(self) -> str:
        if self._slots:
            return "no free Dask worker thread: all are stuck on evaluations that timed out"
        return "no Dask worker is left"

    def _next_deadline(self, running: dict[concurrent.futures.Future, _Call]) -> float | None:
        if self.timeout is None or not running:
            return None
        first = min(sent.started for sent in running.values())
        return max(0.0, first + self.timeout - time.perf_counter()) + 0.01

    def close(self) -> None:
        """Release the actors; close the client and the local cluster if this evaluator made them."""
        self._slots.clear()
        self._stuck.clear()
        if self.owns_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def __enter__(self) -> DaskEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
