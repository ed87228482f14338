"""The images the latent diffusion model learns: scikit-learn's bundled 8×8 digits, upsampled to 16×16.

Pixels are scaled to [-1, 1] (the range diffusion models and their autoencoders expect). A fixed
permutation splits the 1,797 digits into a training part (autoencoder, UNet, judge) and a held-out
part from which the simulated users draw their hidden targets, so a target is a handwriting the
model has never seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

#: Side of the images the model generates.
IMAGE_SIZE = 16
#: Digits kept out of training; the simulated users' targets come from them.
HELD_OUT = 297
#: Seed of the fixed train/held-out permutation.
SPLIT_SEED = 0


@dataclass(frozen=True)
class DigitImages:
    """Images in [-1, 1] of shape (N, 1, 16, 16) and their labels, split into train and held-out."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    held_images: torch.Tensor
    held_labels: torch.Tensor


def upsample(images_8x8: np.ndarray) -> torch.Tensor:
    """(N, 8, 8) digits with values in [0, 16] → (N, 1, 16, 16) float tensor in [-1, 1]."""
    x = torch.as_tensor(np.asarray(images_8x8, dtype=np.float32) / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    return (x * 2.0 - 1.0).clamp(-1.0, 1.0)


def load() -> DigitImages:
    """All digits, upsampled and split (the split is the same on every call)."""
    digits = load_digits()
    images = upsample(digits.images)
    labels = torch.as_tensor(digits.target, dtype=torch.long)
    order = torch.as_tensor(np.random.default_rng(SPLIT_SEED).permutation(len(labels)))
    held, train = order[:HELD_OUT], order[HELD_OUT:]
    return DigitImages(images[train], labels[train], images[held], labels[held])
