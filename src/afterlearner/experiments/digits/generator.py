"""A small image generator for 8×8 digits: the decoder of a VAE trained on scikit-learn's digits.

Why it exists: online retrofitting needs a generator whose output a person (or a simulated user) can
judge, that loads instantly and runs anywhere without downloads. The weights
(``generator.pt``, about 100 kB) were produced by ``train_generator.py`` next to this
file, from scikit-learn's bundled ``load_digits`` only.

API::

    from afterlearner.experiments.digits.generator import load_digit_generator
    generator = load_digit_generator()          # eval mode, on CPU
    z = torch.zeros(4, generator.latent_dim)    # the latent prior is N(0, I)
    images = generator(z)                       # (4, 1, 8, 8), values in [0, 1]

Layers are named ``fc1``, ``fc2`` (hidden, ReLU) and ``out`` (sigmoid) so that an :class:`~afterlearner.Aleph`
can search a few of their scales, e.g. ``Aleph(generator).add("*.weight", mode="scale")``.
"""

from __future__ import annotations

from pathlib import Path

import torch

#: Where the trained weights live (committed in the repository).
WEIGHTS = Path(__file__).with_name("generator.pt")
#: Latent size and hidden width of the committed weights.
LATENT_DIM = 8
HIDDEN = 128
#: Side of the generated square images.
SIDE = 8


class DigitGenerator(torch.nn.Module):
    """Decoder: latent ``z`` (N, latent_dim) → images (N, 1, 8, 8) in [0, 1]."""

    def __init__(self, latent_dim: int = LATENT_DIM, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.fc1 = torch.nn.Linear(latent_dim, hidden)
        self.fc2 = torch.nn.Linear(hidden, hidden)
        self.out = torch.nn.Linear(hidden, SIDE * SIDE)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid pixel values (N, 64); the training loss uses these for stability."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"latent must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        h = torch.relu(self.fc1(z))
        h = torch.relu(self.fc2(h))
        return self.out(h)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(z)).view(-1, 1, SIDE, SIDE)


def load_digit_generator(path: str | Path | None = None) -> DigitGenerator:
    """The trained generator (eval mode, gradients off), from ``path`` or the committed weights."""
    path = Path(path) if path is not None else WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run `python -m afterlearner.experiments.digits.train_generator` to train it"
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    generator = DigitGenerator(int(checkpoint["latent_dim"]), int(checkpoint["hidden"]))
    generator.load_state_dict(checkpoint["state_dict"])
    generator.eval()
    generator.requires_grad_(False)
    return generator
