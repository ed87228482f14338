"""Doom experiment, against the real ViZDoom engine (headless, bundled Freedoom scenario)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from afterlearner import experiments
from afterlearner.experiments.doom import experiment as doom
from afterlearner.experiments.doom import game as doom_game
from afterlearner.experiments.doom import task as doom_task
from afterlearner.experiments.doom.episodes import ALEPH_SEEDS, TEST_SEEDS, KillsPerLife, play
from afterlearner.experiments.doom.experiment import kills_table
from afterlearner.experiments.doom.policy import DoomPolicy, Sampler, load_policy
from afterlearner.experiments.doom.teacher import teacher_action
from afterlearner.experiments.doom.train import train
from afterlearner.retrofit import retrofit


@pytest.fixture(scope="module")
def labelled_game():
    game = doom_game.make_game(labels=True)
    yield game
    game.close()


def test_observation_is_the_scaled_horizon_band(labelled_game) -> None:
    labelled_game.set_seed(1)
    labelled_game.new_episode()
    observation = doom_game.observe(labelled_game.get_state())
    assert observation.frame.shape == (1, 30, 80) and observation.frame.dtype == np.float32
    assert 0.0 <= observation.frame.min() < observation.frame.max() <= 1.0
    np.testing.assert_allclose(observation.variables, [1.0, 1.0])  # 26 rounds, 100 health
    with pytest.raises(ValueError, match="action"):
        doom_game.button(3)


def test_teacher_kills_more_than_random_actions(labelled_game) -> None:
    seeds = [1, 2, 3]
    taught = [play(labelled_game, lambda state, _: teacher_action(state), s) for s in seeds]
    rng = np.random.default_rng(0)
    random = [play(labelled_game, lambda *_: int(rng.integers(3)), s) for s in seeds]
    assert np.mean(taught) >= 4 and np.mean(taught) > np.mean(random) + 2


def test_episodes_are_reproducible_and_temperature_is_read_live() -> None:
    policy, sampler = load_policy(), Sampler(1.0)
    seeds = range(ALEPH_SEEDS, ALEPH_SEEDS + 3)
    first = KillsPerLife(seeds, sampler)
    kills = first.kills(policy)
    again = KillsPerLife(seeds, Sampler(1.0))
    np.testing.assert_array_equal(kills, again.kills(policy))  # fresh game, same seeds: same episodes
    assert first(policy) == -kills.mean() and kills.dtype.kind == "i" and (kills >= 0).all()
    sampler.temperature = 0.0
    with pytest.raises(ValueError, match="temperature"):
        first(policy)
    sampler.greedy = True  # argmax: the temperature is not read
    greedy_kills = first.kills(policy)
    chooser = lambda state, observation: int(policy(*doom_game.batch([observation]))[0].argmax())  # noqa: E731
    with torch.no_grad():
        by_hand = [play(first._game, chooser, seed) for seed in seeds]
    np.testing.assert_array_equal(greedy_kills, by_hand)
    sampler.greedy, sampler.temperature = False, 1.0
    np.testing.assert_array_equal(first.kills(policy), kills)  # remembered apart from the greedy result
    first.close()
    again.close()
    with pytest.raises(ValueError, match="seed"):
        KillsPerLife([], sampler)


def test_training_script_trains_a_policy() -> None:
    torch.manual_seed(0)
    untrained = DoomPolicy().state_dict()
    policy = train(rounds=1, episodes=1, epochs=1, seed=0)
    assert isinstance(policy, DoomPolicy) and not policy.training
    assert any(not torch.equal(untrained[k], v) for k, v in policy.state_dict().items())


def test_committed_weights_are_small_and_load() -> None:
    from afterlearner.experiments.doom.policy import WEIGHTS

    assert WEIGHTS.stat().st_size < 2_000_000
    policy = load_policy()
    frames, variables = torch.zeros(2, 1, 30, 80), torch.ones(2, 2)
    assert policy(frames, variables).shape == (2, 3)


def test_reduced_retrofit_plays_real_episodes(tmp_path) -> None:
    experiment = experiments.get("doom")
    assert experiment.make_task is doom_task.make_task and 1 <= experiment.budget <= 300
    task = doom_task.make_task(reduced=True)
    assert len(task.aleph) == 7 and task.n == len(task.loss.seeds)
    assert not set(task.loss.seeds) & set(task.test_loss.seeds) and min(task.test_loss.seeds) >= TEST_SEEDS
    trained = {k: v.clone() for k, v in task.aleph.model.state_dict().items()}
    result = retrofit(
        task.aleph,
        task.loss,
        budget=5,
        optimizer=experiment.optimizer,
        seed=0,
        test_loss=task.test_loss,
        n=task.n,
        progress=False,
    )
    losses = result.losses()
    assert all(loss is not None and loss <= 0 for loss in losses)
    assert result.best_loss == min(losses) <= result.initial_loss == losses[0]
    metrics = doom.held_out_metrics(task)
    assert 0.0 <= metrics["held-out share of episodes ≥ 10 kills"] <= 1.0
    before, after = doom.kills_before_after(task, result)
    assert -before.mean() == pytest.approx(result.test_initial)
    assert -after.mean() == pytest.approx(result.test_best)
    paths = doom.kills_report(task, result, tmp_path)
    assert paths[0].exists() and paths[0].stat().st_size > 1000
    assert "| retrofitted |" in paths[1].read_text() and "sampler.temperature" in paths[1].read_text()
    assert "| trained, greedy |" in paths[1].read_text()
    kills = doom.kills_of_each(task, result)
    sampled_to_greedy, greedy_to_retrofitted = doom.greedy_baseline(task, result).values()
    assert sampled_to_greedy.gain.n == greedy_to_retrofitted.gain.n == len(task.test_loss.seeds)
    assert sampled_to_greedy.gain.value == pytest.approx(
        kills["trained, greedy"].mean() - kills["trained"].mean()
    )
    assert greedy_to_retrofitted.gain.value == pytest.approx(after.mean() - kills["trained, greedy"].mean())
    assert (
        greedy_to_retrofitted.gain.low <= greedy_to_retrofitted.gain.value <= greedy_to_retrofitted.gain.high
    )
    assert not task.test_loss.sampler.greedy and -doom.kills_before_after(task, result)[
        1
    ].mean() == pytest.approx(result.test_best)  # the hooks leave the retrofitted policy in place, sampled
    result.restore()
    assert task.loss.sampler.temperature == 1.0
    assert all(torch.equal(trained[k], v) for k, v in task.aleph.model.state_dict().items())
    task.loss.close()
    task.test_loss.close()


def test_kills_table() -> None:
    table = kills_table({"trained": np.array([0, 2, 4]), "retrofitted": np.array([3, 3, 3])})
    assert "| trained | 2.00 | 1.63 | 0 |" in table and "| retrofitted | 3.00 | 0.00 | 3 |" in table


def test_the_no_temperature_variant_searches_the_head_alone() -> None:
    experiment = experiments.get("doom-no-temperature")
    task = experiment.task(reduced=True)
    assert len(task.aleph) == 6 and "sampler.temperature" not in task.aleph.labels()
    assert task.name != experiments.get("doom").task(reduced=True).name
    assert (
        experiment.budget == experiments.get("doom").budget and experiment.comparisons is doom.greedy_baseline
    )


@pytest.mark.slow
def test_worker_processes_play_the_same_episodes() -> None:
    """``reproduce doom`` evaluates in 2 worker processes, each with its own game: same kills."""
    from afterlearner.evaluators.processes import ProcessEvaluator

    experiment = experiments.get("doom")
    assert experiment.processes == 2 and experiment.workers == 2
    task = experiment.task(reduced=True)
    identity = task.aleph.identity()  # 3 bias offsets, 3 row scales, the temperature
    changes = ([1.0, -1.0, 0.0, 0, 0, 0, 0], [0, 0, 0, -0.5, 0.5, 0, 0], [0, 0, 0, 0, 0, 0, -0.7])
    vectors = [identity] + [identity + np.array(change) for change in changes]
    local = []
    for vector in vectors:
        task.aleph.write(vector)
        local.append(task.loss(task.aleph.model))
    task.aleph.restore()
    spec, kwargs = experiment.task_spec(), experiment.factory_kwargs(reduced=True)
    with ProcessEvaluator(spec, processes=2, aleph=task.aleph, kwargs=kwargs) as evaluator:
        remote = dict(evaluator.evaluate(vectors))
    assert [remote[i].loss for i in range(4)] == local
    assert len(set(local)) > 1  # the candidates play differently: the comparison can fail
    task.loss.close()
    task.test_loss.close()
