"""Train the enhancement network: ``python -m afterlearner.experiments.speech.train``.

An ordinary differentiable training for a signal-level proxy: the training sentences spoken by the
system's voice, each mixed with white, pink or brown noise at an SNR drawn from [0, 20] dB, and the
network fitted (mean squared error, Adam) to the ideal ratio mask sqrt(clean / (clean + noise)) of
every band and frame. No recogniser, no word error rate. One CPU thread, about two minutes; writes
``enhancer.pt``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from afterlearner.experiments.speech.enhance import WEIGHTS, Enhancer, band_energies, features, stft
from afterlearner.experiments.speech.noise import Coloured, add_noise
from afterlearner.experiments.speech.sentences import split
from afterlearner.experiments.speech.synth import synthesize
from afterlearner.experiments.speech.task import VOICE
from afterlearner.experiments.training import fit, save

#: Noise colours and the SNR range of the training mixtures.
ALPHAS = (0.0, 1.0, 2.0)
SNR_RANGE = (0.0, 20.0)
#: Seed of the training mixtures (noise colours, SNRs, noise samples).
DATA_SEED = 7


def training_frames(sentences: int, seed: int = DATA_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, ideal band gains) of every frame of ``sentences`` noisy training mixtures."""
    rng = np.random.default_rng(seed)
    inputs, targets = [], []
    for text in split("train", sentences):
        speech = synthesize(text, VOICE)
        noise_kind, snr = Coloured(float(rng.choice(ALPHAS))), float(rng.uniform(*SNR_RANGE))
        noisy, noise = add_noise(speech, noise_kind, snr, int(rng.integers(2**31)))
        clean_bands = band_energies(stft(speech))
        noise_bands = band_energies(stft(np.clip(np.round(noise), -32768, 32767).astype(np.int16)))
        inputs.append(features(stft(noisy)))
        targets.append(torch.sqrt(clean_bands / (clean_bands + noise_bands + 1e-12)))
    return torch.cat(inputs), torch.cat(targets)


def train(sentences: int = 800, epochs: int = 12, seed: int = 0, hidden: int = 128) -> Enhancer:
    """The network fitted to the ideal ratio masks of ``sentences`` training mixtures."""
    torch.manual_seed(seed)
    x, target = training_frames(sentences)
    model = Enhancer(hidden)
    model.mean.copy_(x.mean(dim=0))
    model.std.copy_(x.std(dim=0).clamp_min(1e-3))
    return fit(  # type: ignore[return-value]
        model,
        x,
        target,
        lambda predicted, true: (predicted - true).square().mean(),
        epochs=epochs,
        lr=1e-3,
        batch_size=256,
        report=lambda epoch, mean: f"epoch {epoch}/{epochs}: mask MSE {mean:.5f} ({len(x)} frames)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--sentences", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    model = train(args.sentences, args.epochs)
    save(model, {"hidden": model.hidden}, args.out, started)


if __name__ == "__main__":
    main()
