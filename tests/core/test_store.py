"""The journal: resume replays instead of recomputing, survives SIGKILL, refuses foreign files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from paths import TASKS

import afterlearner as al
from afterlearner import store as store_module
from afterlearner.errors import StoreError
from afterlearner.store import COMMIT_INTERVAL, Evaluation

TASK = TASKS / "quadratic_task.py"
AFTERLEARNER = [sys.executable, "-m", "afterlearner"]


def _load():
    return al.load_task(f"{TASK}:task")


def _run(store: Path | None, budget: int = 40, **kwargs) -> al.RetrofitResult:
    task = _load()
    return al.retrofit(task.aleph, task.loss, budget=budget, store=store, progress=False, n=task.n, **kwargs)


def test_resume_replays_without_recomputing(tmp_path) -> None:
    store = tmp_path / "run.sqlite"
    reference = _run(None, seed=5)
    # interrupt after 17 evaluations
    task = _load()
    calls = {"n": 0}

    def loss(model):
        calls["n"] += 1
        if calls["n"] == 18:
            raise KeyboardInterrupt
        return task.loss(model)

    partial = al.retrofit(task.aleph, loss, budget=40, store=store, seed=5, progress=False)
    assert partial.interrupted and partial.evaluations == 17
    with al.Store.open(store, readonly=True) as journal:
        assert journal.runs()[0]["status"] == "interrupted"
    # resume: only the 23 missing evaluations are computed
    task = _load()
    counted = {"n": 0}

    def counting(model):
        counted["n"] += 1
        return task.loss(model)

    resumed = al.retrofit(task.aleph, counting, budget=40, store=store, seed=5, progress=False)
    assert counted["n"] == 23
    assert resumed.evaluations == 40
    assert np.array_equal(resumed.best, reference.best)
    assert resumed.best_loss == reference.best_loss
    # a finished run resumed computes nothing and returns the same thing
    counted["n"] = 0
    again = al.retrofit(task.aleph, counting, budget=40, store=store, seed=5, progress=False)
    assert counted["n"] == 0 and np.array_equal(again.best, reference.best)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [3, 11, 26])
def test_sigkill_at_any_point_then_resume_gives_the_uninterrupted_result(tmp_path, kill_after) -> None:
    store = tmp_path / "killed.sqlite"
    reference = _run(None, seed=7, workers=3)
    env = {**os.environ, "AFTERLEARNER_TEST_SLEEP": "0.02"}
    process = subprocess.Popen(
        [
            *AFTERLEARNER,
            "run",
            f"{TASK}:task",
            "--budget",
            "40",
            "--seed",
            "7",
            "--workers",
            "3",
            "--store",
            str(store),
            "--quiet",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and process.poll() is None:
        if store.exists():
            try:
                with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
                    done = db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= kill_after:
                break
        time.sleep(0.005)
    assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read()!r}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    with al.Store.open(store, readonly=True) as journal:
        journaled = len(journal.evaluations())
    assert kill_after <= journaled < 40
    resumed = _run(store, seed=7, workers=3)
    assert resumed.evaluations == 40
    assert np.array_equal(resumed.best, reference.best)
    with al.Store.open(store, readonly=True) as journal:
        assert [e.idx for e in journal.evaluations()] == list(range(40))


def test_store_made_with_other_settings_is_refused(tmp_path) -> None:
    store = tmp_path / "run.sqlite"
    _run(store, budget=10, seed=1)
    with pytest.raises(StoreError, match="other settings.*seed: store has 1, this run has 2"):
        _run(store, budget=10, seed=2)
    with pytest.raises(StoreError, match="optimizer"):
        _run(store, budget=10, seed=1, optimizer="DiagonalCMA")
    task = _load()
    smaller = al.Aleph(task.aleph.model).add("fc.bias")
    with pytest.raises(StoreError, match="space"):
        al.retrofit(smaller, task.loss, budget=10, seed=1, store=store, progress=False)


def test_files_that_are_not_stores_are_refused(tmp_path) -> None:
    text = tmp_path / "notes.sqlite"
    text.write_text("hello, I am not a database at all, just some words in a file")
    with pytest.raises(StoreError, match="not an afterlearner store"):
        al.Store.open(text)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(StoreError, match="not an afterlearner store"):
        al.Store.open(other)
    with pytest.raises(StoreError, match="not an afterlearner store"):
        _run(other)


def test_corrupt_store_is_refused(tmp_path) -> None:
    store = tmp_path / "run.sqlite"
    _run(store, budget=30)
    with sqlite3.connect(store) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(store.read_bytes())
    page = 4096
    for offset in range(page + 100, len(data), 7):  # scribble over everything after the first page
        data[offset] = (data[offset] * 31 + 17) % 256
    store.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupt"):
        al.Store.open(store)


def test_a_reader_sees_a_run_while_it_is_written(tmp_path) -> None:
    store = tmp_path / "live.sqlite"
    task = _load()
    seen = []

    def loss(model):
        if len(seen) < 3:
            time.sleep(COMMIT_INTERVAL)  # an evaluation this slow is committed as soon as it is told
            with al.Store.open(store, readonly=True) as reader:
                seen.append(len(reader.evaluations()))
        return task.loss(model)

    al.retrofit(task.aleph, loss, budget=10, store=store, progress=False)
    assert seen == [0, 1, 2]


def test_fast_evaluations_are_committed_in_groups(tmp_path, monkeypatch) -> None:
    """Evaluations the run can compute again share commits (at most COMMIT_INTERVAL apart); another
    process sees them once committed, this process at once, and closing the store commits the rest.
    Without ``deferred`` every record is committed at once."""
    interval = 0.5  # long enough that a loaded machine does not pass it by accident
    monkeypatch.setattr(store_module, "COMMIT_INTERVAL", interval)
    path = tmp_path / "groups.sqlite"
    writer = al.Store.open(path)
    writer.bind({"budget": 3})
    writer.start_run(0, 0)
    told = [Evaluation(0, i, np.full(2, float(i)), float(i), "ok", None, 0.0) for i in range(3)]
    for evaluation in told:
        writer.record(evaluation, deferred=True)
    with al.Store.open(path, readonly=True) as reader:
        assert reader.evaluations() == []  # within the interval: not committed yet
    writer.record(Evaluation(0, 3, np.zeros(2), 0.5, "ok", None, 0.0), told=True)  # told: at once
    with al.Store.open(path, readonly=True) as reader:
        assert [e.idx for e in reader.evaluations()] == [0, 1, 2, 3]  # with the ones waiting
    writer.record(Evaluation(0, 4, np.zeros(2), 0.25, "ok", None, 0.0), deferred=True)
    assert [e.idx for e in writer.evaluations()] == [0, 1, 2, 3, 4]  # this process sees its own
    writer.record(Evaluation(0, 5, np.zeros(2), 0.125, "ok", None, 0.0), deferred=True)
    time.sleep(2 * interval)  # no other commit comes: the timer commits it
    with al.Store.open(path, readonly=True) as reader:
        assert [e.idx for e in reader.evaluations()] == [0, 1, 2, 3, 4, 5]
    writer.record(Evaluation(0, 6, np.zeros(2), 0.0, "ok", None, 0.0), deferred=True)
    writer.record(Evaluation(0, 7, np.zeros(2), 0.0, "ok", None, 0.0), deferred=True)
    writer.close()
    with al.Store.open(path, readonly=True) as reader:
        assert len(reader.evaluations()) == 8
    writer = al.Store.open(path)
    writer.record(Evaluation(0, 8, np.zeros(2), 0.0, "ok", None, 0.0))
    with al.Store.open(path, readonly=True) as reader:
        assert len(reader.evaluations()) == 9
    writer.close()


def test_a_store_of_the_first_layout_gets_the_added_columns_and_resumes(tmp_path) -> None:
    """A store written before ``ADDED_COLUMNS`` existed (its tables without them) opens, gains the
    columns, and a run in it resumes; a new store has the same columns from the start."""
    path = tmp_path / "first.sqlite"
    fresh = store_module.Store.open(tmp_path / "fresh.sqlite")
    fresh_columns = {
        table: [row[1] for row in fresh.connection.execute(f"PRAGMA table_info({table})")]
        for table in ("runs", "evaluations")
    }
    fresh.close()
    first = store_module.SCHEMA
    for table, column, declaration in store_module.ADDED_COLUMNS:
        first = first.replace(f", {column} {declaration}", "", 1) if table == "runs" else first
    first = first.replace(" finished REAL NOT NULL, guards TEXT,", " finished REAL NOT NULL,")
    with sqlite3.connect(path) as connection:
        connection.executescript(first)
        connection.execute("INSERT INTO meta VALUES ('format', ?)", (store_module.FORMAT,))
        connection.execute("INSERT INTO meta VALUES ('version', ?)", (store_module.VERSION,))
        assert "guards" not in {row[1] for row in connection.execute("PRAGMA table_info(evaluations)")}
        assert "wall_time" not in {row[1] for row in connection.execute("PRAGMA table_info(runs)")}
    connection.close()
    opened = store_module.Store.open(path)
    columns = {
        table: [row[1] for row in opened.connection.execute(f"PRAGMA table_info({table})")]
        for table in ("runs", "evaluations")
    }
    opened.close()
    assert columns == fresh_columns
    aleph = al.Aleph(torch_layer()).add("bias")
    result = al.retrofit(aleph, _bias_loss, budget=6, seed=0, store=path, progress=False)
    assert result.evaluations == 6


def torch_layer():
    import torch

    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def _bias_loss(model) -> float:
    return float(model.bias.detach().square().sum())
