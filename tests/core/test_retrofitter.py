"""The ask/tell engine: the same result as retrofit, resumable between ask and tell, and run control."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from asktell_task import SETTINGS, build, loss_of
from paths import SUPPORT, TASKS

import afterlearner as al
from afterlearner.errors import ConfigError, TooManyFailures

QUADRATIC = TASKS / "quadratic_task.py"


def _loss(model) -> float:
    return loss_of({"bias": model.bias.detach().numpy(), "weight": model.weight.detach().numpy()})


def _ask_tell(store=None, **settings) -> al.RetrofitResult:
    retrofitter = al.Retrofitter(build(), store=store, **{**SETTINGS, **settings})
    with retrofitter:
        while (candidate := retrofitter.ask()) is not None:
            retrofitter.tell(candidate, loss_of(candidate.values()))
        return retrofitter.result()


def test_ask_tell_gives_the_result_of_retrofit() -> None:
    by_hand = _ask_tell()
    aleph = build()
    driven = al.retrofit(aleph, _loss, progress=False, **SETTINGS)
    assert np.array_equal(by_hand.best, driven.best)
    assert by_hand.best_loss == driven.best_loss
    assert by_hand.losses() == driven.losses()
    assert by_hand.status == "finished" and by_hand.evaluations == SETTINGS["budget"]


def test_candidates_know_their_values_and_can_apply_themselves() -> None:
    aleph = build()
    retrofitter = al.Retrofitter(aleph, **SETTINGS)
    first = retrofitter.ask()
    assert first.index == 0 and first.run == 0
    assert np.array_equal(first.vector, aleph.identity())  # the trained model comes first
    retrofitter.tell(first, 1.0)
    second = retrofitter.ask()
    second.apply()
    assert np.array_equal(aleph.model.bias.detach().numpy(), second.values()["bias"])
    retrofitter.tell(second.index, 0.5)  # by index
    result = retrofitter.result()  # anytime: the best so far, written into the model
    assert result.status == "running" and result.best_loss == 0.5
    assert np.array_equal(result.best, second.vector)


def test_a_batch_of_lambda_is_told_in_ask_order_whatever_the_order_losses_arrive() -> None:
    settings = {"optimizer": "DiagonalCMA", "workers": 4}
    in_order = _ask_tell(**settings)
    retrofitter = al.Retrofitter(build(), **{**SETTINGS, **settings})
    while batch := retrofitter.ask_batch():
        for candidate in reversed(batch):  # losses arrive last first
            retrofitter.tell(candidate, loss_of(candidate.values()))
    reversed_result = retrofitter.result()
    assert np.array_equal(in_order.best, reversed_result.best)
    assert sorted(in_order.losses()) == sorted(reversed_result.losses())


def test_asking_more_than_lambda_before_telling_is_refused() -> None:
    retrofitter = al.Retrofitter(build(), **{**SETTINGS, "workers": 2})
    retrofitter.ask()
    retrofitter.ask()
    with pytest.raises(ConfigError, match="tell at least one"):
        retrofitter.ask()


def test_bad_tells_are_refused_with_a_reason() -> None:
    retrofitter = al.Retrofitter(build(), **SETTINGS)
    with pytest.raises(ConfigError, match="was not asked"):
        retrofitter.tell(5, 1.0)
    candidate = retrofitter.ask()
    retrofitter.tell(candidate, 1.0)
    with pytest.raises(ConfigError, match="already told"):
        retrofitter.tell(candidate, 1.0)
    other = al.Retrofitter(build(), **{**SETTINGS, "seed": 99})
    other.tell(other.ask(), 1.0)
    foreign = other.ask()
    retrofitter.ask()
    with pytest.raises(ConfigError, match="another vector"):
        retrofitter.tell(foreign, 1.0)


def test_a_failed_tell_is_journaled_and_never_the_best(tmp_path) -> None:
    retrofitter = al.Retrofitter(build(), store=tmp_path / "s.sqlite", **SETTINGS)
    retrofitter.tell(retrofitter.ask(), 2.0)
    retrofitter.tell(retrofitter.ask(), RuntimeError("the cluster job died"))
    retrofitter.tell(retrofitter.ask(), math.nan)
    result = retrofitter.result()
    assert result.best_loss == 2.0 and result.failures == 2
    retrofitter.close()
    with al.Store.open(tmp_path / "s.sqlite", readonly=True) as store:
        errors = [e.error for e in store.evaluations()]
    assert errors[0] is None and "the cluster job died" in errors[1] and "nan" in errors[2]


def test_too_many_failures_in_a_row_raise() -> None:
    retrofitter = al.Retrofitter(build(), max_failures=3, **SETTINGS)
    retrofitter.tell(retrofitter.ask(), 1.0)
    retrofitter.tell(retrofitter.ask(), ValueError("a"))
    retrofitter.tell(retrofitter.ask(), ValueError("b"))
    with pytest.raises(TooManyFailures, match="3 evaluations in a row failed.*ValueError: c"):
        retrofitter.tell(retrofitter.ask(), ValueError("c"))


@pytest.mark.slow
def test_sigkill_between_ask_and_tell_resumes_to_the_same_result(tmp_path) -> None:
    reference = _ask_tell()
    store, marker = tmp_path / "killed.sqlite", tmp_path / "asked.txt"
    process = subprocess.Popen(
        [sys.executable, str(SUPPORT / "asktell_process.py"), str(store), "11", str(marker)],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
    process.send_signal(signal.SIGKILL)
    process.wait()
    asked_index = int(marker.read_text())
    assert asked_index == 11
    with al.Store.open(store, readonly=True) as journal:
        assert len(journal.evaluations()) == 11 and list(journal.asked(0)) == [11]
    # a new process: the candidate asked before the crash is pending, and its tell is accepted
    retrofitter = al.Retrofitter(build(), store=store, **SETTINGS)
    pending = retrofitter.pending()
    assert [c.index for c in pending] == [11]
    retrofitter.tell(11, loss_of(pending[0].values()))
    while (candidate := retrofitter.ask()) is not None:
        retrofitter.tell(candidate, loss_of(candidate.values()))
    resumed = retrofitter.result()
    retrofitter.close()
    assert np.array_equal(resumed.best, reference.best)
    assert resumed.losses() == reference.losses()
    with al.Store.open(store, readonly=True) as journal:
        assert journal.asked(0) == {}
        assert [e.idx for e in journal.evaluations()] == list(range(SETTINGS["budget"]))


def test_after_a_crash_ask_hands_out_the_untold_candidate_again(tmp_path) -> None:
    store = tmp_path / "s.sqlite"
    first = al.Retrofitter(build(), store=store, **SETTINGS)
    first.tell(first.ask(), 3.0)
    lost = first.ask()  # the process "dies" here: never told
    first.close()
    second = al.Retrofitter(build(), store=store, **SETTINGS)
    again = second.ask()
    assert again.index == lost.index and np.array_equal(again.vector, lost.vector)
    second.close()


# -- run control ------------------------------------------------------------------------------------
def _quadratic():
    return al.load_task(f"{QUADRATIC}:task")


def test_time_limit_stops_then_resume_equals_the_uninterrupted_run(tmp_path) -> None:
    task = _quadratic()
    reference = al.retrofit(task.aleph, task.loss, budget=40, seed=2, progress=False)
    store = tmp_path / "s.sqlite"
    task = _quadratic()

    def slow(model) -> float:
        time.sleep(0.03)
        return task.loss(model)

    stopped = al.retrofit(task.aleph, slow, budget=40, seed=2, store=store, progress=False, time_limit=0.4)
    assert stopped.status == "stopped: time limit" and stopped.stopped == "time limit"
    assert 0 < stopped.evaluations < 40
    assert not stopped.interrupted
    stopped_best = task.aleph.values(stopped.best)["fc.bias"]
    assert np.array_equal(task.aleph.model.fc.bias.detach().numpy(), stopped_best)  # best so far applied
    with al.Store.open(store, readonly=True) as journal:
        assert journal.runs()[0]["status"] == "stopped: time limit"
    task = _quadratic()
    resumed = al.retrofit(task.aleph, task.loss, budget=40, seed=2, store=store, progress=False)
    assert resumed.status == "finished" and resumed.evaluations == 40
    assert np.array_equal(resumed.best, reference.best) and resumed.losses() == reference.losses()


def test_target_stops_once_reached() -> None:
    task = _quadratic()
    full = al.retrofit(task.aleph, task.loss, budget=40, seed=2, progress=False)
    target = sorted(full.losses())[3]  # reached somewhere before the end
    task = _quadratic()
    stopped = al.retrofit(task.aleph, task.loss, budget=40, seed=2, progress=False, target=target)
    assert stopped.status == "stopped: target reached"
    assert stopped.best_loss <= target
    first_reach = next(i for i, loss in enumerate(full.losses()) if loss <= target)
    assert stopped.evaluations == first_reach + 1


def test_callbacks_see_every_new_evaluation_and_may_stop_the_run(tmp_path) -> None:
    task = _quadratic()
    seen: list[tuple[int, int, float | None]] = []

    def watch(evaluation, state) -> None:
        seen.append((evaluation.idx, state.evaluations, state.best_loss))
        if state.evaluations == 7:
            state.stop("enough")

    store = tmp_path / "s.sqlite"
    result = al.retrofit(
        task.aleph, task.loss, budget=40, seed=2, store=store, progress=False, callbacks=[watch]
    )
    assert result.status == "stopped: enough" and result.evaluations == 7
    assert [idx for idx, _, _ in seen] == list(range(7))
    assert [count for _, count, _ in seen] == list(range(1, 8))
    assert all(seen[i][2] >= seen[i + 1][2] for i in range(6))  # best so far never gets worse
    # the journal holds exactly what a run without the callback holds for those 7 evaluations
    task = _quadratic()
    plain = al.retrofit(task.aleph, task.loss, budget=7, seed=2, progress=False)
    with al.Store.open(store, readonly=True) as journal:
        assert [e.loss for e in journal.evaluations()] == plain.losses()


def test_a_finished_store_is_already_complete_with_its_original_figures(tmp_path) -> None:
    task = _quadratic()
    store = tmp_path / "s.sqlite"
    first = al.retrofit(
        task.aleph, task.loss, budget=30, seed=1, store=store, progress=False, test_loss=task.test_loss
    )
    assert not first.already_complete and first.wall_time > 0
    task = _quadratic()
    calls = {"test": 0}

    def counting_test(model) -> float:
        calls["test"] += 1
        return task.test_loss(model)

    again = al.retrofit(
        task.aleph, task.loss, budget=30, seed=1, store=store, progress=False, test_loss=counting_test
    )
    assert again.already_complete and calls["test"] == 0
    assert again.wall_time == pytest.approx(first.wall_time, rel=1e-6)
    assert (again.test_initial, again.test_best) == (first.test_initial, first.test_best)
    assert np.array_equal(again.best, first.best)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("time_limit", 0, "time_limit must be a positive"),
        ("time_limit", math.inf, "time_limit must be a positive"),
        ("target", math.nan, "target must be a finite number"),
        ("callbacks", [42], "callbacks must be callables"),
    ],
)
def test_bad_run_control_settings_are_refused(setting, value, message) -> None:
    with pytest.raises(ConfigError, match=message):
        al.Retrofitter(build(), **SETTINGS, **{setting: value})
