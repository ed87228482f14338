"""Train the digit generator: a small VAE on scikit-learn's 8×8 digits; only the decoder is saved.

Run ``python -m afterlearner.experiments.digits.train_generator [--out PATH] [--seed N]``. It uses one CPU
thread, bundled data only, and takes well under a minute; the result is deterministic for a seed on
the same torch build. The committed ``generator.pt`` was made with the defaults.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from afterlearner.experiments.digits.generator import HIDDEN, LATENT_DIM, SIDE, WEIGHTS, DigitGenerator


class Encoder(torch.nn.Module):
    """Image (N, 64) → mean and log-variance of the latent posterior."""

    def __init__(self, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(SIDE * SIDE, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
        )
        self.head = torch.nn.Linear(hidden, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.head(self.body(x)).chunk(2, dim=1)
        return mean, log_var


def digits_tensor() -> torch.Tensor:
    """All 1797 digits as (N, 64) floats in [0, 1]."""
    return torch.from_numpy((load_digits().data / 16.0).astype(np.float32))


def train(
    seed: int = 0, epochs: int = 400, batch: int = 128, latent_dim: int = LATENT_DIM, hidden: int = HIDDEN
) -> tuple[DigitGenerator, list[float]]:
    """Train the VAE (Bernoulli likelihood, standard normal prior); return the decoder and epoch losses."""
    torch.manual_seed(seed)
    x = digits_tensor()
    encoder, decoder = Encoder(latent_dim, hidden), DigitGenerator(latent_dim, hidden)
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), batch):
            xb = x[order[start : start + batch]]
            mean, log_var = encoder(xb)
            z = mean + torch.randn(mean.shape, generator=generator) * (0.5 * log_var).exp()
            reconstruction = torch.nn.functional.binary_cross_entropy_with_logits(
                decoder.logits(z), xb, reduction="sum"
            )
            kl = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
            loss = (reconstruction + kl) / len(xb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(xb)
        losses.append(total / len(x))
    decoder.eval()
    return decoder, losses


def save(decoder: DigitGenerator, path: Path) -> None:
    state = {name: tensor.detach().clone() for name, tensor in decoder.state_dict().items()}
    torch.save({"latent_dim": decoder.latent_dim, "hidden": decoder.hidden, "state_dict": state}, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS, help=f"weights file (default {WEIGHTS.name})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=400)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    decoder, losses = train(args.seed, args.epochs)
    save(decoder, args.out)
    print(
        f"trained in {time.perf_counter() - started:.1f} s; final loss {losses[-1]:.2f} nats/image "
        f"(first epoch {losses[0]:.2f}); wrote {args.out} ({args.out.stat().st_size / 1024:.0f} kB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
