"""Seeing what happened: the evaluations as a table (CSV, pandas), best values by name, the plots."""

from __future__ import annotations

import csv
import io
import math
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from paths import TASKS

import afterlearner as al
from afterlearner import history, report
from afterlearner.cli import main
from afterlearner.errors import ConfigError, StoreError
from afterlearner.retrofit import settings_of
from afterlearner.store import COMMIT_INTERVAL

QUADRATIC = TASKS / "quadratic_task.py"
WIDE = TASKS / "wide_task.py"
TARGET = torch.tensor([0.5, -0.25, 0.75, -1.0])
BUDGET = 12
#: Loss calls that raise: run 0's evaluation 2, and run 1's first evaluation (the trained model).
FAILING_CALLS = (3, BUDGET + 1)
LABELS = [
    *(f"bias[{i}]" for i in range(4)),
    *(f"weight[{i},:]" for i in range(4)),
    "temperature",
]


def _tiny(failing_calls=FAILING_CALLS, interrupt_at: int | None = None):
    """A 4→3 linear layer: bias offsets, a factor per weight row, and a temperature (a hyperparameter)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 4)
    config = {"temperature": 2.0}
    calls = {"n": 0}

    def test_loss(m) -> float:
        return float(((m.bias - TARGET) ** 2).sum()) + (config["temperature"] - 1.0) ** 2

    def loss(m) -> float:
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt
        if calls["n"] in failing_calls:
            raise ValueError(f"bad candidate at call {calls['n']}")
        return test_loss(m) + 0.01 * float(m.weight.sum())

    aleph = al.Aleph(model).add("bias").add("weight", mode="scale", per="row")
    aleph.hyper(config, "temperature", low=0.1, high=10.0, log=True, name="temperature")
    return aleph, loss, test_loss


def _journal(path: Path):
    with al.Store.open(path, readonly=True) as store:
        return store.settings(), store.evaluations(), store.runs()


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """Two finished runs of 12 evaluations, each with one failure, and the held-out losses."""
    path = tmp_path_factory.mktemp("finished") / "s.sqlite"
    aleph, loss, test_loss = _tiny()
    al.retrofit(
        aleph, loss, budget=BUDGET, runs=2, seed=1, store=path, test_loss=test_loss, n=50, progress=False,
        name="tiny",
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """One run stopped by Ctrl-C after 7 evaluations."""
    path = tmp_path_factory.mktemp("interrupted") / "s.sqlite"
    aleph, loss, _ = _tiny(interrupt_at=8)
    result = al.retrofit(aleph, loss, budget=BUDGET, seed=2, store=path, progress=False, name="tiny")
    assert result.interrupted and result.evaluations == 7
    return path


def _csv(path: Path) -> list[list[str]]:
    settings, evaluations, _ = _journal(path)
    text = io.StringIO()
    history.write_csv(settings, evaluations, text)
    return list(csv.reader(io.StringIO(text.getvalue())))


def test_csv_header_labels_and_one_row_per_evaluation(finished) -> None:
    header, *rows = _csv(finished)
    assert header == [*history.COLUMNS, *LABELS]
    assert len(rows) == 2 * BUDGET and all(len(row) == len(header) for row in rows)
    assert [(row[0], row[1]) for row in rows[:2]] == [("0", "0"), ("0", "1")]
    assert rows[BUDGET][:2] == ["1", "0"]


def test_best_so_far_is_per_run_and_skips_failures(finished) -> None:
    header, *rows = _csv(finished)
    column = {name: header.index(name) for name in history.COLUMNS}
    failed = [row for row in rows if row[column["status"]] == "failed"]
    assert [(row[0], row[1]) for row in failed] == [("0", "2"), ("1", "0")]
    assert all(row[column["loss"]] == "" and "bad candidate" in row[column["error"]] for row in failed)
    for run in ("0", "1"):
        losses = [row[column["loss"]] for row in rows if row[0] == run]
        shown = [row[column["best_so_far"]] for row in rows if row[0] == run]
        expected, best = [], math.inf
        for loss in losses:
            best = min(best, float(loss)) if loss else best
            expected.append("" if best == math.inf else repr(best))
        assert shown == expected
    # run 1 starts with a failure: no best so far yet, whatever run 0 found
    run_1 = [row for row in rows if row[0] == "1"]
    assert (
        run_1[0][column["best_so_far"]] == "" and run_1[1][column["best_so_far"]] == run_1[1][column["loss"]]
    )


def test_csv_round_trips_every_vector_and_loss_exactly(finished, tmp_path) -> None:
    settings, evaluations, _ = _journal(finished)
    path = tmp_path / "evaluations.csv"
    history.write_csv(settings, evaluations, path)
    with path.open(newline="") as handle:
        _, *rows = list(csv.reader(handle))
    offset = len(history.COLUMNS)
    for row, evaluation in zip(rows, evaluations, strict=True):
        vector = np.array([float(cell) for cell in row[offset:]])
        assert np.array_equal(vector, evaluation.vector)
        assert (float(row[3]) if row[3] else None) == evaluation.loss
        assert float(row[5]) == evaluation.wall_time


def test_trained_values_in_searched_units(finished) -> None:
    settings, evaluations, runs = _journal(finished)
    assert history.searched_units(settings["space"]) == ["offset"] * 4 + ["factor"] * 4 + ["value"]
    trained = history.trained_vector(settings["space"], evaluations[0].vector)
    assert trained[:8].tolist() == [0.0] * 4 + [1.0] * 4
    # a hyperparameter's trained value is what the first evaluation (the trained model) used: Nevergrad's
    # log-scale parameter gives 2.0 back only to rounding
    assert trained[8] == evaluations[0].vector[8] == pytest.approx(2.0, rel=1e-12)


def test_show_csv_alone_on_stdout(finished, tmp_path, capsys) -> None:
    assert main(["show", str(finished), "--csv"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(captured.out)))
    assert rows == _csv(finished)  # nothing but the CSV: no run table, no message
    assert captured.err == ""
    path = tmp_path / "out.csv"
    assert main(["show", str(finished), "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"24 evaluations written to {path}" in out and "finished" in out  # the run table, then the file
    assert list(csv.reader(path.open(newline=""))) == rows


def test_show_csv_on_a_store_being_written(tmp_path, capsys) -> None:
    store = tmp_path / "live.sqlite"
    aleph, loss, _ = _tiny(failing_calls=())
    calls, seen = [0], []

    def reading_loss(model) -> float:
        calls[0] += 1
        if calls[0] == 6:  # five evaluations are journaled, the run is still being written
            time.sleep(2 * COMMIT_INTERVAL)  # fast evaluations are committed within the interval
            assert main(["show", str(store), "--csv"]) == 0
            seen.append(list(csv.reader(io.StringIO(capsys.readouterr().out))))
        return loss(model)

    al.retrofit(aleph, reading_loss, budget=8, store=store, progress=False)
    header, *rows = seen[0]
    assert header[: len(history.COLUMNS)] == list(history.COLUMNS) and len(rows) == 5


def _value_rows(out: str) -> dict[str, list[str]]:
    """The rows of --values tables by label (the first cell), for the labels of the tiny space."""
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0] in LABELS:
            rows.setdefault(cells[0], []).append(cells)
    return rows


def test_show_values_of_finished_runs(finished, capsys) -> None:
    settings, evaluations, runs = _journal(finished)
    assert main(["show", str(finished), "--values"]) == 0
    out = capsys.readouterr().out
    assert "run 0 (finished, 12 evaluations, 1 failed): best ℵ-loss" in out
    assert "run 1 (finished, 12 evaluations, 1 failed)" in out
    rows = _value_rows(out)
    assert len(rows["bias[0]"]) == 2  # one table per run
    for run_index, run in enumerate(runs):
        best = run["best_vector"]
        first = evaluations[run_index * BUDGET].vector
        for position, label in enumerate(LABELS):
            cells = rows[label][run_index]
            trained = 0.0 if position < 4 else 1.0 if position < 8 else first[8]
            searched = "offset" if position < 4 else "factor" if position < 8 else "value"
            assert cells[1:5] == [
                searched,
                f"{trained:.6g}",
                f"{best[position]:.6g}",
                f"{best[position] - trained:+.6g}",
            ]
    assert f"at evaluation {al.store.best_evaluation(evaluations[:BUDGET]).idx};" in out


def test_show_values_of_an_interrupted_run(interrupted, capsys) -> None:
    settings, evaluations, runs = _journal(interrupted)
    assert runs[0]["status"] == "interrupted"
    best = al.store.best_evaluation(evaluations)
    assert main(["show", str(interrupted), "--values"]) == 0
    out = capsys.readouterr().out
    assert (
        f"run 0 (interrupted, 7 evaluations, 1 failed): best ℵ-loss {best.loss:.6g} at evaluation {best.idx}"
        in out
    )
    assert _value_rows(out)["temperature"][0][3] == f"{best.vector[-1]:.6g}"


def test_a_killed_run_without_a_recorded_best_uses_its_evaluations(interrupted, tmp_path, capsys) -> None:
    killed = tmp_path / "killed.sqlite"
    shutil.copy(interrupted, killed)
    with sqlite3.connect(killed) as db:  # what SIGKILL leaves: the run still 'running', no best recorded
        db.execute("UPDATE runs SET status = 'running', best_vector = NULL, best_loss = NULL")
    settings, evaluations, runs = _journal(killed)
    expected = al.store.best_evaluation(evaluations)
    best = history.best_of_run(runs[0], evaluations)
    assert (best.index, best.loss) == (expected.idx, expected.loss)
    assert np.array_equal(best.vector, expected.vector)
    assert main(["show", str(killed), "--values"]) == 0
    assert (
        f"run 0 (running, 7 evaluations, 1 failed): best ℵ-loss {expected.loss:.6g}"
        in capsys.readouterr().out
    )
    assert history.best_of_run({"best_vector": None}, [e for e in evaluations if not e.ok]) is None


def test_show_values_with_the_task_shows_the_model_tensors(tmp_path, capsys) -> None:
    store = tmp_path / "q.sqlite"
    assert main(["run", f"{QUADRATIC}:task", "--budget", "15", "--store", str(store), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["show", str(store), "--values", "--task", f"{QUADRATIC}:task"]) == 0
    out = capsys.readouterr().out
    _, _, runs = _journal(store)
    aleph = al.load_task(f"{QUADRATIC}:task").aleph
    trained = aleph.values(aleph.identity())
    retrofitted = aleph.values(runs[0]["best_vector"])
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("fc.")}
    assert lines["fc.bias[2]"][5:] == [
        "element",
        f"{trained['fc.bias'][2]:.6g}",
        f"{retrofitted['fc.bias'][2]:.6g}",
    ]
    row_norm = np.linalg.norm(retrofitted["fc.weight"][1].astype(float))
    assert lines["fc.weight[1,:]"][5] == "‖row‖" and lines["fc.weight[1,:]"][7] == f"{row_norm:.6g}"
    norm = np.linalg.norm(retrofitted["fc.weight"].astype(float))
    assert lines["fc.weight"][1:5] == ["4×3", "factor", "per", "row"]
    assert lines["fc.weight"][6] == f"{norm:.6g}" and lines["fc.weight"][-1] == "12/12"


def test_a_task_with_another_space_is_refused(finished, capsys) -> None:
    assert main(["show", str(finished), "--values", "--task", f"{QUADRATIC}:task"]) == 2
    err = capsys.readouterr().err
    assert "the task's ℵ-space is not the one" in err and "fc.bias[4]" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--csv", "--values"], "give it a FILE for --values"),
        (["--task", f"{QUADRATIC}:task"], "--task is used by --values"),
    ],
)
def test_show_option_errors_are_one_line(finished, extra, message, capsys) -> None:
    assert main(["show", str(finished), *extra]) == 2
    assert message in capsys.readouterr().err


def test_an_empty_store_has_nothing_to_show(tmp_path, capsys) -> None:
    path = tmp_path / "empty.sqlite"
    al.Store.open(path).close()
    assert main(["show", str(path), "--csv"]) == 2
    assert "has no run yet" in capsys.readouterr().err


def test_dataframe_equals_the_csv(finished) -> None:
    import pandas

    settings, evaluations, _ = _journal(finished)
    frame = history.dataframe(settings, evaluations)
    text = io.StringIO()
    history.write_csv(settings, evaluations, text)
    text.seek(0)
    pandas.testing.assert_frame_equal(frame, pandas.read_csv(text))
    assert frame["loss"].isna().sum() == 2 and list(frame.columns[-1:]) == ["temperature"]


def test_dataframe_without_pandas_says_how_to_install_it(finished, monkeypatch) -> None:
    settings, evaluations, _ = _journal(finished)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ConfigError, match="pip install pandas"):
        history.dataframe(settings, evaluations)


def test_a_vector_of_the_wrong_size_is_refused(finished) -> None:
    settings, evaluations, _ = _journal(finished)
    with pytest.raises(StoreError, match="has 9 values, the store's ℵ-space has 8"):
        history.table({**settings, "space": settings["space"][:2]}, evaluations)


@pytest.mark.parametrize(
    ("losses", "scale"),
    [
        ([2.0, 0.5, 0.01, None], "log"),  # more than a decade, a failure aside
        ([0.3, 0.25, 0.2, 0.21], "linear"),
        ([1.0, -0.5, 0.001], "linear"),  # not all positive
        ([0.0, 0.5], "linear"),
        ([None, 0.4], "linear"),
    ],
)
def test_log_scale_when_positive_losses_span_a_decade(losses, scale) -> None:
    assert report.loss_scale(losses) == scale
    figure = report.convergence_figure({"run": losses})
    assert figure.axes[0].get_yscale() == scale


def test_far_outliers_are_drawn_at_the_edge_and_the_best_so_far_stays_in_range() -> None:
    rng = np.random.default_rng(0)
    losses = [0.9, *rng.uniform(0.2, 0.9, size=60).tolist(), -0.5, 1e6, 3e6]
    low, high = report.loss_limits(losses, report.best_so_far(losses), "linear")
    assert low < -0.5 and 0.9 < high < 2.0
    figure = report.convergence_figure({"run": losses})
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert "run: 2 above the range" in legend
    # the outliers span decades, but the range shown does not: no log scale for them
    assert figure.axes[0].get_yscale() == "linear"
    positive = [loss for loss in losses if loss > 0]
    assert report.loss_scale(positive) == "log" and report.loss_axis(positive, [0.2])[0] == "linear"
    # a loss that keeps shrinking by factors is drawn on a log scale, its outliers still at the edge
    shrinking = [10.0 ** -(i / 10) for i in range(40)] + [1e9]
    scale, (low, high) = report.loss_axis(shrinking, report.best_so_far(shrinking))
    assert scale == "log" and low < shrinking[-2] and 1.0 < high < 10.0
    # losses spread evenly are all shown
    low, high = report.loss_limits([0.1, 0.5, 1.0, 1.5], [1.5], "linear")
    assert high > 1.5


def test_plot_store_marks_failures_held_out_and_the_task(finished, tmp_path) -> None:
    with al.Store.open(finished, readonly=True) as store:
        figure = report.store_figure(store)
        axes = figure.axes[0]
        legend = [text.get_text() for text in axes.get_legend().get_texts()]
        assert "failed (2)" in legend and "held-out, trained" in legend and "held-out, retrofitted" in legend
        assert axes.get_title() == "tiny (s.sqlite)"
        path = report.plot_store(store, tmp_path / "curve.png")
    assert path.stat().st_size > 10_000


def test_plot_params_writes_a_png(finished, tmp_path, capsys) -> None:
    path = tmp_path / "params.png"
    assert main(["show", str(finished), "--plot-params", str(path)]) == 0
    assert f"ℵ-parameter plot written to {path}" in capsys.readouterr().out
    assert path.stat().st_size > 10_000
    settings, evaluations, runs = _journal(finished)
    figure = report.params_figure(settings, evaluations, runs)
    titles = [axes.get_title() for axes in figure.axes if axes.get_visible()]
    assert titles == ["bias: offset per element, 4 scalars", "weight: factor per row, 4 scalars",
                      "temperature: value, 1 scalar"]  # fmt: skip
    assert figure.axes[2].get_yscale() == "log"  # a log-scale hyperparameter


def test_plot_params_names_the_entries_it_leaves_out(tmp_path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(*(torch.nn.Linear(2, 2) for _ in range(7)))
    aleph = al.Aleph(model).add("*")  # 14 tensors
    store = tmp_path / "many.sqlite"
    al.retrofit(aleph, lambda m: float(m[0].weight.sum() ** 2), budget=6, store=store, progress=False)
    settings, evaluations, runs = _journal(store)
    figure = report.params_figure(settings, evaluations, runs)
    assert "only the first 12 of 14 entries" in figure.texts[0].get_text()
    assert sum(axes.get_visible() for axes in figure.axes) == 12


def test_a_thousand_scalars_stay_fast(tmp_path, capsys) -> None:
    store = tmp_path / "wide.sqlite"
    assert main(["run", f"{WIDE}:task", "--store", str(store), "--quiet"]) == 0
    capsys.readouterr()
    started = time.perf_counter()
    assert main(["show", str(store), "--values", "--task", f"{WIDE}:task"]) == 0
    values_seconds = time.perf_counter() - started
    out = capsys.readouterr().out
    assert sum(line.startswith(("weight[", "bias[")) for line in out.splitlines()) == 1025
    assert max(map(len, out.splitlines())) < 140  # a plain table, no wrapping
    started = time.perf_counter()
    assert main(["show", str(store), "--csv"]) == 0
    csv_seconds = time.perf_counter() - started
    assert len(capsys.readouterr().out.splitlines()) == 31
    assert values_seconds < 5 and csv_seconds < 5, (values_seconds, csv_seconds)
    path = report.plot_params(*_journal(store)[:2], tmp_path / "wide.png", runs=_journal(store)[2])
    assert path.stat().st_size > 10_000


def test_best_vectors_so_far_follow_each_run(finished) -> None:
    settings, evaluations, runs = _journal(finished)
    vectors = history.best_vectors_so_far(evaluations, 9, runs)
    assert np.isnan(vectors[BUDGET]).all()  # run 1 starts with a failure: nothing found yet
    assert np.array_equal(vectors[0], evaluations[0].vector) and np.array_equal(vectors[2], vectors[1])
    for run_index, run in enumerate(runs):
        assert np.array_equal(vectors[(run_index + 1) * BUDGET - 1], run["best_vector"])


def test_a_run_without_evaluations_yet(tmp_path, capsys) -> None:
    path = tmp_path / "started.sqlite"
    aleph, _, _ = _tiny()
    with al.Store.open(path) as store:
        store.bind(settings_of(aleph, "OnePlusOne", 5, 1, 1, 0, task="tiny"))
        store.start_run(0, 123)
    assert main(["show", str(path), "--csv"]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == [[*history.COLUMNS, *LABELS]]
    assert main(["show", str(path), "--values", "--plot-params", str(tmp_path / "p.png")]) == 0
    assert "run 0 (running, 0 evaluations, 0 failed): no successful evaluation yet" in capsys.readouterr().out
    assert (tmp_path / "p.png").stat().st_size > 5_000
