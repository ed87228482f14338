"""Issue 17's table (per-evaluation cost near the floor): each bench prints its rows beside what it measured.

The figures of "today" and "target" are the issue's, as it was filed; "now" is what the bench just
measured on this machine: the median over interleaved repeats, with the best repeat labelled
"best-of" (a best-of figure flatters a busy machine; the median is the one to compare).
The machine's load average is printed with them: on the shared 2-core machine, figures measured
under load are not figures of the code alone.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence

#: key → (where, today, target), as issue 17 states them.
ROWS = {
    "overhead": (
        "afterlearner with the store vs a hand-written Nevergrad loop, near-free loss, 10–1000 ℵ-scalars",
        "1.23–1.59× (the store adds 100–230 µs CPU per evaluation)",
        "≤ 1.15× with the store on",
    ),
    "progress": ("the progress bar (on by default)", "+5–12% on a near-free loss", "≤ 2%"),
    "metrics": (
        "`DatasetLoss(metric=balanced_error)` on the digits demo",
        "scikit-learn's `balanced_accuracy_score` is 1.22 ms of a 1.57 ms evaluation",
        "every built-in metric ≥ 20× faster than its scikit-learn call, identical values, population form",
    ),
    "cache": (
        "prefix cache on a real 6-layer transformer (all-MiniLM size)",
        "replay copies every cached output (28.6 MiB, about 8.7 ms of a 20–33 ms evaluation)",
        "replay without copies of what the live part does not touch: ≥ 1.5× faster per evaluation",
    ),
    "parallel": (
        "2 processes vs 1 (`bench/speed_parallel.py`)",
        "median 1.09× (best-of 1.89×) quiet, 0.85–1.02× under load",
        "median ≥ 1.6× quiet, ≥ 1.3× with the other core busy",
    ),
    "pinned": (
        "2 processes vs 1, workers pinned to a core each (`ProcessEvaluator(pin=True)`, `--pin`)",
        "(not in the issue)",
        "median ≥ 1.3× with the other core busy",
    ),
    "dask": (
        "2-worker Dask vs 1 process",
        "1.28–1.73× quiet, 0.85–0.90× under load",
        "median ≥ 1.6× quiet",
    ),
    "startup": (
        "`afterlearner --help`; `run` on a finished store",
        "13 s before the first evaluation of a 5.9 s retrofit; 28 s on a finished store (loaded)",
        "`--help` < 0.5 s; a finished store answered in < 2 s",
    ),
}


def load() -> str:
    """The load average (1, 5, 15 minutes) and the number of cores, as one phrase."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"


def median_and_best(values: Sequence[float], higher_is_better: bool = True) -> tuple[float, float]:
    """The median of repeated measurements and the best of them."""
    best = max(values) if higher_is_better else min(values)
    return statistics.median(values), best


def print_table(measured: dict[str, str]) -> None:
    """Issue 17's rows for the keys measured, with today, the target and the measurement side by side."""
    print()
    print(f"issue 17, measured now ({load()}):")
    print("| where | today (issue 17) | target | now |")
    print("|---|---|---|---|")
    for key, now in measured.items():
        where, today, target = ROWS[key]
        print(f"| {where} | {today} | {target} | {now} |")
