"""The command line: demo, run (with resume), show (table and plot), and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from paths import ROOT, TASKS

import afterlearner as al
from afterlearner.cli import main

TASK = TASKS / "quadratic_task.py"


@pytest.mark.slow
def test_demo_shows_a_held_out_gain(tmp_path, capsys) -> None:
    plot = tmp_path / "demo.png"
    store = tmp_path / "demo.sqlite"
    assert main(["demo", "--quiet", "--plot", str(plot), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "held-out loss, retrofitted" in out and "overfitting bound" in out
    assert plot.stat().st_size > 10_000
    with al.Store.open(store, readonly=True) as journal:
        run = journal.runs()[0]
    assert run["evaluations"] == 200
    assert run["best_loss"] < run["initial_loss"]
    # the gain holds on the disjoint, balanced held-out set
    assert run["test_best"] < run["test_initial"] - 0.01
    # the README's quick start shows this table: every row but the wall time, as printed
    readme = (ROOT / "README.md").read_text()
    shown = readme[readme.index("```\n┌") : readme.index("┘\n```")]
    printed, expected = _table(out), _table(shown)
    assert printed.pop("wall time") and expected.pop("wall time")
    assert printed == expected


def _table(text: str) -> dict[str, str]:
    """A printed result table's rows, label → value (a value wrapped over lines joined)."""
    rows: dict[str, str] = {}
    label = ""
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if not line.lstrip().startswith("│") or len(cells) != 2:
            continue
        if cells[0]:
            label = cells[0]
            rows[label] = cells[1]
        else:
            rows[label] += " " + cells[1]
    return rows


def test_run_then_resume_then_show(tmp_path, capsys) -> None:
    store = tmp_path / "run.sqlite"
    args = ["run", f"{TASK}:task", "--budget", "25", "--seed", "3", "--store", str(store), "--quiet"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "quadratic" in first and "25 (0)" in first
    assert main(args) == 0  # resumes: everything replayed, same table, said to be complete
    again = capsys.readouterr()
    assert "already complete" in again.out and "already complete" in again.err

    assert _figures(again.out) == _figures(first)  # the original run's wall time too
    plot = tmp_path / "curve.png"
    assert main(["show", str(store), "--plot", str(plot)]) == 0
    shown = capsys.readouterr().out
    assert "finished" in shown and "25/25" in shown and "optimizer auto" in shown
    assert plot.exists()


def _figures(text: str) -> list[list[str]]:
    """The rows of a printed result table, but its status row."""
    rows = [[cell.strip() for cell in line.split("│")] for line in text.splitlines() if "│" in line]
    return [row for row in rows if "status" not in row]


def test_run_factory_defaults_to_task(tmp_path, capsys) -> None:
    assert main(["run", str(TASK), "--budget", "5", "--quiet"]) == 0
    assert "5 (0)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.py:task"], "task file missing.py does not exist"),
        (["run", f"{TASK}:nope"], "has no function 'nope'"),
        (["run", f"{TASK}:task", "--optimizer", "OnePlusOen"], "did you mean OnePlusOne"),
        (["run", f"{TASK}:task", "--budget", "0"], "budget must be an integer >= 1"),
        (["show", "nowhere.sqlite"], "no such store"),
    ],
)
def test_errors_are_one_clear_line(args, message, capsys) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_show_a_file_that_is_not_a_store(tmp_path, capsys) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just notes, certainly not an SQLite database")
    assert main(["show", str(text)]) == 2
    assert "not an afterlearner store" in capsys.readouterr().err


@pytest.mark.slow
def test_progress_bar_shows_the_best_loss_and_quiet_hides_it(tmp_path) -> None:
    command = [sys.executable, "-m", "afterlearner", "run", f"{TASK}:task", "--budget", "10"]
    slow = {**os.environ, "AFTERLEARNER_TEST_SLEEP": "0.1"}  # 1 s of work: longer than the bar's delay
    loud = subprocess.run(command, capture_output=True, text=True, check=True, env=slow)
    assert "10/10" in loud.stdout and "best " in loud.stdout
    quiet = subprocess.run([*command, "--quiet"], capture_output=True, text=True, check=True, env=slow)
    assert "10/10" not in quiet.stdout
    quick = subprocess.run(command, capture_output=True, text=True, check=True)  # done within the delay
    assert "10/10" not in quick.stdout and "ℵ-loss, retrofitted" in quick.stdout


def test_optimizers_lists_names_and_whether_the_bound_applies(capsys) -> None:
    assert main(["optimizers", "--contains", "cma"]) == 0
    out = capsys.readouterr().out
    assert "DiagonalCMA: comparison-based: ranking of evaluated points" in out
    assert main(["optimizers", "--comparison-based"]) == 0
    listed = capsys.readouterr().out
    assert "auto [default]: comparison-based" in listed and "NGOpt" not in listed


def test_a_finished_store_is_answered_without_building_the_task(tmp_path, capsys, monkeypatch) -> None:
    task = tmp_path / "task.py"
    task.write_bytes(TASK.read_bytes())
    store = tmp_path / "run.sqlite"
    args = ["run", f"{task}:task", "--budget", "12", "--store", str(store), "--quiet"]
    assert main(args) == 0
    first = capsys.readouterr().out

    def no_build(spec: str, **kwargs: object) -> None:
        raise AssertionError(f"the task {spec} was built")

    monkeypatch.setattr("afterlearner.task.load_task", no_build)
    assert main(args) == 0
    again = capsys.readouterr()
    assert "already complete" in again.out and "already complete" in again.err
    assert _figures(again.out) == _figures(first) and len(_figures(first)) == 10  # the same table
    for other in (["--seed", "1"], ["--budget", "13"], ["--save", str(tmp_path / "x.safetensors")]):
        with pytest.raises(AssertionError, match="was built"):  # these need the task: the ordinary path
            main(args + other)
    task.write_bytes(TASK.read_bytes() + b"# changed\n")
    with pytest.raises(AssertionError, match="was built"):
        main(args)


@pytest.mark.slow
def test_the_command_line_starts_without_torch_or_nevergrad() -> None:
    """``import afterlearner`` and ``--help`` import neither (seconds each); the names load on use."""
    code = (
        "import sys, afterlearner as al\n"
        "from afterlearner.cli import build_parser\n"
        "build_parser().format_help()\n"
        "print(sorted(m for m in ('torch', 'nevergrad', 'matplotlib', 'sklearn') if m in sys.modules))\n"
        "import afterlearner.retrofit\n"
        "print(callable(al.retrofit) and al.retrofit.__module__, al.losses.__name__, al.Aleph.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "afterlearner.retrofit afterlearner.losses Aleph"]
