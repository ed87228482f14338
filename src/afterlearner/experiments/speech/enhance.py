"""The speech-enhancement network between the noisy room and the recogniser: a band-mask MLP.

The noisy 16 kHz audio is cut into frames (STFT, 32 ms Hann window, 10 ms hop); the network reads
the log energies of 32 mel bands over 7 neighbouring frames and outputs one gain in (0, 1) per band
of the middle frame; the gains, spread over the FFT bins by the band filters, multiply the noisy
spectrum, and the inverse STFT (with the noisy phase) gives the enhanced audio. It was trained
(:mod:`.train`) to output the ideal ratio mask, a signal-level proxy: mean squared error of the gains
against sqrt(clean / (clean + noise)) per band, never word error rate. Its output layer (``out``)
holds the logits of the 32 band gains: the natural ℵ-parameters.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: The committed weights, trained by ``python -m afterlearner.experiments.speech.train``.
WEIGHTS = Path(__file__).with_name("enhancer.pt")
RATE = 16_000
N_FFT, HOP = 512, 160
BANDS = 32
#: Frames either side of the one whose gains are predicted.
CONTEXT = 3
#: Floor of band energies before the log (audio scaled to [-1, 1]).
FLOOR = 1e-8


@functools.lru_cache(maxsize=1)
def mel_filters() -> torch.Tensor:
    """(BANDS, N_FFT // 2 + 1) triangular mel filters from 0 to 8 kHz, each bin's weights summing to 1."""

    def mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    bins = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    edges = np.linspace(0, mel(np.array(RATE / 2)), BANDS + 2)
    centres = mel(bins)
    filters = np.zeros((BANDS, len(bins)))
    for band in range(BANDS):
        low, mid, high = edges[band : band + 3]
        rise = (centres - low) / (mid - low)
        fall = (high - centres) / (high - mid)
        filters[band] = np.clip(np.minimum(rise, fall), 0, None)
    filters[0, centres < edges[1]] = 1.0  # the lowest and highest bins belong wholly to the end bands
    filters[-1, centres > edges[-2]] = 1.0
    filters /= filters.sum(axis=0, keepdims=True)
    return torch.from_numpy(filters).float()


def stft(audio: np.ndarray) -> torch.Tensor:
    """Complex STFT (bins, frames) of int16 audio scaled to [-1, 1]."""
    signal = torch.from_numpy(audio.astype(np.float32) / 32768.0)
    return torch.stft(signal, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)


def istft(spectrum: torch.Tensor, length: int) -> np.ndarray:
    """int16 audio of ``length`` samples from a complex STFT (clipped)."""
    signal = torch.istft(spectrum, N_FFT, HOP, window=torch.hann_window(N_FFT), length=length)
    return np.clip(np.round(signal.numpy() * 32768.0), -32768, 32767).astype(np.int16)


def band_energies(spectrum: torch.Tensor) -> torch.Tensor:
    """(frames, BANDS) band energies of a complex STFT."""
    return (mel_filters() @ spectrum.abs().square()).T


def features(spectrum: torch.Tensor) -> torch.Tensor:
    """(frames, (2·CONTEXT + 1)·BANDS) network input: log band energies of the frame and its neighbours."""
    logs = torch.log(band_energies(spectrum) + FLOOR)
    padded = torch.cat([logs[:1].expand(CONTEXT, -1), logs, logs[-1:].expand(CONTEXT, -1)])
    frames = len(logs)
    return torch.cat([padded[i : i + frames] for i in range(2 * CONTEXT + 1)], dim=1)


class Enhancer(nn.Module):
    """Log band energies in context → band gains in (0, 1); input standardised by stored statistics."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        inputs = (2 * CONTEXT + 1) * BANDS
        self.hidden = hidden
        self.register_buffer("mean", torch.zeros(inputs))
        self.register_buffer("std", torch.ones(inputs))
        self.body = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, BANDS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.body((x - self.mean) / self.std)))


def enhance(
    model: Enhancer, spectrum: torch.Tensor, length: int, inputs: torch.Tensor | None = None
) -> np.ndarray:
    """Enhanced int16 audio: the noisy ``spectrum`` times the network's gains, back to samples.

    ``inputs`` are :func:`features` of ``spectrum`` when already computed (the ℵ-loss caches them).
    """
    with torch.no_grad():
        gains = model(features(spectrum) if inputs is None else inputs)  # (frames, BANDS)
        bin_gains = (gains @ mel_filters()).T  # (bins, frames)
    return istft(spectrum * bin_gains, length)


def load_enhancer(path: str | Path | None = None) -> Enhancer:
    """The committed (or given) trained network, in eval mode."""
    state = torch.load(path or WEIGHTS, map_location="cpu", weights_only=True)
    model = Enhancer(int(state["hidden"]))
    model.load_state_dict(state["state_dict"])
    return model.eval()
