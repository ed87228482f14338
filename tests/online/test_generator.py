"""The digit generator trained in the repository: loads, has the documented API, makes digit-like images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from afterlearner.experiments.digits import train_generator as training
from afterlearner.experiments.digits.generator import WEIGHTS, DigitGenerator, load_digit_generator


def test_committed_weights_are_small_and_load() -> None:
    assert WEIGHTS.stat().st_size < 1_000_000
    generator = load_digit_generator()
    assert generator.latent_dim == 8
    images = generator(torch.randn(5, generator.latent_dim, generator=torch.Generator().manual_seed(0)))
    assert images.shape == (5, 1, 8, 8)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert not any(p.requires_grad for p in generator.parameters())


def test_samples_look_like_digits_not_noise() -> None:
    """Samples are closer to real digits than shuffled-pixel versions of themselves are."""
    generator = load_digit_generator()
    real = training.digits_tensor().numpy()
    samples = generator(torch.randn(64, generator.latent_dim, generator=torch.Generator().manual_seed(1)))
    samples = samples.reshape(64, -1).numpy()
    shuffled = np.random.default_rng(0).permuted(samples, axis=1)

    def nearest(x: np.ndarray) -> float:
        return float(np.mean(np.min(((x[:, None, :] - real[None, :, :]) ** 2).sum(-1), axis=1)))

    assert nearest(samples) < 0.5 * nearest(shuffled)


def test_wrong_latent_shape_is_a_clear_error(tmp_path) -> None:
    generator = DigitGenerator()
    with pytest.raises(ValueError, match=r"shape \(N, 8\)"):
        generator(torch.zeros(3, 5))
    with pytest.raises(FileNotFoundError, match="train_generator"):
        load_digit_generator(tmp_path / "missing.pt")


@pytest.fixture
def one_torch_thread():
    """Bit-for-bit training needs one thread; the tests after this one keep the count they had."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_training_is_reproducible_and_learns(tmp_path, one_torch_thread) -> None:
    a, losses_a = training.train(seed=3, epochs=4, hidden=32)
    b, losses_b = training.train(seed=3, epochs=4, hidden=32)
    assert losses_a == losses_b
    assert losses_a[-1] < losses_a[0]
    training.save(a, tmp_path / "g.pt")
    loaded = load_digit_generator(tmp_path / "g.pt")
    z = torch.randn(2, 8)
    assert torch.equal(loaded(z), b(z))
