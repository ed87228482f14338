"""afterlearner's per-evaluation overhead against a hand-written Nevergrad ask/tell loop.

Both loops run the same optimizer on the same model with a near-free loss (so what is timed is the
loop itself: ask, write the candidate into the model, call the loss, tell, keep the best), at 10,
100 and 1000 ℵ-scalars; afterlearner without and with the SQLite store. Printed as ratios from one
run, interleaved (hand, afterlearner, afterlearner+store, repeated) so machine load hits all alike.
The progress bar is measured on top of the store, drawn on a pseudo-terminal (as on a screen).
Times are this process's CPU time (``time.process_time``), which other processes on a busy machine
disturb far less than wall time; the store's writes do not wait for the disk (WAL, synchronous=NORMAL).

    .venv/bin/python bench/overhead.py [--budget 300] [--repeats 5] [--optimizer OnePlusOne]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pty
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nevergrad as ng
import numpy as np
import torch
from issue17 import load, print_table

import afterlearner as al
from afterlearner.retrofit import derive_seed


def make_layer(size: int) -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(4, size)


def cheap_loss(model: torch.nn.Linear) -> float:
    return float((model.bias[:4] - 1.0).square().sum())


def hand_loop(size: int, budget: int, optimizer: str, seed: int) -> tuple[float, float]:
    """What users write today: ask, write offsets into the model, evaluate, tell, keep the best."""
    layer = make_layer(size)
    trained = layer.bias.detach().clone()
    step = 0.5 * float(trained.double().pow(2).mean().sqrt())  # as afterlearner derives it
    parametrization = ng.p.Array(init=np.zeros(size)).set_mutation(sigma=step)
    parametrization.random_state = np.random.RandomState(derive_seed(seed, 0))  # the stream retrofit uses
    opt = ng.optimizers.registry[optimizer](parametrization=parametrization, budget=budget, num_workers=1)
    start = time.process_time()
    best = (np.inf, None)
    for _ in range(budget):
        candidate = opt.ask()
        with torch.no_grad():
            layer.bias.copy_(trained + torch.as_tensor(candidate.value, dtype=trained.dtype))
            loss = cheap_loss(layer)
        opt.tell(candidate, loss)
        if loss <= best[0]:
            best = (loss, candidate.value)
    return (time.process_time() - start) / budget, best[0]


def afterlearner_loop(
    size: int, budget: int, optimizer: str, seed: int, store: Path | None, progress: bool = False
) -> tuple[float, float]:
    layer = make_layer(size)
    aleph = al.Aleph(layer).add("bias")
    start = time.process_time()
    result = al.retrofit(
        aleph, cheap_loss, budget=budget, optimizer=optimizer, seed=seed, store=store, progress=progress
    )
    return (time.process_time() - start) / budget, result.best_loss


def with_bar(size: int, budget: int, optimizer: str, seed: int, store: Path) -> tuple[float, float]:
    """afterlearner with the store and the progress bar, drawn on a terminal (:func:`on_a_terminal`)."""
    with on_a_terminal():
        return afterlearner_loop(size, budget, optimizer, seed, store, progress=True)


@contextlib.contextmanager
def on_a_terminal() -> Iterator[None]:
    """Standard output on a pseudo-terminal, so that rich animates the bar as on a screen (a pipe or a
    StringIO would get one line at the end); what is drawn is read and dropped by a thread."""
    leader, follower = pty.openpty()
    drain = threading.Thread(target=_drain, args=(leader,), daemon=True)
    drain.start()
    try:
        with open(follower, "w", closefd=False) as terminal, contextlib.redirect_stdout(terminal):
            yield
    finally:
        os.close(follower)  # the reader sees the end, and closes its side
        drain.join()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 1 << 16):
            pass
    except OSError:  # the other side closed: EIO on Linux
        pass
    finally:
        os.close(fd)


def bar_share(steps: int, repeats: int, work_us: float = 120.0) -> tuple[float, float]:
    """The progress bar's cost alone, drawn on a pseudo-terminal: ``steps`` steps of a fixed CPU-bound
    work of about ``work_us`` µs (an evaluation of the near-free loop above), each followed by the
    bar's update as ``retrofit`` makes it, with the bar on and off, interleaved ``repeats`` times.
    Returns the median relative cost and the median µs per step. Without Nevergrad in the loop, whose
    cost drifts as its archive grows, what differs between the two is the bar only."""
    from afterlearner.progress import RunProgress

    count = 1000
    started = time.process_time()
    _work(count)
    count = max(1, int(count * work_us * 1e-6 / max(time.process_time() - started, 1e-9)))

    def timed(enabled: bool) -> float:
        with on_a_terminal():
            start = time.process_time()
            with RunProgress(steps, "retrofit", enabled=enabled) as bar:
                for step in range(steps):
                    _work(count)
                    bar.update(step + 1, lambda: 0.5)
            return time.process_time() - start

    shares, extra = [], []
    for repeat in range(repeats):
        if repeat % 2 == 0:
            off, on = timed(False), timed(True)
        else:
            on, off = timed(True), timed(False)
        shares.append(on / off - 1)
        extra.append((on - off) / steps * 1e6)
    return statistics.median(shares), statistics.median(extra)


def sqlite_alone(size: int, rows: int, group: int = 100) -> float:
    """CPU µs per row of SQLite by itself inserting evaluation rows of ``size`` scalars into a new store's
    table, with the store's schema, pragmas and statement, ``group`` rows per commit (the store commits
    in groups too): what any journal that keeps each evaluation's vector pays at least."""
    import sqlite3

    from afterlearner.store import INSERT_EVALUATION, SCHEMA

    generator = np.random.default_rng(0)
    rows_made = [
        (0, i, generator.normal(size=size).astype("<f8").tobytes(), 0.5, "ok", None, 1e-3, time.time(), None)
        for i in range(rows)
    ]
    with tempfile.TemporaryDirectory() as folder:
        connection = sqlite3.connect(Path(folder) / "floor.sqlite")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(SCHEMA)
        start = time.process_time()
        for first in range(0, rows, group):
            with connection:
                connection.executemany(INSERT_EVALUATION, rows_made[first : first + group])
        spent = time.process_time() - start
        connection.close()
    return spent / rows * 1e6


