"""A simulated user with a hidden target: they want a digit drawn like one particular handwriting.

The target is a held-out digit (never seen in training). The user's taste is the cosine similarity
between the judge's features of an image and of the target, both measured from the mean features
of the typical digits of the target's class (1 = same style, 0 = a typical digit of that class, −1
= the opposite style). Without that centring every "3" would look alike to the judge (cosine ≈ 0.96
on raw features): the centring makes the score about the *handwriting*, not the class. The user
never reveals that number: they only say which of several images is best, or whether a new one
beats the current best. The score is read only to *report* the curve, never by the optimizer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from afterlearner.experiments.ldm.judge import Judge


def _as_batch(images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """(B, H, W) images in [0, 1] → (B, 1, H, W) in [-1, 1]."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"images must be (H, W) or (B, H, W), got shape {array.shape}")
    return torch.as_tensor(array).unsqueeze(1) * 2.0 - 1.0


class TargetUser:
    """Answers comparisons by closeness to ``target`` (an (H, W) image in [0, 1]) in ``judge``'s features.

    ``typical``: images (B, H, W) in [0, 1] of the target's class; their mean features are the
    origin the likeness is measured from (none: the raw features are compared).
    """

    def __init__(self, judge: Judge, target: np.ndarray, typical: np.ndarray | None = None) -> None:
        self.judge = judge
        with torch.no_grad():
            self._centre = (
                judge.features(_as_batch(typical)).mean(dim=0)
                if typical is not None
                else torch.zeros(judge.head.in_features)
            )
            self._target = self._direction(_as_batch(target))[0]

    def _direction(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.judge.features(batch) - self._centre, dim=1)

    @torch.no_grad()
    def scores(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Hidden target scores in [-1, 1] (higher is closer to the target), one per image."""
        return (self._direction(_as_batch(images)) @ self._target).numpy().astype(float)

    def score(self, image: np.ndarray) -> float:
        return float(self.scores(image)[0])

    def best_of(self, images: Sequence[np.ndarray]) -> int:
        """Index of the image the user clicks among those shown (ties go to the first)."""
        return int(np.argmax(self.scores(images)))

    def ranking(self, images: Sequence[np.ndarray]) -> list[int]:
        """Indices from the user's favourite to the least liked."""
        return [int(i) for i in np.argsort(-self.scores(images), kind="stable")]

    def prefers(self, image: np.ndarray, than: np.ndarray) -> bool:
        """Whether ``image`` is strictly better than ``than`` (a pairwise answer)."""
        first, second = self.scores([image, than])
        return bool(first > second)
