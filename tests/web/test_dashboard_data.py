"""What the dashboard reads from stores: runs, incremental evaluations, the axis, best values, CSV."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import nevergrad as ng
import numpy as np
import pytest
from paths import TASKS

from afterlearner.dashboard import data
from afterlearner.online import FeedbackSession, text
from afterlearner.store import Evaluation, Store

SPACE = [
    {"kind": "tensor", "mode": "offset", "name": "fc.bias", "per": "element", "shape": [3], "size": 3},
    {"kind": "tensor", "mode": "scale", "name": "fc.weight", "per": "row", "shape": [2, 4], "size": 2},
]
SETTINGS = {"space": SPACE, "optimizer": "OnePlusOne", "budget": 50, "workers": 1, "runs": 1, "seed": 0}


def start(vector_size: int = 5) -> np.ndarray:
    return np.array([0.0] * 3 + [1.0] * 2)[:vector_size]


def write_store(path: Path, losses: list[float | None], settings: dict | None = None, run: int = 0) -> Store:
    """A writable store with one run of ``losses`` (None: a failed evaluation); the caller closes it."""
    store = Store.open(path)
    store.bind({**SETTINGS, "n": 100, "task": "synthetic", **(settings or {})})
    store.start_run(run, seed=1)
    add(store, losses, run=run)
    return store


def add(store: Store, losses: list[float | None], run: int = 0) -> None:
    first = len(store.evaluations(run))
    rng = np.random.default_rng(first)
    for offset, loss in enumerate(losses):
        idx = first + offset
        vector = start() if idx == 0 else start() + rng.normal(0, 0.1, 5)
        status = "ok" if loss is not None else "failed"
        store.record(Evaluation(run, idx, vector, loss, status, None if loss is not None else "boom", 0.01))


def test_runs_show_live_figures_of_a_running_run(tmp_path: Path) -> None:
    writer = write_store(tmp_path / "a.sqlite", [0.8, 0.5, None, 0.3, 0.6])
    with Store.open(tmp_path / "a.sqlite", readonly=True) as store:
        (row,) = data.runs(store, store_index=2, now=writer.runs()[0]["started"] + 10)
    assert row["key"] == "2-0" and row["status"] == "running" and row["budget"] == 50
    assert (row["evaluations"], row["failures"], row["before"], row["best"]) == (5, 1, 0.8, 0.3)
    assert row["bound"] is not None and row["bound"] > 0  # n=100, OnePlusOne: report.store_rows' bound
    assert row["test_before"] is None and not row["possibly_killed"]
    writer.finish_run(0, "finished", initial_loss=0.8, best_loss=0.3, test_initial=0.9, test_best=0.4)
    with Store.open(tmp_path / "a.sqlite", readonly=True) as store:
        (row,) = data.runs(store, store_index=2)
    assert row["status"] == "finished" and row["quiet"] is None
    assert (row["test_before"], row["test_after"]) == (0.9, 0.4)
    writer.close()


def test_a_running_run_without_news_is_flagged(tmp_path: Path) -> None:
    writer = write_store(tmp_path / "a.sqlite", [0.8])
    with Store.open(tmp_path / "a.sqlite", readonly=True) as store:
        last = store.connection.execute("SELECT MAX(finished) FROM evaluations").fetchone()[0]
        (row,) = data.runs(store, 0, now=last + data.QUIET_SECONDS + 1)
    assert row["possibly_killed"] and row["quiet"] > data.QUIET_SECONDS
    writer.close()


def test_new_evaluations_are_sent_once_and_the_cursor_follows(tmp_path: Path) -> None:
    writer = write_store(tmp_path / "a.sqlite", [0.8, None, 0.5])
    reader = Store.open(tmp_path / "a.sqlite", readonly=True)
    first = data.new_evaluations(reader, 0, data.Cursor())
    assert first["idx"] == [0, 1, 2] and first["loss"] == [0.8, None, 0.5]
    assert first["failed"] == [False, True, False] and not first["reset"]
    cursor = data.Cursor.parse(first["cursor"])
    nothing = data.new_evaluations(reader, 0, cursor)
    assert nothing["idx"] == [] and not nothing["reset"] and nothing["cursor"] == first["cursor"]
    add(writer, [0.4, 0.45])  # the run goes on while the dashboard reads
    more = data.new_evaluations(reader, 0, cursor)
    assert more["idx"] == [3, 4] and more["loss"] == [0.4, 0.45] and not more["reset"]
    reader.close()
    writer.close()


def test_rows_taken_back_make_the_run_be_sent_again(tmp_path: Path) -> None:
    session = FeedbackSession(
        ng.p.Array(init=np.zeros(2)), lambda v: text(str(v)), k=2, budget=3, store=tmp_path / "f.sqlite"
    )
    for choice in (0, 1):
        session.answer(session.propose().id, {"kind": "best", "choice": choice})
    reader = Store.open(tmp_path / "f.sqlite", readonly=True)
    seen = data.new_evaluations(reader, 0, data.Cursor())
    assert seen["idx"] == [0, 1, 2, 3, 4]
    session.undo()  # evaluations 3 and 4 are taken back ...
    session.answer(session.propose().id, {"kind": "none"})  # ... and told again, other losses, same count
    again = data.new_evaluations(reader, 0, data.Cursor.parse(seen["cursor"]))
    assert again["reset"] and again["idx"] == [0, 1, 2, 3, 4] and again["loss"][3:] != seen["loss"][3:]
    reader.close()
    session.close()


@pytest.mark.parametrize("text_", ["", "x", "1:2", "-1:0:0", "1:2:nan", "a:b:c"])
def test_a_malformed_cursor_starts_over(text_: str) -> None:
    assert data.Cursor.parse(text_) == data.Cursor()


def test_the_axis_follows_the_show_rules(tmp_path: Path) -> None:
    decades = write_store(tmp_path / "a.sqlite", [1.0, 0.1, 0.01, 0.002, 0.5])
    flat = write_store(tmp_path / "b.sqlite", [0.5, 0.45, 0.4, 0.42, -0.1])
    readers = [Store.open(tmp_path / name, readonly=True) for name in ("a.sqlite", "b.sqlite")]
    log = data.axis(readers, [(0, 0)], [None, None])
    assert log["scale"] == "log" and log["limits"][0] < 0.002 and log["limits"][1] > 1.0
    linear = data.axis(readers, [(1, 0)], [0.6, None])
    assert linear["scale"] == "linear" and linear["limits"][1] > 0.6  # the held-out loss is in range
    assert data.axis(readers, [], [])["limits"] is None
    for store in [*readers, decades, flat]:
        store.close()


def test_parameters_of_a_small_space(tmp_path: Path) -> None:
    writer = write_store(tmp_path / "a.sqlite", [0.8, 0.5, None, 0.3, 0.6])
    with Store.open(tmp_path / "a.sqlite", readonly=True) as store:
        result = data.parameters(store, 0)
        best = store.evaluations(0)[3].vector
    assert result["best_index"] == 3 and result["best_loss"] == 0.3 and result["listed"] == "all"
    labels = [row[0] for row in result["values"]]
    assert labels == ["fc.bias[0]", "fc.bias[1]", "fc.bias[2]", "fc.weight[0,:]", "fc.weight[1,:]"]
    assert [row[1] for row in result["values"]] == ["offset"] * 3 + ["factor"] * 2
    assert [row[2] for row in result["values"]] == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert [row[3] for row in result["values"]] == best.tolist()
    charts = result["charts"]
    assert charts["idx"] == [0, 1, 2, 3, 4] and charts["failed"] == [False, False, True, False, False]
    assert charts["best"][0][4] == best[0] and charts["best"][0][2] == charts["best"][0][1]
    writer.close()


def test_a_large_space_gets_a_summary_and_its_largest_changes(tmp_path: Path) -> None:
    space = [{"kind": "tensor", "mode": "offset", "name": "w", "per": "element", "shape": [300], "size": 300}]
    store = Store.open(tmp_path / "w.sqlite")
    store.bind({**SETTINGS, "space": space})
    store.start_run(0, seed=1)
    moved = np.zeros(300)
    moved[[7, 250]] = [0.5, -2.0]
    store.record(Evaluation(0, 0, np.zeros(300), 1.0, "ok", None, 0.0))
    store.record(Evaluation(0, 1, moved, 0.5, "ok", None, 0.0))
    result = data.parameters(store, 0)
    assert result["charts"] is None and result["listed"] == "largest"
    assert len(result["values"]) == data.LARGEST_LISTED
    assert [row[0] for row in result["values"][:2]] == ["w[250]", "w[7]"]
    (entry,) = result["summary"]
    assert entry == {
        "name": "w",
        "scalars": 300,
        "moved": 2,
        "mean_change": 2.5 / 300,
        "largest_change": 2.0,
        "largest_at": "w[250]",
    }
    store.close()


def test_csv_of_a_plain_parametrization_store(tmp_path: Path) -> None:
    session = FeedbackSession(
        ng.p.Array(init=np.zeros(2)), lambda v: text(str(v)), k=2, budget=2, store=tmp_path / "f.sqlite"
    )
    session.answer(session.propose().id, {"kind": "best", "choice": 1})
    session.close()
    with Store.open(tmp_path / "f.sqlite", readonly=True) as store:
        rows = list(csv.reader(io.StringIO(data.write_csv(store))))
        described = data.describe_store(tmp_path / "f.sqlite", store, 0, None)
    assert rows[0][-2:] == ["value[0]", "value[1]"] and len(rows) == 1 + 3
    assert described["feedback"] and described["export"] is None and described["scalars"] == 2


def test_reading_never_writes_the_store(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    write_store(path, [0.8, 0.5, 0.3]).close()
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    store, problem = data.open_store(path)
    assert store is not None and problem is None
    data.describe_store(path, store, 0, None)
    data.new_evaluations(store, 0, data.Cursor())
    data.parameters(store, 0)
    data.write_csv(store)
    store.close()
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    assert after["a.sqlite"] == before["a.sqlite"]
    # a WAL reader (any SQLite reader) may leave the shared-memory index and an empty log beside it
    assert set(after) - set(before) <= {"a.sqlite-shm", "a.sqlite-wal"}
    assert not (tmp_path / "a.sqlite-wal").exists() or (tmp_path / "a.sqlite-wal").stat().st_size == 0


def test_a_store_that_is_not_there_yet(tmp_path: Path) -> None:
    store, problem = data.open_store(tmp_path / "later.sqlite")
    assert store is None and "not there yet" in problem
    (tmp_path / "other.txt").write_text("hello")
    store, problem = data.open_store(tmp_path / "other.txt")
    assert store is None and "not an afterlearner store" in problem
    described = data.describe_store(tmp_path / "later.sqlite", None, 0, "not there yet")
    assert described["runs"] == [] and described["problem"] == "not there yet"


def test_the_export_command_names_the_task_file_a_run_recorded(tmp_path) -> None:

    from afterlearner.cli import main
    from afterlearner.dashboard.data import describe_store
    from afterlearner.store import Store

    task = TASKS / "quadratic_task.py"
    store = tmp_path / "s.sqlite"
    assert main(["run", str(task), "--budget", "5", "--store", str(store), "--quiet"]) == 0
    with Store.open(store, readonly=True) as journal:
        described = describe_store(store, journal, 0, None)
    assert f"--task {task.resolve()}:task" in described["export"]


def test_infeasible_evaluations_are_sent_with_their_loss_and_are_not_failures(tmp_path: Path) -> None:
    writer = write_store(tmp_path / "a.sqlite", [0.8, 0.5])
    vector = start() + 0.2
    writer.record(Evaluation(0, 2, vector, 0.1, "infeasible", "guard: size 2 > 1 + 0", 0.01, {"size": 2.0}))
    with Store.open(tmp_path / "a.sqlite", readonly=True) as reader:
        sent = data.new_evaluations(reader, 0, data.Cursor())
        (row,) = data.runs(reader, store_index=0)
    assert sent["loss"] == [0.8, 0.5, 0.1]  # drawn where it is, apart from the feasible ones
    assert sent["infeasible"] == [False, False, True] and sent["failed"] == [False, False, False]
    assert row["failures"] == 0 and row["best"] == 0.5  # never the best, and not a failure
    writer.close()