def _work(count: int) -> int:
    total = 0
    for index in range(count):
        total += index * index
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--optimizer", default="OnePlusOne")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"optimizer {args.optimizer}, budget {args.budget}, median of {args.repeats} interleaved repeats "
        f"(ratios: median of per-repeat ratios; best-of: best time over best time); {load()}"
    )
    print(
        f"{'ℵ-scalars':>9s} {'hand µs/eval':>13s} {'al µs/eval':>11s} {'ratio':>6s} "
        f"{'al+store µs/eval':>17s} {'ratio (best-of)':>16s} {'store adds µs':>14s} "
        f"{'bar adds':>9s}  same best losses"
    )
    ratios, adds, bars, floors = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for size in (10, 100, 1000):
            hand, plain, stored, barred = [], [], [], []
            for repeat in range(args.repeats):
                hand.append(hand_loop(size, args.budget, args.optimizer, repeat))
                plain.append(afterlearner_loop(size, args.budget, args.optimizer, repeat, None))
                path = Path(folder) / f"{size}-{repeat}.sqlite"
                stored.append(afterlearner_loop(size, args.budget, args.optimizer, repeat, path))
                path = Path(folder) / f"{size}-{repeat}-bar.sqlite"
                barred.append(with_bar(size, args.budget, args.optimizer, repeat, path))
            h, p, s = (statistics.median(run[0] for run in runs) * 1e6 for runs in (hand, plain, stored))
            ratio = statistics.median(a[0] / b[0] for a, b in zip(plain, hand, strict=True))
            ratio_store = statistics.median(a[0] / b[0] for a, b in zip(stored, hand, strict=True))
            best_store = min(run[0] for run in stored) / min(run[0] for run in hand)  # best time of each
            bar = statistics.median(a[0] / b[0] - 1 for a, b in zip(barred, stored, strict=True))
            same = all(
                a[1] == b[1] == c[1] == d[1] for a, b, c, d in zip(hand, plain, stored, barred, strict=True)
            )
            ratios.append((ratio_store, best_store))
            floor = statistics.median(sqlite_alone(size, args.budget) for _ in range(args.repeats))
            floors.append((size, floor, 0.15 * h))
            adds.append(s - p)
            bars.append(bar)
            print(
                f"{size:9d} {h:13.1f} {p:11.1f} {ratio:6.2f} {s:17.1f} {ratio_store:7.2f} ({best_store:.2f})"
                f" {s - p:14.1f} {100 * bar:+8.1f}%  {'yes' if same else 'NO'}"
            )
    print(
        "SQLite alone, inserting each evaluation's row (grouped commits), against what ≤ 1.15× leaves for "
        "all of afterlearner's work: "
        + "; ".join(f"{size} scalars {floor:.1f} µs of {allowed:.1f}" for size, floor, allowed in floors)
    )
    share, per_step = bar_share(max(args.budget, 6000), args.repeats)
    print(
        f"progress bar alone, drawn on a pseudo-terminal, {max(args.budget, 6000)} steps of ~120 µs: "
        f"{100 * share:+.1f}% ({per_step:+.1f} µs per step), median of {args.repeats} interleaved repeats"
    )
    low, high = min(r[0] for r in ratios), max(r[0] for r in ratios)
    print_table(
        {
            "overhead": f"{low:.2f}–{high:.2f}× median (best-of {min(r[1] for r in ratios):.2f}–"
            f"{max(r[1] for r in ratios):.2f}×; the store adds {min(adds):.0f}–{max(adds):.0f} µs CPU "
            "per evaluation, SQLite's own insert of the row "
            + "/".join(f"{floor:.1f}" for _, floor, _ in floors)
            + " µs at "
            + "/".join(str(size) for size, _, _ in floors)
            + " scalars, where the target leaves "
            + "/".join(f"{allowed:.0f}" for _, _, allowed in floors)
            + " µs for all of it)",
            "progress": f"{100 * min(bars):+.1f}% to {100 * max(bars):+.1f}% (median per size; drawn "
            f"only past 0.5 s); alone, drawn: {100 * share:+.1f}% ({per_step:+.1f} µs per step)",
        }
    )


if __name__ == "__main__":
    main()
