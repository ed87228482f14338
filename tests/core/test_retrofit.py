"""The retrofit loop: starts at the trained model, keeps the best, survives failures, is reproducible."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import afterlearner as al
from afterlearner.errors import ConfigError, StoreError


def _bits(model: torch.nn.Module) -> list[bytes]:
    return [p.detach().numpy().tobytes() for p in model.state_dict().values()]


def test_retrofit_improves_and_leaves_the_best_in_the_model(tiny_net, quadratic_loss) -> None:
    aleph = al.Aleph(tiny_net).add("fc.bias")
    trained = quadratic_loss(tiny_net)
    result = al.retrofit(aleph, quadratic_loss, budget=120, optimizer="OnePlusOne", seed=1, progress=False)
    assert result.evaluations == 120
    assert result.initial_loss == pytest.approx(trained)
    assert result.best_loss < 0.2 * trained
    assert quadratic_loss(tiny_net) == pytest.approx(result.best_loss)  # the model holds the best
    assert result.history[0].vector.tolist() == [0.0] * 4  # the first candidate is the trained model
    result.restore()
    assert quadratic_loss(tiny_net) == pytest.approx(trained)
    result.apply()
    assert quadratic_loss(tiny_net) == pytest.approx(result.best_loss)


def test_best_is_never_worse_than_the_trained_model(tiny_net) -> None:
    # a loss the trained model already minimises: every move makes it worse
    trained_bias = tiny_net.fc.bias.detach().clone()
    aleph = al.Aleph(tiny_net).add("fc.bias")
    result = al.retrofit(
        aleph, lambda m: float((m.fc.bias - trained_bias).abs().sum()), budget=30, progress=False
    )
    assert result.best_loss == 0.0
    assert result.best_loss <= result.initial_loss


def test_same_seed_same_result_other_seed_other_path(tiny_net, quadratic_loss) -> None:
    def run(seed: int) -> al.RetrofitResult:
        torch.manual_seed(0)
        from conftest import TinyNet

        model = TinyNet()
        return al.retrofit(
            al.Aleph(model).add("fc.bias"), quadratic_loss, budget=40, seed=seed, progress=False
        )

    first, again, other = run(3), run(3), run(4)
    assert np.array_equal(first.best, again.best)
    assert [e.vector.tobytes() for e in first.history] == [e.vector.tobytes() for e in again.history]
    assert not np.array_equal(first.history[5].vector, other.history[5].vector)


@pytest.mark.parametrize("bad", [RuntimeError("boom"), float("nan"), float("inf"), "0.3", None, [1, 2]])
def test_failing_loss_is_journaled_and_never_best(tiny_net, quadratic_loss, bad, tmp_path) -> None:
    calls = {"n": 0}

    def loss(model: torch.nn.Module) -> float:
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            if isinstance(bad, Exception):
                raise bad
            return bad  # type: ignore[return-value]
        return quadratic_loss(model)

    store = tmp_path / "run.sqlite"
    result = al.retrofit(al.Aleph(tiny_net).add("fc.bias"), loss, budget=30, store=store, progress=False)
    assert result.evaluations == 30
    assert result.failures == 10
    failed = [e for e in result.history if not e.ok]
    assert all(e.loss is None and e.error for e in failed)
    assert result.best_loss is not None and math.isfinite(result.best_loss)
    with al.Store.open(store, readonly=True) as journal:
        rows = journal.evaluations()
    assert sum(row.status == "failed" for row in rows) == 10
    assert any("boom" in (row.error or "") or "loss returned" in (row.error or "") for row in rows)


def test_too_many_failures_stops_and_restores_the_model(tiny_net) -> None:
    before = _bits(tiny_net)
    calls = {"n": 0}

    def loss(model: torch.nn.Module) -> float:
        calls["n"] += 1
        if calls["n"] > 3:
            raise ValueError(f"sensor {calls['n']} unplugged")
        return float(model.fc.bias.sum())

    with pytest.raises(al.TooManyFailures, match="5 evaluations in a row failed.*sensor 8 unplugged"):
        al.retrofit(al.Aleph(tiny_net).add("fc.bias"), loss, budget=50, max_failures=5, progress=False)
    assert _bits(tiny_net) == before


def test_a_bug_escaping_restores_the_model_bit_for_bit(tiny_net, monkeypatch) -> None:
    before = _bits(tiny_net)
    aleph = al.Aleph(tiny_net).add("fc.bias").add("fc.weight", mode="scale", per="row")

    calls = {"n": 0}
    original_tell = None

    def loss(model: torch.nn.Module) -> float:
        calls["n"] += 1
        return float(model.fc.bias.sum())

    import nevergrad as ng

    original_tell = ng.optimizers.base.Optimizer.tell

    def broken_tell(self, candidate, value, *args, **kwargs):  # a bug in the optimizer mid-run
        if calls["n"] >= 7:
            raise RuntimeError("optimizer bug")
        return original_tell(self, candidate, value, *args, **kwargs)

    monkeypatch.setattr(ng.optimizers.base.Optimizer, "tell", broken_tell)
    with pytest.raises(RuntimeError, match="optimizer bug"):
        al.retrofit(aleph, loss, budget=20, progress=False)
    assert _bits(tiny_net) == before


def test_ctrl_c_returns_the_best_so_far(tiny_net, quadratic_loss) -> None:
    calls = {"n": 0}

    def loss(model: torch.nn.Module) -> float:
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return quadratic_loss(model)

    result = al.retrofit(al.Aleph(tiny_net).add("fc.bias"), loss, budget=100, progress=False)
    assert result.interrupted
    assert result.evaluations == 24
    assert result.best_loss == min(e.loss for e in result.history)
    assert quadratic_loss(tiny_net) == pytest.approx(result.best_loss)


def test_workers_ask_batches_and_runs_keep_the_best(tiny_net, quadratic_loss) -> None:
    result = al.retrofit(
        al.Aleph(tiny_net).add("fc.bias"),
        quadratic_loss,
        budget=30,
        workers=4,
        runs=3,
        seed=2,
        progress=False,
    )
    assert result.evaluations == 90
    assert len(result.run_outcomes) == 3
    bests = [outcome.best.loss for outcome in result.run_outcomes]
    assert result.best_loss == min(bests)
    # every run starts at the trained model
    assert all(outcome.history[0].vector.tolist() == [0.0] * 4 for outcome in result.run_outcomes)


def test_held_out_loss_is_evaluated_before_and_after(tiny_net, quadratic_loss) -> None:
    calls = []

    def test_loss(model: torch.nn.Module) -> float:
        calls.append(model.fc.bias.detach().clone())
        return quadratic_loss(model) + 1.0

    trained_bias = tiny_net.fc.bias.detach().clone()
    result = al.retrofit(
        al.Aleph(tiny_net).add("fc.bias"), quadratic_loss, budget=30, test_loss=test_loss, progress=False
    )
    assert len(calls) == 2
    assert torch.equal(calls[0], trained_bias)
    assert result.test_initial == pytest.approx(result.initial_loss + 1.0)
    assert result.test_best == pytest.approx(result.best_loss + 1.0)


def test_hyperparameters_and_tensors_together() -> None:
    class Sampler:
        temperature = 1.0

    sampler = Sampler()
    model = torch.nn.Linear(2, 1)

    def loss(m: torch.nn.Module) -> float:
        return (math.log(sampler.temperature) - math.log(3.0)) ** 2 + float(m.bias.sum() - 1.0) ** 2

    aleph = al.Aleph(model).add("bias").hyper(sampler, "temperature", low=0.1, high=10.0, log=True)
    result = al.retrofit(aleph, loss, budget=150, optimizer="OnePlusOne", progress=False)
    assert result.best_loss < 0.05
    assert sampler.temperature == pytest.approx(result.best[-1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": 0}, "budget must be an integer >= 1"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"runs": 0}, "runs must be an integer >= 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"optimizer": "OnePlusOnee"}, "unknown optimizer 'OnePlusOnee'; did you mean OnePlusOne"),
    ],
)
def test_bad_settings_fail_before_any_evaluation(tiny_net, kwargs, message) -> None:
    calls = []
    with pytest.raises(ConfigError, match=message):
        al.retrofit(
            al.Aleph(tiny_net).add("fc.bias"), lambda m: calls.append(1) or 0.0, progress=False, **kwargs
        )
    assert calls == []


def test_result_bound_uses_the_optimizer_class(tiny_net, quadratic_loss) -> None:
    aleph = al.Aleph(tiny_net).add("fc.bias")
    one = al.retrofit(aleph, quadratic_loss, budget=100, optimizer="OnePlusOne", n=500, progress=False)
    assert one.bound(delta=0.05) == pytest.approx(al.generalization_bound(100, 500, 0.05, outcomes=2))
    ngopt = al.retrofit(aleph, quadratic_loss, budget=20, optimizer="NGOpt", n=500, progress=False)
    assert ngopt.bound() is None
    with pytest.raises(ConfigError, match="needs n"):
        al.retrofit(aleph, quadratic_loss, budget=5, progress=False).bound()


class _Recording:
    """An evaluator that only records whether retrofit closed it."""

    def __init__(self) -> None:
        self.closed = 0

    def evaluate(self, vectors):
        raise AssertionError("no candidate may be evaluated")

    def close(self) -> None:
        self.closed += 1


def test_a_given_evaluator_is_closed_when_settings_or_store_are_refused(tiny_net, tmp_path) -> None:
    aleph = al.Aleph(tiny_net).add("fc.bias")
    evaluator = _Recording()
    with pytest.raises(ConfigError, match="budget must be"):
        al.retrofit(aleph, lambda m: 0.0, budget=0, evaluator=evaluator, progress=False)
    assert evaluator.closed == 1  # e.g. worker processes or a Dask cluster are not left running
    store = tmp_path / "run.sqlite"
    al.retrofit(aleph, lambda m: 0.0, budget=2, seed=1, store=store, progress=False)
    evaluator = _Recording()
    with pytest.raises(StoreError, match="other settings"):
        al.retrofit(aleph, lambda m: 0.0, budget=2, seed=2, store=store, evaluator=evaluator, progress=False)
    assert evaluator.closed == 1


def test_retrofit_refuses_a_space_that_is_not_an_aleph() -> None:
    import nevergrad as ng

    with pytest.raises(ConfigError, match="retrofit needs an afterlearner.Aleph, got Array"):
        al.retrofit(ng.p.Array(init=np.zeros(2)), lambda model: 0.0, budget=3, progress=False)
