"""`afterlearner reproduce`: rows accumulate in results.json, results.md and plots are written."""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap

import numpy as np
import pytest

from afterlearner import experiments
from afterlearner.cli import main
from afterlearner.errors import ConfigError
from afterlearner.evaluators.processes import ProcessEvaluator
from afterlearner.experiments.base import Experiment
from afterlearner.reproduce import load_rows, record, render_markdown, run_experiment, verdict

TOY = textwrap.dedent(
    '''
    """A toy experiment: shift a bias so that a threshold classifier gets more points right."""
    import numpy as np
    import torch

    from afterlearner.space import Aleph
    from afterlearner.task import Task


    def _errors(model, x, shift):
        with torch.no_grad():
            return ((model(x) > 0).float().squeeze(1) != (x.squeeze(1) > shift).float()).float().numpy()


    def _error(model, x, shift):
        return float(_errors(model, x, shift).mean())


    def make_task(reduced=False, shift=0.7, states_n=True):
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        x_aleph = torch.tensor(rng.normal(size=(200 if not reduced else 50, 1)), dtype=torch.float32)
        x_test = torch.tensor(rng.normal(size=(400, 1)), dtype=torch.float32)
        model = torch.nn.Linear(1, 1)
        with torch.no_grad():
            model.weight.fill_(1.0)
            model.bias.fill_(0.0)
        aleph = Aleph(model).add("bias", step=0.3)
        n = len(x_aleph) if states_n else None
        # the held-out loss gives per-sample losses: its gain gets an interval
        return Task(aleph, lambda m: _error(m, x_aleph, shift), lambda m: _errors(m, x_test, shift), n=n)
    '''
)


def bias(task):
    return {"bias": float(task.aleph.model.bias.detach())}


def toy(name: str, shift: float, **settings) -> Experiment:
    """A toy experiment whose task factory lives in a file of its own (worker processes import it)."""
    from toyexp.task import make_task

    return Experiment(
        name=name,
        title="toy threshold",
        metric="error rate",
        make_task=make_task,
        task_options={"shift": shift},
        budget=30,
        optimizer="OnePlusOne",
        extra_metrics=bias,
        **settings,
    )


@pytest.fixture
def toy_experiments(tmp_path, monkeypatch):
    package = tmp_path / "toyexp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    known = {
        "shifted": toy("shifted", 0.7),
        "unshifted": toy("unshifted", 0.0, bound_applies=False, bound_note="nothing to learn"),
    }
    monkeypatch.setattr(experiments, "registry", lambda: known)
    yield tmp_path / "out"
    for name in ("toyexp", "toyexp.task"):
        sys.modules.pop(name, None)


def test_reproduce_one_then_all_accumulates_rows(toy_experiments):
    out = toy_experiments
    assert main(["reproduce", "shifted", "--quiet", "--out", str(out)]) == 0
    rows = load_rows(out)
    assert [row["name"] for row in rows] == ["shifted"]
    row = rows[0]
    assert row["evaluations"] == 30 and row["optimizer"] == "OnePlusOne" and row["n"] == 200
    assert row["aleph_after"] < row["aleph_before"] and row["verdict"] == "holds"
    assert row["test_gain"]["low"] > 0 and row["test_gain"]["p_value"] < 0.05
    assert row["test_after"] < row["test_before"]
    assert row["bound"] is not None and 0 < row["bound"] < 1 and row["bound_note"] == ""
    assert row["extra_before"]["bias"] == 0.0 and row["extra_after"]["bias"] < 0.0
    assert (out / "results" / "shifted.png").stat().st_size > 1000

    assert main(["reproduce", "all", "--quiet", "--out", str(out), "--budget", "10", "--seed", "3"]) == 0
    rows = load_rows(out)
    assert [row["name"] for row in rows] == ["shifted", "unshifted"]
    assert all(row["budget"] == 10 and row["seed"] == 3 for row in rows)
    unshifted = rows[1]
    assert unshifted["bound"] is None and unshifted["bound_note"] == "nothing to learn"
    assert unshifted["aleph_before"] == 0.0 and unshifted["verdict"] == "no gain found on the ℵ-set"
    markdown = (out / "results.md").read_text()
    assert "| shifted | error rate |" in markdown and "| unshifted | error rate |" in markdown
    gain = rows[0]["test_gain"]
    assert f"| {gain['value']:.4g} [{gain['low']:.4g}, {gain['high']:.4g}]: holds |" in markdown
    assert "![convergence of unshifted](results/unshifted.png)" in markdown
    assert json.loads((out / "results.json").read_text()) == rows


