"""Guardrail metrics: infeasible candidates are never returned, replay is exact, the bound counts them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import afterlearner as al
from afterlearner.bound import bound_of
from afterlearner.errors import ConfigError
from afterlearner.evaluators.base import Outcome
from afterlearner.guards import GuardCheck, violation

TARGET = torch.tensor([0.5, -0.25, 0.75, -1.0])


def main_loss(model: torch.nn.Module) -> float:
    """Wants fc.bias at TARGET."""
    return float(((model.fc.bias.detach() - TARGET) ** 2).sum())


def size_guard(model: torch.nn.Module) -> float:
    """Wants fc.bias small: at odds with the main loss beyond a tolerance."""
    return float(model.fc.bias.detach().abs().sum())


def _run(model, store=None, **kwargs):
    aleph = al.Aleph(model).add("fc.bias")
    options = {"budget": 80, "optimizer": "OnePlusOne", "seed": 2, "progress": False, **kwargs}
    return al.retrofit(aleph, main_loss, store=store, **options)


def test_infeasible_candidates_are_journaled_and_never_returned(tiny_net) -> None:
    trained_size = size_guard(tiny_net)
    free = _run(_copy(tiny_net))
    guarded = _run(tiny_net, guards={"size": (size_guard, 0.05)})
    infeasible = [e for e in guarded.history if e.status == "infeasible"]
    assert infeasible, "the guard never bound: the test would not show anything"
    assert guarded.infeasible == len(infeasible)
    assert all(e.loss is not None and "size" in e.error for e in infeasible)
    assert all(e.guards["size"] > trained_size + 0.05 for e in infeasible)
    feasible = [e for e in guarded.history if e.ok]
    assert all(e.guards["size"] <= trained_size + 0.05 for e in feasible)
    assert size_guard(tiny_net) <= trained_size + 0.05 + 1e-12  # the model holds a feasible candidate
    best = min(feasible, key=lambda e: e.loss)
    assert guarded.best_loss == best.loss
    # some infeasible candidate had a lower ℵ-loss than the returned one: the guard cost something
    assert min(e.loss for e in infeasible) < guarded.best_loss
    assert free.best_loss < guarded.best_loss
    [check] = guarded.guard_checks
    assert check.name == "size" and check.tolerance == 0.05
    assert check.trained == pytest.approx(trained_size)
    assert check.retrofitted == pytest.approx(size_guard(tiny_net))


def _copy(model: torch.nn.Module) -> torch.nn.Module:
    clone = type(model)()
    clone.load_state_dict(model.state_dict())
    return clone


def test_the_engine_with_a_batch_keeps_the_reference_first(tiny_net) -> None:
    aleph = al.Aleph(tiny_net).add("fc.bias")
    engine = al.Retrofitter(
        aleph, budget=13, optimizer="TwoPointsDE", workers=4, seed=0, guards={"size": 0.0}
    )
    first = engine.ask_batch()
    assert [c.index for c in first] == [0]  # the trained model alone: its guard loss is the reference
    engine.tell(first[0], al.Measured(main_loss(tiny_net), {"size": size_guard(tiny_net)}))
    batch = engine.ask_batch()
    assert len(batch) == 4
    for candidate in reversed(batch):  # told out of order: the verdicts do not depend on it
        candidate.apply()
        engine.tell(candidate, al.Measured(main_loss(tiny_net), {"size": size_guard(tiny_net)}))
    aleph.restore()
    statuses = {e.status for e in engine.evaluated()}
    assert statuses <= {"ok", "infeasible"} and "infeasible" in statuses


def test_a_loss_that_does_not_report_its_guards_fails_clearly(tiny_net) -> None:
    aleph = al.Aleph(tiny_net).add("fc.bias")
    engine = al.Retrofitter(aleph, budget=3, optimizer="OnePlusOne", guards={"size": 0.1})
    candidate = engine.ask()
    evaluation = engine.tell(candidate, 1.0)  # a plain number: no guard loss
    assert evaluation.status == "failed" and "did not report the guard(s) size" in evaluation.error
    candidate = engine.ask()
    evaluation = engine.tell(candidate, al.Measured(0.5, {"size": math.nan}))
    assert evaluation.status == "failed" and "guard 'size'" in evaluation.error
    candidate = engine.ask()
    evaluation = engine.tell(candidate, Outcome(0.5, None, 0.0, {"size": 1.0}))
    assert evaluation.status == "infeasible"  # the trained model's guard losses are unknown:
    assert "unknown" in evaluation.error  # no candidate can be shown within tolerance


def test_guarded_run_resumes_exactly_from_its_journal(tiny_net, tmp_path) -> None:
    store = tmp_path / "guarded.sqlite"
    guards = {"size": (size_guard, 0.05)}
    whole = _run(_copy(tiny_net), guards=guards)

    def stop_at_30(evaluation, state) -> None:
        if state.evaluations >= 30:
            state.stop()

    first = _run(_copy(tiny_net), store=store, guards=guards, callbacks=[stop_at_30])
    assert first.stopped == "callback"
    resumed = _run(_copy(tiny_net), store=store, guards=guards)
    assert resumed.status == "finished"
    assert np.array_equal(resumed.best, whole.best)
    assert [(e.status, e.loss, e.guards) for e in resumed.history] == [
        (e.status, e.loss, e.guards) for e in whole.history
    ]
    with al.Store.open(store, readonly=True) as journal:
        assert journal.settings()["guards"] == {"size": 0.05}
        assert journal.evaluations()[0].guards == {"size": pytest.approx(size_guard(tiny_net))}
    with pytest.raises(al.StoreError, match="guards"):  # other guards: another study
        _run(_copy(tiny_net), store=store, guards={"size": (size_guard, 0.5)})


def test_guards_are_checked_on_held_out_data_and_reported(tiny_net, tmp_path, capsys) -> None:
    store = tmp_path / "held.sqlite"
    trained = size_guard(tiny_net)

    def held_out_size(model):  # a held-out version: the same quantity, shifted
        return size_guard(model) + 0.01

    result = _run(
        tiny_net, store=store, test_loss=main_loss, guards={"size": (size_guard, 0.05, held_out_size)}
    )
    [check] = result.guard_checks
    assert check.test_trained == pytest.approx(trained + 0.01)
    assert check.test_retrofitted == pytest.approx(size_guard(tiny_net) + 0.01)
    assert check.held is True
    assert "within tolerance" in check.describe()
    from afterlearner.report import print_result, print_store

    print_result(result)
    from afterlearner import history

    with al.Store.open(store, readonly=True) as journal:
        print_store(journal)
        header, rows = history.table(journal.settings(), journal.evaluations())
    column = header.index("guard:size")
    assert [row[column] for row in rows] == [e.guards["size"] for e in result.history]
    out = capsys.readouterr().out
    assert "guard size" in out and "infeasible" in out and "within tolerance" in out
    result.restore()
    again = _run(
        tiny_net, store=store, test_loss=main_loss, guards={"size": (size_guard, 0.05, held_out_size)}
    )
    assert again.already_complete and again.guard_checks == result.guard_checks


def test_held_check_says_when_a_guard_breaks_on_held_out_data() -> None:
    check = GuardCheck("bleu", 0.01, 0.30, 0.305, 0.31, 0.33)
    assert check.held is False and "NOT within tolerance" in check.describe()
    assert GuardCheck.from_dict(check.as_dict()) == check


def test_violation_is_a_comparison_against_the_trained_model() -> None:
    assert violation({"a": 1.0}, {"a": 0.9}, {"a": 0.1}) is None  # exactly at the limit: feasible
    assert violation({"a": 1.01}, {"a": 0.9}, {"a": 0.1}).startswith("guard: a 1.01 > 0.9 + 0.1")
    assert "did not report" in violation({}, {"a": 0.9}, {"a": 0.1})


def test_the_bound_counts_one_comparison_per_guard_and_evaluation() -> None:
    plain = bound_of("OnePlusOne", 100, 500)
    one = bound_of("OnePlusOne", 100, 500, guards=1)
    two = bound_of("OnePlusOne", 100, 500, guards=2)
    assert plain < one < two
    # ε = sqrt((ln(2/δ) + count) / (2n)): the count grows by 99·ln 2 per guard
    assert one**2 * 2 * 500 - plain**2 * 2 * 500 == pytest.approx(99 * math.log(2))
    assert bound_of("CMA", 100, 500, guards=1) is None or bound_of("CMA", 100, 500, guards=1) > bound_of(
        "CMA", 100, 500
    )


@pytest.mark.parametrize(
    ("guards", "match"),
    [
        ({"a": (size_guard, -1.0)}, "≥ 0"),
        ({"a": (size_guard, math.nan)}, "finite"),
        ({"a": ("not callable", 0.1)}, "callable"),
        ({"a": size_guard}, "tuple"),
        ([("a", size_guard)], "mapping"),
    ],
)
def test_bad_guards_are_refused(tiny_net, guards, match) -> None:
    with pytest.raises(ConfigError, match=match):
        _run(tiny_net, guards=guards)


def test_guards_and_a_given_start_loss_do_not_mix(tiny_net) -> None:
    with pytest.raises(ConfigError, match="start_loss"):
        al.Retrofitter(al.Aleph(tiny_net).add("fc.bias"), start_loss=1.0, guards={"a": 0.1})


def test_a_task_files_guards_in_the_command_line_and_in_worker_processes(tmp_path, capsys) -> None:
    from paths import TASKS

    from afterlearner.cli import main

    spec = f"{TASKS / 'guarded_task.py'}:task"
    here, there = tmp_path / "here.sqlite", tmp_path / "there.sqlite"
    common = ["--budget", "30", "--optimizer", "OnePlusOne", "--workers", "2", "--quiet"]
    assert main(["run", spec, "--store", str(here), *common]) == 0
    out = capsys.readouterr().out
    assert "guard size" in out and "within tolerance" in out and "infeasible" in out
    assert main(["run", spec, "--store", str(there), "--processes", "2", *common]) == 0
    with al.Store.open(here, readonly=True) as a, al.Store.open(there, readonly=True) as b:
        first, second = a.evaluations(), b.evaluations()
    assert any(e.status == "infeasible" for e in first)
    # the workers built the same guards from the task file: the same verdicts, losses and guard losses
    assert [(e.status, e.loss, e.guards) for e in first] == [(e.status, e.loss, e.guards) for e in second]


def test_the_convergence_plot_leaves_infeasible_candidates_out_of_the_best_so_far(tiny_net, tmp_path) -> None:
    from afterlearner.report import store_figure

    store = tmp_path / "plot.sqlite"
    result = _run(tiny_net, store=store, guards={"size": (size_guard, 0.05)})
    with al.Store.open(store, readonly=True) as journal:
        figure = store_figure(journal)
    axes = figure.axes[0]
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert any(f"infeasible ({result.infeasible})" in label for label in labels)
    [line] = [line for line in axes.get_lines() if "best so far" in line.get_label()]
    assert line.get_ydata()[-1] == pytest.approx(
        result.best_loss
    )  # the feasible best, not a lower infeasible
    assert min(e.loss for e in result.history if e.status == "infeasible") < result.best_loss
