"""``afterlearner run``: time limit then resume, target, what it says it does, --version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from paths import TASKS

import afterlearner as al
from afterlearner.cli import main

TASK = TASKS / "quadratic_task.py"
AFTERLEARNER = [sys.executable, "-m", "afterlearner"]


def _best(store: Path) -> tuple[np.ndarray, list[float | None]]:
    with al.Store.open(store, readonly=True) as journal:
        return journal.runs()[0]["best_vector"], [e.loss for e in journal.evaluations()]


@pytest.mark.slow
def test_time_limit_then_resume_equals_the_uninterrupted_run(tmp_path) -> None:
    whole, limited = tmp_path / "whole.sqlite", tmp_path / "limited.sqlite"
    base = ["run", f"{TASK}:task", "--budget", "40", "--seed", "4", "--quiet"]
    env = {**os.environ, "AFTERLEARNER_TEST_SLEEP": "0.05"}
    stopped = subprocess.run(
        [*AFTERLEARNER, *base, "--store", str(limited), "--time-limit", "0.6"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "stopped: time limit" in stopped.stdout
    with al.Store.open(limited, readonly=True) as journal:
        run = journal.runs()[0]
    assert run["status"] == "stopped: time limit" and 0 < run["evaluations"] < 40
    assert main([*base, "--store", str(limited)]) == 0  # no limit: on to the full budget
    assert main([*base, "--store", str(whole)]) == 0
    resumed_best, resumed_losses = _best(limited)
    whole_best, whole_losses = _best(whole)
    assert np.array_equal(resumed_best, whole_best) and resumed_losses == whole_losses


def test_target_stops_the_run_when_reached(tmp_path, capsys) -> None:
    store = tmp_path / "s.sqlite"
    args = ["run", f"{TASK}:task", "--budget", "40", "--quiet", "--store", str(store), "--target", "0.3"]
    assert main(args) == 0
    assert "stopped: target reached" in capsys.readouterr().out
    _, losses = _best(store)
    assert losses[-1] <= 0.3 and all(loss > 0.3 for loss in losses[:-1])


def test_run_says_what_it_does_before_each_phase(tmp_path, capsys) -> None:
    assert main(["run", f"{TASK}:task", "--budget", "5", "--quiet"]) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0].startswith("building the task")
    assert any(line.startswith("built quadratic in") for line in lines)
    assert any(line.startswith("evaluator: in this process") and "opaque" in line for line in lines)
    assert any(line.startswith("λ = 1 (default)") for line in lines)


def test_the_evaluator_line_names_the_prefix_cache(tmp_path, capsys) -> None:
    task_file = tmp_path / "cached.py"
    task_file.write_text(
        "import torch, afterlearner as al\n"
        "def task():\n"
        "    torch.manual_seed(0)\n"
        "    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))\n"
        "    x = torch.randn(64, 8); y = torch.randint(0, 3, (64,))\n"
        "    aleph = al.Aleph(model).add('2.bias')\n"
        "    loss = al.DatasetLoss(x, y, metric=al.losses.error_rate)\n"
        "    return al.Task(aleph=aleph, loss=loss, n=64, name='cached')\n"
    )
    assert main(["run", str(task_file), "--budget", "5", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "probing the forward pass" in err
    assert "evaluator: in this process, one candidate at a time; prefix cache: " in err


@pytest.mark.slow
def test_version() -> None:
    out = subprocess.run([*AFTERLEARNER, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"afterlearner {al.__version__}"