def test_parallel_evaluation_gives_the_in_process_result(toy_experiments, monkeypatch):
    """An experiment asking for λ = 3 and 2 worker processes: same result with 1 process, reduced too."""
    parallel_experiment = toy("parallel", 0.7, workers=3, processes=2)
    batches: list[int] = []
    evaluate = ProcessEvaluator.evaluate

    def counted(self, vectors):
        batches.append(len(vectors))
        return evaluate(self, vectors)

    monkeypatch.setattr(ProcessEvaluator, "evaluate", counted)
    for reduced in (False, True):
        runs = {
            processes: run_experiment(
                parallel_experiment,
                budget=12,
                seed=1,
                reduced=reduced,
                progress=False,
                out=toy_experiments,
                processes=processes,
            )
            for processes in (None, 1)  # None: the experiment's processes (2)
        }
        (parallel, parallel_result), (alone, alone_result) = runs[None], runs[1]
        assert parallel["processes"] == 2 and alone["processes"] == 1
        assert parallel["workers"] == alone["workers"] == 3
        assert parallel["n"] == (50 if reduced else 200)
        # equal losses: the workers built the same task (reduced or not) and λ does not follow processes
        assert parallel_result.losses() == alone_result.losses() and len(alone_result.losses()) == 12
        assert np.array_equal(parallel_result.best, alone_result.best)
        varying = ("processes", "wall_time", "setup_time", "date")
        assert {k: v for k, v in parallel.items() if k not in varying} == {
            k: v for k, v in alone.items() if k not in varying
        }
    assert batches and max(batches) == 3  # the 2-process runs went through the worker processes
    record(parallel, toy_experiments)
    markdown = (toy_experiments / "results.md").read_text()
    assert "λ = 3 candidates per step (2 worker processes)" in markdown


def test_experiment_settings_are_checked(toy_experiments):
    with pytest.raises(ConfigError, match="workers must be an integer >= 1"):
        toy("bad", 0.7, workers=0)
    with pytest.raises(ConfigError, match="bound_note"):
        toy("silent", 0.7, bound_applies=False)
    with pytest.raises(ConfigError, match="module-level function"):
        dataclasses.replace(toy("local", 0.7), make_task=lambda reduced=False: None)
    with pytest.raises(ConfigError, match="states no n"):
        no_n = dataclasses.replace(toy("no-n", 0.7), task_options={"states_n": False})
        run_experiment(no_n, budget=2, progress=False, out=toy_experiments)


def test_reduced_rows_are_marked(toy_experiments):
    out = toy_experiments
    assert main(["reproduce", "shifted", "--quiet", "--reduced", "--out", str(out), "--budget", "5"]) == 0
    row = load_rows(out)[0]
    assert row["reduced"] is True and row["n"] == 50
    assert "| shifted (reduced) |" in (out / "results.md").read_text()


