"""Speech synthesis with the espeak-ng command-line program, resampled to the recogniser's 16 kHz.

espeak-ng writes 22,050 Hz audio; pocketsphinx's English acoustic model expects 16 kHz, so the
audio is resampled (polyphase, 320/441). The WAV is written to a file: with ``--stdout`` espeak-ng
puts a bogus length in the WAV header.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

#: Sample rate the recogniser expects.
RATE = 16_000
#: Sample rate espeak-ng writes.
ESPEAK_RATE = 22_050
#: Voice variants searched by index ("" is the plain voice). Index order is arbitrary.
VARIANTS: tuple[str, ...] = (
    "",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
)
BASE_VOICE = "en-us"


class SynthesisError(RuntimeError):
    """espeak-ng is missing or failed."""


@dataclass
class Voice:
    """espeak-ng settings: the synthesis ℵ-parameters (espeak-ng's defaults as the trained values).

    ``speed`` in words per minute (``-s``), ``pitch`` 0–99 (``-p``), ``word_gap`` pause between
    words in units of 10 ms (``-g``), ``variant`` an index into :data:`VARIANTS`.
    """

    speed: int = 175
    pitch: int = 50
    word_gap: int = 0
    variant: int = 0

    def key(self) -> tuple[int, int, int, int]:
        return (int(self.speed), int(self.pitch), int(self.word_gap), int(self.variant))


def espeak_path() -> str:
    """The espeak-ng executable, or a :class:`SynthesisError` saying how to install it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise SynthesisError(
            "espeak-ng is not installed: run `bash scripts/setup-system.sh` (Debian package espeak-ng)"
        )
    return path


def voice_name(variant: int) -> str:
    if not 0 <= variant < len(VARIANTS):
        raise ValueError(f"voice variant index must be in [0, {len(VARIANTS) - 1}], got {variant}")
    return BASE_VOICE + (f"+{VARIANTS[variant]}" if VARIANTS[variant] else "")


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono 16-bit samples and the sample rate of a WAV file."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise SynthesisError(f"{path}: expected mono 16-bit audio")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16), wav.getframerate()


def to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Resample 16-bit audio to :data:`RATE` (int16, clipped)."""
    if rate == RATE:
        return samples.astype(np.int16)
    divisor = np.gcd(RATE, rate)
    resampled = resample_poly(samples.astype(np.float64), RATE // divisor, rate // divisor)
    return np.clip(np.round(resampled), -32768, 32767).astype(np.int16)


@functools.lru_cache(maxsize=512)
def _synthesize(text: str, key: tuple[int, int, int, int]) -> bytes:
    speed, pitch, word_gap, variant = key
    with tempfile.TemporaryDirectory(prefix="afterlearner-espeak-") as directory:
        path = Path(directory) / "speech.wav"
        command = [
            espeak_path(),
            "-w",
            str(path),
            "-v",
            voice_name(variant),
            "-s",
            str(speed),
            "-p",
            str(pitch),
            "-g",
            str(word_gap),
            "--",
            text,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0 or not path.exists():
            raise SynthesisError(f"espeak-ng failed ({done.returncode}): {done.stderr.strip()[:300]}")
        samples, rate = read_wav(path)
    return to_16k(samples, rate).tobytes()


def synthesize(text: str, voice: Voice) -> np.ndarray:
    """16 kHz mono int16 audio of ``text`` spoken with ``voice`` (cached: synthesis is deterministic)."""
    if not text.strip():
        raise ValueError("cannot synthesize an empty text")
    return np.frombuffer(_synthesize(text, voice.key()), dtype=np.int16)
