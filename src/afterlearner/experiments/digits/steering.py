"""The online demo: steer the repository's digit generator by clicks.

The ℵ-parameters are the generator's latent (8 offsets from the all-zero latent, step 1: the
latent prior is N(0, I)) and the scales of its three weight matrices (3 factors in [0.25, 2]):
11 numbers. :func:`digit_task` is the factory ``afterlearner feedback demo`` serves.

For measurements, :func:`style_distance` is a hidden target a simulated user can judge by: the mean
squared pixel distance between the generated image and one handwritten digit of scikit-learn's
digits ("draw me a digit in this person's style").
"""

from __future__ import annotations

import threading
from functools import cache

import numpy as np
import torch
from sklearn.datasets import load_digits

from afterlearner.experiments.digits.generator import DigitGenerator, load_digit_generator
from afterlearner.online.render import Rendering, image
from afterlearner.online.task import FeedbackTask
from afterlearner.space import Aleph

#: Step of the latent offsets (the prior's standard deviation) and the range of the weight scales.
LATENT_STEP = 1.0
SCALE_RANGE = (0.25, 2.0)


class SteerableDigits(torch.nn.Module):
    """The generator with its latent held as a (frozen) parameter, so the latent is an ℵ-parameter."""

    def __init__(self, generator: DigitGenerator) -> None:
        super().__init__()
        self.generator = generator
        self.latent = torch.nn.Parameter(torch.zeros(1, generator.latent_dim), requires_grad=False)

    def forward(self) -> torch.Tensor:
        return self.generator(self.latent)[0]


class DigitSteering:
    """The demo's model and ℵ-space, with a thread-safe candidate → image function."""

    def __init__(self, generator: DigitGenerator | None = None) -> None:
        self.model = SteerableDigits(generator if generator is not None else load_digit_generator())
        self.aleph = Aleph(self.model).add("latent", step=LATENT_STEP)
        self.aleph.add("generator.*.weight", mode="scale", low=SCALE_RANGE[0], high=SCALE_RANGE[1])
        self._lock = threading.Lock()

    def image(self, vector: np.ndarray) -> np.ndarray:
        """The (8, 8) image in [0, 1] a candidate generates."""
        with self._lock, torch.no_grad():
            with self.aleph.applied(np.asarray(vector, dtype=float)):
                return self.model()[0].numpy().astype(float)

    def render(self, vector: np.ndarray) -> Rendering:
        return image(self.image(vector), size=160)

    def task(self, k: int = 4, budget: int = 30) -> FeedbackTask:
        return FeedbackTask(
            self.aleph,
            self.render,
            k=k,
            budget=budget,
            name="digit generator",
            prompt="Which digit do you like best?",
            description="An 8×8 digit generator trained in this repository: "
            "8 latent offsets, 3 weight scales.",
        )


def digit_task() -> FeedbackTask:
    """The demo's feedback task (the factory ``afterlearner feedback demo`` serves)."""
    return DigitSteering().task()


#: The hidden target of the measurements in docs/online.md: sample 200 of scikit-learn's digits.
TARGET_SAMPLE = 200


@cache
def target_image(sample: int = TARGET_SAMPLE) -> np.ndarray:
    """One handwritten digit of scikit-learn's digits as an (8, 8) image in [0, 1]: a target style."""
    images = load_digits().images
    if not 0 <= sample < len(images):
        raise ValueError(f"sample must be 0..{len(images) - 1}, got {sample!r}")
    return images[sample] / 16.0


def style_distance(picture: np.ndarray, sample: int = TARGET_SAMPLE) -> float:
    """Mean squared pixel distance of an (8, 8) image to the target digit ``sample`` (lower is closer)."""
    return float(np.mean((np.asarray(picture, dtype=float).reshape(8, 8) - target_image(sample)) ** 2))
