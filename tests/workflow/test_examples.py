"""The task files in examples/: each runs through the real command line at its default budget, improves
on the trained model, and builds the same model bit for bit whatever the process's thread settings."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from paths import ROOT
from threadpoolctl import threadpool_limits

import afterlearner as al

EXAMPLES = ROOT / "examples"
NAMES = ["recall_at_precision", "regression_calibration", "sklearn_threshold"]


def afterlearner_command(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m afterlearner ARGS`` in a subprocess importing this checkout's ``src``."""
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "afterlearner", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path},
        timeout=300,
    )


def spec(name: str) -> str:
    return f"{EXAMPLES / name}.py:task"


def fingerprint(task: al.Task) -> list[bytes]:
    """The bytes of everything trained: the torch model's state, or the fitted scikit-learn pipeline."""
    if task.aleph.model is not None:
        return [tensor.numpy().tobytes() for tensor in task.aleph.model.state_dict().values()]
    classifier = next(entry.owner for entry in task.aleph if entry.name == "ReweightedClassifier.confidence")
    scaler, regression = classifier.pipeline[0], classifier.pipeline[-1]
    fitted = (scaler.mean_, scaler.scale_, regression.coef_, regression.intercept_)
    return [array.tobytes() for array in fitted]


def build_with_threads(name: str, threads: int) -> al.Task:
    """Build the task the way a worker with ``threads`` torch and BLAS threads would."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            return al.load_task(spec(name))
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("name", NAMES)
def test_building_twice_gives_the_same_model_bit_for_bit(name: str) -> None:
    # Worker processes (--processes, --dask) each call the factory, with one torch thread while the
    # main process has several: the retrofit is only sound if they all hold the same model.
    first, second = build_with_threads(name, 1), build_with_threads(name, 2)
    assert fingerprint(first) == fingerprint(second)
    identity = first.aleph.identity()
    first.aleph.write(identity)
    second.aleph.write(identity)
    assert first.loss(first.aleph.model) == second.loss(second.aleph.model)


@pytest.fixture(scope="module")
def journaled_run(tmp_path_factory: pytest.TempPathFactory):
    """Run an example once through ``afterlearner run`` at its default budget; its store's run row."""
    runs: dict[str, dict] = {}

    def run(name: str) -> dict:
        if name not in runs:
            folder = tmp_path_factory.mktemp(name)
            store = folder / "run.sqlite"
            finished = afterlearner_command("run", spec(name), "--store", str(store), "--quiet", cwd=folder)
            assert finished.returncode == 0, finished.stderr
            assert "held-out loss, retrofitted" in finished.stdout
            with al.Store.open(store, readonly=True) as journal:
                (runs[name],) = journal.runs()
        return runs[name]

    return run


def load_example(name: str) -> ModuleType:
    """The example file as a module, for its helpers (the metric, the data split)."""
    module_spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_example_runs_from_the_command_line_and_beats_the_trained_model(name: str, journaled_run) -> None:
    run = journaled_run(name)
    task = al.load_task(spec(name))
    assert run["status"] == "finished" and run["evaluations"] == task.budget
    # Better on the ℵ-set, and the gain holds on the disjoint held-out set.
    assert run["best_loss"] < run["initial_loss"]
    assert run["test_best"] < run["test_initial"]
    # The journaled best candidate gives its journaled loss when written into a freshly built task.
    task.aleph.write(run["best_vector"])
    assert task.loss(task.aleph.model) == run["best_loss"]


@pytest.mark.slow
def test_recall_example_meets_the_precision_constraint(journaled_run) -> None:
    run = journaled_run("recall_at_precision")
    example = load_example("recall_at_precision")
    task, split = example.task(), example.make_split()
    model = task.aleph.model
    with torch.no_grad():
        _, recall_before = example.precision_recall(model(split.x_aleph), split.y_aleph)
        task.aleph.write(run["best_vector"])
        precision, recall = example.precision_recall(model(split.x_aleph), split.y_aleph)
        test_precision, _ = example.precision_recall(model(split.x_test), split.y_test)
    assert precision >= example.MIN_PRECISION and run["best_loss"] == pytest.approx(1 - recall)
    assert recall > recall_before
    # The held-out loss encodes the same constraint: at most 1 means it holds on new data too.
    assert run["test_best"] <= 1.0 and test_precision >= example.MIN_PRECISION


@pytest.mark.slow
def test_calibration_example_moves_predictions_down_towards_typical_trips(journaled_run) -> None:
    # The docstring's explanation: MSE predicts the mean, which delays pull above a typical trip.
    run = journaled_run("regression_calibration")
    example = load_example("regression_calibration")
    task, trips = example.task(), example.generate_trips()
    with torch.no_grad():
        trained = task.aleph.model(trips.x_aleph)
        task.aleph.write(run["best_vector"])
        retrofitted = task.aleph.model(trips.x_aleph)
    assert float(np.median((retrofitted / trained).numpy())) < 1.0
