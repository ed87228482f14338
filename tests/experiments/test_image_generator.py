"""Image-generator experiment: the judges (classifiers, Fréchet distance), steered generator, reduced run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from afterlearner.experiments.digits.generator import load_digit_generator
from afterlearner.experiments.image_generator.experiment import (
    SECOND_JUDGE,
    held_out_metrics,
    sample_grid,
    samples_before_after,
    second_judge,
)
from afterlearner.experiments.image_generator.quality import (
    JUDGES,
    ConvDigitClassifier,
    DigitClassifier,
    Judge,
    frechet_distance,
    gaussian,
    load_classifier,
    real_digits,
)
from afterlearner.experiments.image_generator.task import SteeredGenerator, make_task
from afterlearner.experiments.image_generator.train_classifier import train
from afterlearner.retrofit import retrofit


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 3))
    assert frechet_distance(gaussian(a), gaussian(a)) == pytest.approx(0.0, abs=1e-4)
    shifted = gaussian(a + np.array([2.0, 0.0, 0.0]))
    assert frechet_distance(gaussian(a), shifted) == pytest.approx(4.0, rel=1e-3)
    # N(0, I) vs N(0, 4I) in 3 dimensions: tr(I + 4I − 2·2I) = 3
    assert frechet_distance((np.zeros(3), np.eye(3)), (np.zeros(3), 4 * np.eye(3))) == pytest.approx(
        3.0, abs=1e-4
    )
    with pytest.raises(ValueError, match="2 samples"):
        gaussian(a[:1])


@pytest.mark.parametrize("kind", sorted(JUDGES))
def test_each_judge_prefers_real_digits_to_noise(kind):
    classifier = load_classifier(kind=kind)
    images, labels = real_digits()
    assert float((classifier(images).argmax(1).numpy() == labels).mean()) > 0.95
    judge = Judge(classifier, images[:800])
    real = judge.scores(images[800:])
    noise = judge.scores(torch.rand(997, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert real["frechet distance"] < noise["frechet distance"] / 5
    assert real["confidence"] > noise["confidence"] and real["class entropy"] > 2.2


def test_the_second_judge_is_another_network():
    first, second = load_classifier(), load_classifier(kind="cnn")
    assert isinstance(first, DigitClassifier) and isinstance(second, ConvDigitClassifier)
    images, _ = real_digits()
    assert first.features(images[:5]).shape == (5, 32) and second.features(images[:5]).shape == (5, 24)
    with pytest.raises(ValueError, match="kind must be one of"):
        load_classifier(kind="vit")


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(JUDGES))
def test_training_script_reproduces_the_committed_judges(kind):
    torch.set_num_threads(1)
    model, accuracy = train(seed=JUDGES[kind][2], kind=kind)
    committed = load_classifier(kind=kind).state_dict()
    assert accuracy > 0.95
    assert all(torch.equal(value, committed[key]) for key, value in model.state_dict().items())


def test_steered_generator_at_identity_is_the_generator():
    generator = load_digit_generator()
    steered = SteeredGenerator(generator, generator.latent_dim)
    z = torch.randn(5, generator.latent_dim)
    with torch.no_grad():
        assert torch.equal(steered(z), generator(z))
        steered.truncation.fill_(0.0)
        assert torch.allclose(
            steered(z), generator(torch.zeros(5, generator.latent_dim)).expand(5, -1, -1, -1)
        )


def test_reduced_retrofit_lowers_the_frechet_distance_and_draws_samples(tmp_path):
    task = make_task(reduced=True)
    assert len(task.aleph) == 1 + 8 + 3 and task.n is None  # no bound for a Fréchet distance
    assert len(task.loss.latents) == 150
    before = held_out_metrics(task)
    result = retrofit(
        task.aleph,
        task.loss,
        budget=60,
        optimizer="DiagonalCMA",
        seed=0,
        progress=False,
        test_loss=task.test_loss,
        n=task.n,
    )
    assert result.best_loss < result.initial_loss
    assert set(held_out_metrics(task)) == {"frechet distance", "confidence", "class entropy"}
    after = held_out_metrics(task)
    [second] = second_judge(task, result).values()
    assert SECOND_JUDGE in second_judge(task, result)
    assert held_out_metrics(task) == after  # the hook leaves the retrofitted generator in place
    assert second.gain.n == 300 and second.gain.low is not None and second.gain.low <= second.gain.value
    assert second.before.value - second.after.value == pytest.approx(second.gain.value)
    [path] = samples_before_after(task, result, tmp_path)
    assert path.stat().st_size > 2000
    assert np.array_equal(task.aleph.to_vector(task.aleph.to_value(result.best)), result.best)
    result.restore()
    assert held_out_metrics(task) == before


def test_sample_grid_and_choices():
    grid = sample_grid(torch.zeros(3, 1, 8, 8), columns=2)
    assert grid.shape == (19, 19) and grid[1, 1] == 1.0 and grid[0, 0] == 1.0
    assert len(make_task(reduced=True, aleph="truncation").aleph) == 1
    with pytest.raises(ValueError, match="aleph must be one of"):
        make_task(reduced=True, aleph="all")
