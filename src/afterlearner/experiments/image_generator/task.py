"""Image generator quality: the digit generator retrofitted for a Fréchet distance on a classifier's features.

The generator is the VAE decoder of :mod:`afterlearner.experiments.digits.generator`, sampled as trained
from z ~ N(0, I). A VAE's prior and its decoder disagree (the aggregate posterior is not N(0, I)),
so many samples are blurry in-between digits. The quality judge is a separate model trained in this
repository (:mod:`.quality`): the Fréchet distance between the generated and the real digits in the
judge's feature space (an FID for 8×8 digits). Retrofitting searches the latent truncation ψ and a
latent mean shift μ (the generator sees μ + ψ·z) and one output scale per layer (12 scalars), on
a fixed set of 400 latents compared with 600 real digits, and is checked on 1000 other latents
compared with the other 1197 real digits.

The held-out loss shows its parts as a corpus metric over the generated samples (the ``DatasetLoss``
interface of :class:`QualityLoss`): the judge's features of each held-out latent's image are the items,
and the Fréchet distance is recomputed on resampled latents (the real digits stay fixed) for a paired
interval of the held-out gain.

The retrofit is tuned against one judge (the MLP of :mod:`.quality`); :func:`second_judge_loss` is the
same held-out loss through the second, independently trained judge (a CNN, another seed), which
the search never consults: a generator that only games the first judge's features would not
improve there.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from afterlearner.experiments.digits.generator import load_digit_generator
from afterlearner.experiments.image_generator.quality import (
    Judge,
    frechet_distance,
    gaussian,
    load_classifier,
    one_blas_thread,
    real_digits,
)
from afterlearner.space import Aleph
from afterlearner.task import Task

ALEPH_LATENTS, TEST_LATENTS = 400, 1000
REDUCED_ALEPH_LATENTS, REDUCED_TEST_LATENTS = 150, 300
ALEPH_REAL = 600
LATENT_SEEDS = (1, 2)


class SteeredGenerator(nn.Module):
    """``generator(mean_shift + truncation · z)``: the latent-side ℵ-parameters of a generator."""

    def __init__(self, generator: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.generator = generator
        self.truncation = nn.Parameter(torch.tensor(1.0), requires_grad=False)
        self.mean_shift = nn.Parameter(torch.zeros(latent_dim), requires_grad=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(self.mean_shift + self.truncation * z)


class QualityLoss:
    """Fréchet distance of the generator's images from fixed latents to the judge's real digits.

    Besides calling it, it offers the ``DatasetLoss`` interface over latents: :meth:`outputs` (the
    judge's features of each latent's image), :meth:`metric` (the Fréchet distance of any subset of
    those rows to the real digits), :meth:`score` and ``targets`` (the latents: they only say what the
    items are). ``score(outputs(model))`` is ``loss(model)``, to the bit.
    """

    def __init__(self, judge: Judge, latents: torch.Tensor) -> None:
        self.judge, self.latents = judge, latents
        self.targets = latents

    def images(self, model: nn.Module) -> torch.Tensor:
        with torch.no_grad():
            return model(self.latents)

    def metrics(self, model: nn.Module) -> dict[str, float]:
        return self.judge.scores(self.images(model))

    def __call__(self, model: nn.Module) -> float:
        return self.metrics(model)["frechet distance"]

    def outputs(self, model: nn.Module) -> torch.Tensor:
        """The judge's features (latents, features) of the images of the latents."""
        with torch.no_grad():
            return self.judge.classifier.features(self.images(model))

    def metric(self, outputs: torch.Tensor, targets: torch.Tensor | None = None) -> float:
        """The Fréchet distance of these feature rows to the real digits (``targets`` is not needed).

        One BLAS thread: the held-out bootstrap computes it a thousand times on small matrices, where
        threads only wait for each other (on a loaded 2-core machine a covariance took 60 ms with
        two threads, 0.2 ms with one); the result is the same to the bit.
        """
        with one_blas_thread():
            return frechet_distance(gaussian(outputs.numpy()), self.judge.real)

    def score(self, outputs: torch.Tensor) -> float:
        return self.metric(outputs, self.targets)


def latents(count: int, seed: int, dim: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32))


#: ℵ-space choices: ``"latent+layers"`` (default): truncation, mean shift and one scale per layer;
#: ``"latent"``: truncation and mean shift only; ``"truncation"``: ψ alone.
ALEPH_CHOICES = ("latent+layers", "latent", "truncation")


def split_real() -> tuple[torch.Tensor, torch.Tensor]:
    """The real digits of the ℵ-set (600) and of the held-out set (the other 1197), a fixed split."""
    real, _ = real_digits()
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    return real[order[:ALEPH_REAL]], real[order[ALEPH_REAL:]]


def second_judge_loss(reduced: bool = False) -> QualityLoss:
    """The held-out loss (same latents, same real digits) through the second judge, the CNN."""
    test_count = REDUCED_TEST_LATENTS if reduced else TEST_LATENTS
    _, test_real = split_real()
    latent_dim = load_digit_generator().latent_dim
    return QualityLoss(
        Judge(load_classifier(kind="cnn"), test_real), latents(test_count, LATENT_SEEDS[1], latent_dim)
    )


def make_task(reduced: bool = False, aleph: str = "latent+layers") -> Task:
    """The experiment on the committed generator and judge."""
    if aleph not in ALEPH_CHOICES:
        raise ValueError(f"aleph must be one of {', '.join(ALEPH_CHOICES)}, got {aleph!r}")
    generator = load_digit_generator()
    model = SteeredGenerator(generator, generator.latent_dim).eval()
    classifier = load_classifier()
    aleph_real, test_real = split_real()
    aleph_count = REDUCED_ALEPH_LATENTS if reduced else ALEPH_LATENTS
    test_count = REDUCED_TEST_LATENTS if reduced else TEST_LATENTS
    space = Aleph(model).add("truncation", mode="scale", step=0.1, low=0.05, high=1.5)
    if aleph != "truncation":
        space.add("mean_shift", step=0.2, low=-2.0, high=2.0)
    if aleph == "latent+layers":
        for layer in ("fc1", "fc2", "out"):
            space.add(f"generator.{layer}.weight", mode="scale", step=0.05)
    return Task(
        aleph=space,
        loss=QualityLoss(
            Judge(classifier, aleph_real), latents(aleph_count, LATENT_SEEDS[0], generator.latent_dim)
        ),
        test_loss=QualityLoss(
            Judge(classifier, test_real), latents(test_count, LATENT_SEEDS[1], generator.latent_dim)
        ),
        name="image-generator-fd",
        description="digit generator retrofitted for the Fréchet distance on a classifier's features",
    )
