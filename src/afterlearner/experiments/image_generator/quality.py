"""The quality judges of generated digits: separate classifiers and a Fréchet distance on their features.

The classifier (an MLP on scikit-learn's 8×8 digits, trained by ``train_classifier.py`` next to
this file) plays the role Inception plays in FID: its penultimate layer gives features, and the
Fréchet distance between the Gaussian fits of generated and real features measures both fidelity
and diversity. Its confidence (mean max-softmax probability) says how recognisable each sample is.

The retrofit is tuned against that judge, so a generator that games its features would pass its
own check. A *second judge*, trained independently by the same script (a small CNN instead of an
MLP, another seed, other feature width), is never consulted during the search: it only scores the
held-out samples afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from sklearn.datasets import load_digits
from torch import nn

#: The committed classifier weights: the judge the retrofit is tuned against.
WEIGHTS = Path(__file__).with_name("digit_classifier.pt")
FEATURES = 32
#: The committed weights of the second judge (never seen by the search).
SECOND_WEIGHTS = Path(__file__).with_name("digit_classifier_cnn.pt")
SECOND_FEATURES = 24


class DigitClassifier(nn.Module):
    """Images (N, 1, 8, 8) or (N, 64) in [0, 1] → class logits; :meth:`features` the penultimate layer."""

    def __init__(self, hidden: int = 128, features: int = FEATURES) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, features), nn.ReLU())
        self.head = nn.Linear(features, 10)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images.reshape(len(images), 64))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class ConvDigitClassifier(nn.Module):
    """The second judge's architecture: two convolutions, then a 24-unit feature layer and the head.

    Same interface as :class:`DigitClassifier` (:meth:`features`, ``head``), nothing else shared.
    """

    def __init__(self, features: int = SECOND_FEATURES) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),  # 4×4
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, features),
            nn.ReLU(),
        )
        self.head = nn.Linear(features, 10)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images.reshape(len(images), 1, 8, 8))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


#: The two judges: name → (architecture, weights, training seed).
JUDGES: dict[str, tuple[type[nn.Module], Path, int]] = {
    "mlp": (DigitClassifier, WEIGHTS, 0),
    "cnn": (ConvDigitClassifier, SECOND_WEIGHTS, 1),
}


def real_digits() -> tuple[torch.Tensor, np.ndarray]:
    """All 1797 scikit-learn digits as (N, 1, 8, 8) floats in [0, 1], and their labels."""
    digits = load_digits()
    return torch.from_numpy((digits.data / 16.0).astype(np.float32)).view(-1, 1, 8, 8), digits.target


def load_classifier(path: str | Path | None = None, kind: str = "mlp") -> nn.Module:
    """The committed judge ``kind`` (``"mlp"``: the retrofit's, ``"cnn"``: the second), frozen, eval mode."""
    if kind not in JUDGES:
        raise ValueError(f"kind must be one of {', '.join(JUDGES)}, got {kind!r}")
    architecture, default, _ = JUDGES[kind]
    path = Path(path) if path is not None else default
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run `python -m afterlearner.experiments.image_generator.train_classifier "
            f"--judge {kind}`"
        )
    model = architecture()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval().requires_grad_(False)


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of feature rows."""
    features = np.asarray(features, dtype=np.float64)
    if len(features) < 2:
        raise ValueError("a Fréchet distance needs at least 2 samples")
    return features.mean(axis=0), np.cov(features, rowvar=False)


@functools.cache
def _blas_controller():  # -> threadpoolctl.ThreadpoolController (made once: finding the libraries is slow)
    from threadpoolctl import ThreadpoolController  # a dependency of scikit-learn

    return ThreadpoolController()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Numpy's BLAS on one thread inside the block (small matrices: threads would only wait)."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


def frechet_distance(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]) -> float:
    """‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½) between two Gaussians (as in FID)."""
    (mu1, sigma1), (mu2, sigma2) = first, second
    offset = np.eye(len(sigma1)) * 1e-6  # dead ReLU features make covariances singular
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * np.real(root)))


class Judge:
    """Scores generated images against a fixed set of real digits with the classifier."""

    def __init__(self, classifier: nn.Module, real: torch.Tensor) -> None:
        self.classifier = classifier
        with torch.no_grad():
            self.real = gaussian(classifier.features(real).numpy())

    def scores(self, images: torch.Tensor) -> dict[str, float]:
        """Fréchet distance to the real digits, mean confidence, and the entropy of the class histogram."""
        with torch.no_grad():
            features = self.classifier.features(images)
            probabilities = torch.softmax(self.classifier.head(features), dim=1)
        histogram = np.bincount(probabilities.argmax(dim=1).numpy(), minlength=10) / len(images)
        entropy = float(-(histogram[histogram > 0] * np.log(histogram[histogram > 0])).sum())
        return {
            "frechet distance": frechet_distance(gaussian(features.numpy()), self.real),
            "confidence": float(probabilities.max(dim=1).values.mean()),
            "class entropy": entropy,
        }
