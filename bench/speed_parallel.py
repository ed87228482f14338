"""Parallel evaluation here: 2 worker processes vs 1, and a 2-worker Dask LocalCluster vs 1 process.

The same retrofit (CPU-bound loss from bench/speed_cpu_task.py, budget B, λ=4, seed 0) runs with each
evaluator; the workers are started and warmed up before timing and shut down after it (one-off costs
per run). Each evaluator runs the retrofit R times, the three evaluators taking turns, and the best
time of each is compared (a passing burst of load from elsewhere then spoils one repeat, not the
ratio). The journals are compared: they must be identical whatever the number of workers. The machine
is shared, so the load average is printed before and after; the ratios are only as good as the
cores that were free.

    .venv/bin/python bench/speed_parallel.py [--budget 48] [--repeats 3] [--factory task|heavy]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from afterlearner import retrofit
from afterlearner.evaluators.dask import DaskEvaluator
from afterlearner.evaluators.processes import ProcessEvaluator
from afterlearner.task import load_task

TASKS = Path(__file__).with_name("speed_cpu_task.py")


class KeepOpen:
    """The evaluator minus ``close``: retrofit closes its evaluator, and tearing workers down is not
    evaluation time (they are closed after timing)."""

    def __init__(self, evaluator) -> None:
        self.evaluate = evaluator.evaluate

    def close(self) -> None:
        pass


def timed_run(task, evaluator, budget):
    task.aleph.restore()
    start = time.perf_counter()
    result = retrofit(
        task.aleph, task.loss, budget=budget, workers=4, seed=0, evaluator=KeepOpen(evaluator), progress=False
    )
    return time.perf_counter() - start, [(e.vector.tobytes(), e.loss) for e in result.history]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--factory", choices=("task", "heavy"), default="task", help="heavy: 4x the samples, ~4x the cost"
    )
    args = parser.parse_args()
    spec = f"{TASKS}:{args.factory}"
    torch.set_num_threads(1)
    task = load_task(spec)
    print(
        f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
        f"budget {args.budget}, λ=4, task {args.factory}"
    )
    makers = {
        "1 process": lambda: ProcessEvaluator(spec, processes=1, aleph=task.aleph),
        "2 processes": lambda: ProcessEvaluator(spec, processes=2, aleph=task.aleph),
        "Dask LocalCluster, 2 workers": lambda: DaskEvaluator(spec, None, aleph=task.aleph, n_workers=2),
    }
    evaluators = {label: make() for label, make in makers.items()}
    times: dict[str, list[float]] = {label: [] for label in makers}
    journals = {}
    try:
        for evaluator in evaluators.values():  # warm: every worker has built its task
            list(evaluator.evaluate([task.aleph.identity()] * 4))
        for _ in range(args.repeats):
            for label, evaluator in evaluators.items():
                elapsed, journals[label] = timed_run(task, evaluator, args.budget)
                times[label].append(elapsed)
    finally:
        for evaluator in evaluators.values():
            evaluator.close()
    for label, runs in times.items():
        print(
            f"{label:30s} best {min(runs):6.2f} s  ({1e3 * min(runs) / args.budget:.0f} ms per evaluation)"
            f"  all: {', '.join(f'{t:.2f}' for t in runs)}"
        )
    times = {label: min(runs) for label, runs in times.items()}
    base = times["1 process"]
    print(f"2 processes vs 1 process:            {base / times['2 processes']:.2f}x")
    print(f"Dask (2 workers) vs 1 process:       {base / times['Dask LocalCluster, 2 workers']:.2f}x")
    same = all(journal == journals["1 process"] for journal in journals.values())
    print(f"journals (vectors and losses) identical across worker counts: {same}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