def test_unknown_experiment_is_a_clear_error(toy_experiments, capsys):
    assert main(["reproduce", "nope", "--out", str(toy_experiments)]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


def test_a_removed_experiment_s_row_can_be_forgotten(toy_experiments, monkeypatch, capsys):
    """An experiment renamed or removed keeps its row until --forget takes it out, with its plot."""
    out = toy_experiments
    assert main(["reproduce", "all", "--quiet", "--out", str(out), "--budget", "4"]) == 0
    capsys.readouterr()
    known = experiments.registry()
    monkeypatch.setattr(experiments, "registry", lambda: {"shifted": known["shifted"]})  # "unshifted" is gone
    assert main(["reproduce", "unshifted", "--out", str(out)]) == 2  # it cannot be run any more
    assert main(["reproduce", "unshifted", "--forget", "--out", str(out)]) == 0
    assert [row["name"] for row in load_rows(out)] == ["shifted"]
    markdown = (out / "results.md").read_text()
    assert "unshifted" not in markdown and "| shifted | error rate |" in markdown
    assert not (out / "results" / "unshifted.png").exists() and (out / "results" / "shifted.png").exists()
    assert main(["reproduce", "unshifted", "--forget", "--out", str(out)]) == 2
    assert "has no row named 'unshifted' (rows: shifted)" in capsys.readouterr().err
    assert main(["reproduce", "all", "--forget", "--out", str(out)]) == 2


def test_corrupt_results_file_is_reported(toy_experiments, capsys):
    toy_experiments.mkdir()
    (toy_experiments / "results.json").write_text("{not json")
    assert main(["reproduce", "shifted", "--quiet", "--out", str(toy_experiments), "--budget", "3"]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_verdict_says_when_a_gain_does_not_hold():
    from afterlearner.heldout import Gain

    assert verdict(0.5, 0.4, 0.5, 0.45) == "better, no interval"
    assert verdict(0.5, 0.4, 0.5, 0.45, Gain(0.05, 0.01, 0.09)) == "holds"
    assert verdict(0.5, 0.4, 0.5, 0.45, Gain(0.05, -0.01, 0.09)) == "does NOT hold (not significant)"
    assert verdict(0.5, 0.4, 0.5, 0.6, Gain(-0.1, -0.15, -0.05)) == "does NOT hold (significantly worse)"
    assert verdict(0.5, 0.4, 0.5, 0.5) == "does NOT hold (held-out unchanged)"
    assert verdict(0.5, 0.4, 0.5, 0.6) == "does NOT hold (held-out worse)"
    assert verdict(0.5, 0.5, 0.5, 0.5) == "no gain found on the ℵ-set"
    assert verdict(None, None, None, None) == "no successful evaluation"


def test_markdown_of_a_non_comparison_based_run_says_none():
    row = {
        "name": "x",
        "title": "t",
        "metric": "m",
        "reduced": False,
        "seed": 0,
        "budget": 5,
        "optimizer": "NGOpt",
        "aleph_scalars": 1,
        "n": 10,
        "evaluations": 5,
        "failures": 0,
        "aleph_before": 1.0,
        "aleph_after": 0.5,
        "test_before": 1.0,
        "test_after": 0.9,
        "verdict": "holds",
        "bound": None,
        "bound_note": "none: NGOpt is not comparison-based",
        "extra_before": {},
        "extra_after": {},
        "wall_time": 1.0,
        "setup_time": 0.1,
        "plot": "results/x.png",
        "artefacts": ["results/x_samples.png"],
        "date": "today",
    }
    markdown = render_markdown([row])
    assert "| 10 | none |" in markdown and "Bound: none: NGOpt" in markdown
    assert "| 10 | 1.500 (vacuous) |" in render_markdown([{**row, "bound": 1.5}])
    assert "![x_samples](results/x_samples.png)" in markdown


def test_comparisons_are_recorded_and_shown_with_their_intervals(toy_experiments):
    from afterlearner.heldout import compare, observe

    def against_trained(task, result):
        """The row's own held-out comparison, computed again through the hook."""
        result.restore()
        before = observe(task.test_loss, task.aleph.model)
        result.apply()
        return {
            "trained → retrofitted": compare(
                task.test_loss, before, observe(task.test_loss, task.aleph.model)
            )
        }

    experiment = dataclasses.replace(toy("shifted", 0.7), comparisons=against_trained)
    row, result = run_experiment(experiment, out=toy_experiments, progress=False)
    held = row["comparisons"]["trained → retrofitted"]
    assert held["gain"] == result.test_gain.as_dict() and held["gain"]["low"] > 0
    assert held["after"]["value"] == pytest.approx(
        row["test_after"]
    )  # the retrofitted model was left in place
    markdown = render_markdown([row])
    assert "| held-out comparison (A → B) | A | B | gain A − B (95% interval) |" in markdown
    assert (
        f"| trained → retrofitted | {held['before']['value']:.4g} [" in markdown and ": holds |" in markdown
    )
    assert "held-out comparison" not in render_markdown([{**row, "comparisons": {}}])
