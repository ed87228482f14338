"""``auto`` ends each run with the centroid of its 5 best candidates (the suite's best rule)."""

from __future__ import annotations

import numpy as np
import pytest

import afterlearner as al
from afterlearner.optimizers import AUTO_CENTROID, AUTO_CENTROID_MARGIN


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
    # the centroid is returned unless the best before it beats it by more than the margin
    result = engine.result()
    best_before = min(before, key=lambda e: (e.loss, -e.idx))
    centroid_loss = history[29].loss
    if best_before.loss < centroid_loss - AUTO_CENTROID_MARGIN * abs(centroid_loss):
        assert np.array_equal(result.best, best_before.vector) and result.best_loss == best_before.loss
    else:
        assert np.array_equal(result.best, history[29].vector) and result.best_loss == centroid_loss


def _told(tiny_net, losses: dict[int, float], budget: int = 20) -> tuple[al.RetrofitResult, list]:
    """An auto run told chosen losses: ``losses[i]`` for evaluation i, 10.0 for the others."""
    aleph = al.Aleph(tiny_net).add("fc.bias")
    engine = al.Retrofitter(aleph, budget=budget, optimizer="auto", seed=0)
    while (candidate := engine.ask()) is not None:
        engine.tell(candidate, losses.get(candidate.index, 10.0))
    return engine.result(), engine.evaluated()


@pytest.mark.parametrize(
    ("best", "centroid", "returned"),
    [
        (1.0, 1.05, "centroid"),  # within 10% of the centroid's loss: the centroid
        (1.0, 1.0, "centroid"),
        (1.0, 0.5, "centroid"),  # the centroid is the best
        (1.0, 1.2, "best"),  # the best is lower by more than 10%: the best
        (-1.2, -1.0, "best"),  # negative losses: 10% of the magnitude
        (-1.05, -1.0, "centroid"),
    ],
)
def test_the_centroid_is_returned_unless_the_best_beats_it_by_the_margin(
    tiny_net, best, centroid, returned
) -> None:
    result, history = _told(tiny_net, {3: best, 19: centroid})
    expected = history[19] if returned == "centroid" else history[3]
    assert np.array_equal(result.best, expected.vector)
    assert result.best_loss == expected.loss
    assert result.run_outcomes[0].best is expected


def test_a_failed_centroid_is_never_returned(tiny_net) -> None:
    aleph = al.Aleph(tiny_net).add("fc.bias")
    engine = al.Retrofitter(aleph, budget=20, optimizer="auto", seed=0)
    while (candidate := engine.ask()) is not None:
        engine.tell(candidate, RuntimeError("crashed") if candidate.index == 19 else 1.0 + candidate.index)
    result = engine.result()
    assert result.best_loss == 1.0 and np.array_equal(result.best, engine.evaluated()[0].vector)


def test_the_margin_test_costs_one_bit_of_the_bound() -> None:
    import math

    from afterlearner import optimizers

    auto, large = optimizers.get("auto"), optimizers.get("LargeCMA")
    assert auto.log_outcomes(50) == pytest.approx(large.log_outcomes(50) + math.log(2))
    assert auto.log_outcomes(9) == large.log_outcomes(9)  # too short for a centroid: no margin test


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


def test_a_store_whose_best_differs_from_the_replayed_one_measures_held_out_again(tiny_net, tmp_path) -> None:
    """A finished store made under another returning rule (its journaled best is not the candidate the
    replay returns) must not lend its held-out figures to the candidate returned now."""
    import sqlite3

    store = tmp_path / "auto.sqlite"
    aleph = al.Aleph(tiny_net).add("fc.bias")
    held_out_calls = []

    def test_loss(model) -> float:
        held_out_calls.append(1)
        return float(model.fc.bias.detach().abs().sum())

    settings = {"budget": 20, "seed": 0, "store": store, "test_loss": test_loss, "progress": False}
    first = al.retrofit(aleph, _quadratic, **settings)
    first.restore()
    with sqlite3.connect(store) as connection:  # what an older rule would have journaled: another best
        other = np.zeros(len(aleph)).astype("<f8").tobytes()
        connection.execute("UPDATE runs SET best_vector = ?, test_best = 123.0", (other,))
    held_out_calls.clear()
    again = al.retrofit(aleph, _quadratic, **settings)
    assert again.already_complete and np.array_equal(again.best, first.best)
    assert held_out_calls and again.test_best == first.test_best != 123.0


def test_the_plot_rings_a_returned_centroid_off_the_best_so_far_line() -> None:
    from afterlearner import report

    losses = [1.0, 0.8, 0.5, 0.9, 0.52]

    def legend(returned) -> list[str]:
        figure = report.convergence_figure({"auto": losses}, returned=returned)
        labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
        report.pyplot().close(figure)
        return labels

    assert "auto: returned (final centroid)" in legend({"auto": (5, 0.52)})  # above the line's 0.5
    assert not any("returned" in label for label in legend({"auto": (3, 0.5)}))  # the best: on the line
    assert not any("returned" in label for label in legend(None))
