"""The digits demo (``afterlearner demo``): a classifier trained on a class-imbalanced split, retrofitted
for balanced error.

The scenario is common: the training data over-represent some classes, so the trained classifier is
biased towards them, while what people care about is the *balanced* error rate (every class counts
the same). That metric is not differentiable and not what training minimised. We retrofit the last
layer's bias (10 offsets) and per-class scales (10 factors) on a small balanced ℵ-set (30 digits
per class) and check the gain on a disjoint balanced held-out set. Everything comes from
scikit-learn's bundled ``load_digits``; training takes a second or two on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits

from afterlearner import presets
from afterlearner.losses import DatasetLoss, balanced_error
from afterlearner.task import Task

CLASSES = 10
ALEPH_PER_CLASS = 30
TEST_PER_CLASS = 40
#: Fraction of each class's training pool that is kept: class c keeps KEEP[c] of its digits.
KEEP = np.geomspace(1.0, 0.02, CLASSES)


class DigitNet(torch.nn.Module):
    """A small MLP on 8×8 digits: ``hidden`` features, then the ``fc`` classification layer."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.hidden = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU())
        self.fc = torch.nn.Linear(hidden, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(x))


@dataclass
class DigitData:
    """Imbalanced training split, balanced ℵ-set, balanced held-out test set."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_aleph: torch.Tensor
    y_aleph: np.ndarray
    x_test: torch.Tensor
    y_test: np.ndarray


def make_data(seed: int = 0) -> DigitData:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target
    rng = np.random.default_rng(seed)
    train, aleph, test = [], [], []
    for c in range(CLASSES):
        idx = rng.permutation(np.flatnonzero(y == c))
        aleph.extend(idx[:ALEPH_PER_CLASS])
        test.extend(idx[ALEPH_PER_CLASS : ALEPH_PER_CLASS + TEST_PER_CLASS])
        pool = idx[ALEPH_PER_CLASS + TEST_PER_CLASS :]
        train.extend(pool[: max(2, int(round(KEEP[c] * len(pool))))])
    train_idx, aleph_idx, test_idx = (np.array(part) for part in (train, aleph, test))
    return DigitData(
        torch.from_numpy(x[train_idx]),
        torch.from_numpy(y[train_idx]).long(),
        torch.from_numpy(x[aleph_idx]),
        y[aleph_idx],
        torch.from_numpy(x[test_idx]),
        y[test_idx],
    )


def train(data: DigitData, seed: int = 0, epochs: int = 300) -> DigitNet:
    """Ordinary cross-entropy training on the imbalanced split (what a user would have done)."""
    torch.manual_seed(seed)
    model = DigitNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(data.x_train), data.y_train)
        loss.backward()
        optimizer.step()
    return model.eval()


def balanced_error_of(model: torch.nn.Module, x: torch.Tensor, y: np.ndarray) -> float:
    """1 − balanced accuracy of ``model`` on the digits ``x`` with labels ``y``."""
    with torch.no_grad():
        return balanced_error(model(x), y)


def make_task(seed: int = 0) -> Task:
    """The demo as a :class:`Task`: 20 ℵ-scalars in the last layer, balanced error as ℵ-loss."""
    data = make_data(seed)
    model = train(data, seed)
    # the output layer's bias and one factor per class: Aleph(model).add("fc.bias")
    # .add("fc.weight", mode="scale", per="row"), found by the preset as the last Linear layer
    aleph = presets.classifier_head(model)
    return Task(
        aleph=aleph,
        loss=lambda m: balanced_error_of(m, data.x_aleph, data.y_aleph),
        # the held-out loss as a DatasetLoss: the same value, and its gain gets an interval
        test_loss=DatasetLoss(data.x_test, data.y_test, metric=balanced_error),
        name="digits-balanced-error",
        n=len(data.y_aleph),
        budget=200,
        description="digit classifier trained on an imbalanced split, retrofitted for balanced error",
    )


def task() -> Task:
    """Factory for ``afterlearner run src/afterlearner/experiments/digits/task.py:task``."""
    return make_task()
