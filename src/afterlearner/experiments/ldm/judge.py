"""A small digit classifier whose hidden features describe a handwriting style.

The simulated users compare generated images by how close their features are to a hidden target
digit's features (cosine similarity of the penultimate layer). The classifier is trained in the
repository on the training part of the digits (see ``train.py``) and its weights are committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from afterlearner.experiments.ldm.data import IMAGE_SIZE

FEATURES = 32


class Judge(torch.nn.Module):
    """A 2-layer CNN on 16×16 digits in [-1, 1]: ``features`` (32 numbers), then 10 class logits."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(32 * (IMAGE_SIZE // 4) ** 2, FEATURES),
            torch.nn.ReLU(),
        )
        self.head = torch.nn.Linear(FEATURES, 10)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """Pipeline output (B, H, W, 1) in [0, 1] → judge input (B, 1, H, W) in [-1, 1]."""
    return torch.as_tensor(np.asarray(images, dtype=np.float32)).permute(0, 3, 1, 2) * 2.0 - 1.0


def train_judge(images: torch.Tensor, labels: torch.Tensor, seed: int = 0, epochs: int = 15) -> Judge:
    """Cross-entropy training with light pixel noise (so features stay sensible on generated images)."""
    torch.manual_seed(seed)
    judge = Judge()
    optimizer = torch.optim.Adam(judge.parameters(), lr=2e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(images)).split(64):
            noisy = images[batch] + 0.1 * torch.randn_like(images[batch])
            loss = torch.nn.functional.cross_entropy(judge(noisy), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return judge.eval()


def load_judge(path: str | Path) -> Judge:
    judge = Judge()
    judge.load_state_dict(torch.load(path, weights_only=True))
    return judge.eval()


@torch.no_grad()
def accuracy(judge: Judge, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((judge(images).argmax(dim=1) == labels).float().mean())
