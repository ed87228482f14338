"""``auto`` ends each run with the centroid of its 5 best candidates (the suite's best rule)."""

from __future__ import annotations

import numpy as np
import pytest

import afterlearner as al
from afterlearner.optimizers import AUTO_CENTROID


def _quadratic(model) -> float:
    target = np.array([0.5, -0.25, 0.75, -1.0])
    return float(((model.fc.bias.detach().numpy() - target) ** 2).sum())


def test_the_last_evaluation_is_the_centroid_of_the_five_best(tiny_net) -> None:
    aleph = al.Aleph(tiny_net).add("fc.bias")
    engine = al.Retrofitter(aleph, budget=30, optimizer="auto", seed=0)
    standardized = {}
    while (candidate := engine.ask()) is not None:
        if candidate.index < 29:
            standardized[candidate.index] = engine._current().standardized[candidate.index]
        candidate.apply()
        engine.tell(candidate, _quadratic(tiny_net))
    aleph.restore()
    history = engine.evaluated()
    before = history[:29]
    five = sorted(before, key=lambda e: (e.loss, -e.idx))[:AUTO_CENTROID]
    centroid = np.mean([standardized[e.idx] for e in five], axis=0)
    parametrization = aleph.parametrization()
    expected = aleph.to_vector(
        parametrization.spawn_child().set_standardized_data(centroid, reference=parametrization).value
    )
    assert np.array_equal(history[29].vector, expected)
    # the best evaluated is returned: the centroid when it is no worse than the best before it
    result = engine.result()
    best_before = min(e.loss for e in before)
    if history[29].loss <= best_before:
        assert np.array_equal(result.best, history[29].vector)
    assert result.best_loss == min(best_before, history[29].loss)


def _vectors(tiny_net, optimizer: str, budget: int) -> list[bytes]:
    aleph = al.Aleph(tiny_net).add("fc.bias")
    engine = al.Retrofitter(aleph, budget=budget, optimizer=optimizer, seed=0)
    while (candidate := engine.ask()) is not None:
        candidate.apply()
        engine.tell(candidate, _quadratic(tiny_net))
    aleph.restore()
    return [e.vector.tobytes() for e in engine.evaluated()]


def test_only_auto_runs_long_enough_end_with_a_centroid(tiny_net) -> None:
    # auto picks LargeCMA for 4 scalars: the same search, but for the last evaluation
    plain, auto = _vectors(tiny_net, "LargeCMA", 30), _vectors(tiny_net, "auto", 30)
    assert [a == b for a, b in zip(plain, auto, strict=True)] == [True] * 29 + [False]
    assert _vectors(tiny_net, "LargeCMA", 9) == _vectors(tiny_net, "auto", 9)  # too short: no centroid


@pytest.mark.parametrize("workers", [1, 3])
def test_a_run_with_a_final_centroid_resumes_exactly(tiny_net, tmp_path, workers) -> None:
    from conftest import TinyNet

    def run(store, stop_at=None):
        import torch

        torch.manual_seed(0)
        model = TinyNet()
        callbacks = []
        if stop_at is not None:
            callbacks.append(lambda evaluation, state: state.stop() if state.evaluations >= stop_at else None)
        return al.retrofit(
            al.Aleph(model).add("fc.bias"),
            _quadratic,
            budget=40,
            optimizer="auto",
            workers=workers,
            seed=1,
            store=store,
            progress=False,
            callbacks=callbacks,
        )

    whole = run(None)
    store = tmp_path / f"auto{workers}.sqlite"
    assert run(store, stop_at=39).stopped
    resumed = run(store)
    assert [e.vector.tobytes() for e in resumed.history] == [e.vector.tobytes() for e in whole.history]
    assert np.array_equal(resumed.best, whole.best)
    again = run(store)  # a finished store replays to the same result, centroid included
    assert again.already_complete and np.array_equal(again.best, whole.best)
