"""The convolutional digit classifier the speed benchmarks retrofit (built in seconds, nothing downloaded).

scikit-learn's 8×8 digits are upsampled to 32×32 so the convolutional features dominate the cost of
a forward pass. The features are random convolutions (training them would cost minutes on a shared
2-core CPU and does not change timings); the 10-way linear head is trained on them, on a training
split. The ℵ-space: the head's bias (offsets) and one scale per output row, 20 scalars. ``pooled``
sets the head's size: 4 gives 1024 features (a head whose own compute is not negligible), 1 gives
64 (a small head, where per-candidate overhead dominates once the features are cached).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits

from afterlearner import Aleph
from afterlearner.losses import DatasetLoss, error_rate


class ConvNet(torch.nn.Module):
    """Three convolutions, pooled to ``pooled``×``pooled``, then a linear head on 64·pooled² features."""

    def __init__(self, pooled: int = 4) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(64, 64, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(pooled),
        )
        self.head = torch.nn.Linear(64 * pooled * pooled, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


@dataclass
class Setup:
    model: ConvNet
    aleph: Aleph
    loss: DatasetLoss
    x_aleph: torch.Tensor
    y_aleph: np.ndarray


def images(count: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
    digits = load_digits()
    x = torch.from_numpy((digits.images / 16.0).astype(np.float32)).unsqueeze(1)
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    return (x, digits.target) if count is None else (x[:count], digits.target[:count])


def build(aleph_size: int = 300, batch_size: int = 100, seed: int = 0, pooled: int = 4) -> Setup:
    """Model with a trained head, the ℵ-space, and the DatasetLoss on ``aleph_size`` held-out digits."""
    torch.manual_seed(seed)
    x, y = images()
    order = np.random.default_rng(seed).permutation(len(y))
    train, held = order[:600], order[600 : 600 + aleph_size]
    model = ConvNet(pooled).eval()
    with torch.no_grad():
        features = torch.flatten(model.features(x[train]), 1)
    optimizer = torch.optim.Adam(model.head.parameters(), lr=0.01)
    targets = torch.from_numpy(y[train]).long()
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model.head(features), targets).backward()
        optimizer.step()
    aleph = Aleph(model).add("head.bias").add("head.weight", mode="scale", per="row")
    loss = DatasetLoss(x[held], y[held], error_rate, batch_size=batch_size)
    return Setup(model, aleph, loss, x[held], y[held])
