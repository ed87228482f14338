"""Noisy rooms: noise added to synthesized speech at a chosen signal-to-noise ratio.

Two kinds of noise, each drawn from a seeded generator so that the same sentence with the same
seed always sounds the same:

* :class:`Coloured`: stationary broadband noise of spectral density 1/f^α (α = 0 white, 1 pink,
  2 brown): what the enhancement network was trained on;
* :class:`Motor`: the hum of an electric motor, a harmonic series on a fundamental between 90 and
  130 Hz (amplitudes falling as 1/√h, random phases) over a weak broadband floor: the deployment
  condition, which the network never saw.

The SNR is that of the whole utterance (speech power over its length against the noise power).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = 16_000


@dataclass(frozen=True)
class Coloured:
    """Broadband noise with spectral density ∝ 1/f^alpha (flat below 50 Hz)."""

    alpha: float

    def sample(self, length: int, rng: np.random.Generator) -> np.ndarray:
        """Unit-power noise of ``length`` samples."""
        spectrum = np.fft.rfft(rng.standard_normal(length))
        spectrum *= np.maximum(np.fft.rfftfreq(length, 1 / RATE), 50.0) ** (-self.alpha / 2)
        noise = np.fft.irfft(spectrum, n=length)
        return noise / np.sqrt(np.mean(noise**2))


@dataclass(frozen=True)
class Motor:
    """Motor hum: harmonics of a fundamental in ``f0_range`` Hz up to 7.9 kHz, plus a broadband floor
    of relative amplitude ``floor``."""

    f0_range: tuple[float, float] = (90.0, 130.0)
    floor: float = 0.3

    def sample(self, length: int, rng: np.random.Generator) -> np.ndarray:
        """Unit-power hum of ``length`` samples; fundamental and phases drawn from ``rng``."""
        t = np.arange(length) / RATE
        f0 = rng.uniform(*self.f0_range)
        harmonics = np.arange(1, int(7900 // f0) + 1)
        phases = rng.uniform(0, 2 * np.pi, len(harmonics))
        hum = np.zeros(length)
        for h, phase in zip(harmonics, phases, strict=True):
            hum += np.sin(2 * np.pi * f0 * h * t + phase) / np.sqrt(h)
        hum += self.floor * rng.standard_normal(length)
        return hum / np.sqrt(np.mean(hum**2))


Noise = Coloured | Motor


def add_noise(speech: np.ndarray, noise: Noise, snr_db: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(noisy int16 audio, the float noise added): ``speech`` with ``noise`` at ``snr_db``, seed ``seed``."""
    clean = speech.astype(np.float64)
    power = np.mean(clean**2)
    if power == 0:
        raise ValueError("cannot set the SNR of silent audio")
    added = noise.sample(len(clean), np.random.default_rng(seed)) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(np.round(clean + added), -32768, 32767).astype(np.int16), added
