"""How long the command line takes before it does anything: ``--help``, and ``run`` on a finished store.

Each command runs as a fresh process (imports included), R times, interleaved; printed: the median
wall time and the best. ``run`` on a finished store is timed on the CLI test task
(tests/tasks/quadratic_task.py, a copy in a temporary folder), after one full run made the store;
"rebuilt" is the same question when the note is stale (the task file touched by one byte), so the
ordinary path builds the task and replays the store: the cost the note saves.

    .venv/bin/python bench/speed_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from issue17 import load, print_table

TASK = Path(__file__).resolve().parents[1] / "tests" / "tasks" / "quadratic_task.py"
AFTERLEARNER = [sys.executable, "-m", "afterlearner"]


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, cwd=cwd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        task = folder / "task.py"
        shutil.copy(TASK, task)
        stale = folder / "stale.py"
        run = ["run", f"{task}:task", "--store", "run.sqlite", "--quiet", "--budget", "40"]
        made = timed(AFTERLEARNER + run, folder)
        shutil.copy(TASK, stale)
        stale_run = ["run", f"{stale}:task", "--store", "stale.sqlite", "--quiet", "--budget", "40"]
        timed(AFTERLEARNER + stale_run, folder)
        print(f"{load()}; the first run (build, retrofit of 40 evaluations): {made:.2f} s")
        times: dict[str, list[float]] = {"--help": [], "run, finished store": [], "run, note stale": []}
        for _ in range(args.repeats):
            times["--help"].append(timed(AFTERLEARNER + ["--help"], folder))
            times["run, finished store"].append(timed(AFTERLEARNER + run, folder))
            stale.write_bytes(stale.read_bytes() + b"\n")  # a changed task file: the note does not hold
            times["run, note stale"].append(timed(AFTERLEARNER + stale_run, folder))
    for label, values in times.items():
        print(
            f"{label:22s} median {statistics.median(values):6.2f} s  best-of {min(values):6.2f} s  "
            f"all: {', '.join(f'{v:.2f}' for v in values)}"
        )
    help_s, answer_s = (statistics.median(times[key]) for key in ("--help", "run, finished store"))
    print_table(
        {
            "startup": f"`--help` {help_s:.2f} s; a finished store answered in {answer_s:.2f} s "
            f"(median; {statistics.median(times['run, note stale']):.1f} s when the task must be built)"
        }
    )


if __name__ == "__main__":
    main()
