"""The new acoustic condition: espeak-ng speech, reverberant, over music-like tones and noise.

Every clip is built from a seed, so its frame labels are known exactly: one or two utterances of
espeak-ng (random voice variant, speed and pitch; words from Harvard sentences) are placed at
random positions of a 5.12 s clip; a frame of 512 samples (32 ms, the VAD's window at 16 kHz) is
speech when at least half of it lies inside an utterance, from its first to its last audible
sample (short pauses between words count as speech, as in usual VAD annotation). The speech is
then made reverberant (a synthetic room response, exponentially decaying noise, RT60 0.3–0.9 s)
and mixed with a background the VAD was not built for: a melody of harmonic tones with vibrato
(music-like, voiced-sounding) plus pink noise, at a speech-to-background ratio of −3 to +9 dB.

Generation is deterministic (numpy's generator seeded by the set's seed and the clip's index,
espeak-ng is deterministic) and takes a few seconds per hundred clips; a set is cached as an
``.npz`` under the user's cache folder so that worker processes and later runs load it instead.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve, lfilter

from afterlearner.experiments.speech.synth import RATE, VARIANTS, Voice, synthesize

#: Samples per VAD frame at 16 kHz (the model's fixed window: 32 ms).
FRAME = 512
#: Frames per clip (5.12 s).
FRAMES = 160
#: Samples per clip.
SAMPLES = FRAME * FRAMES
#: Speech-to-background ratio range (dB) and reverberation time range (s, RT60).
SNR_DB = (-3.0, 9.0)
RT60 = (0.3, 0.9)
#: What changes in the recipe change the cache key: bump it when the generation code changes.
RECIPE = "vad-audio-v1"


@dataclass(frozen=True)
class ClipSet:
    """Clips (N, SAMPLES) float32 in [-1, 1] and their frame labels (N, FRAMES) bool (True: speech)."""

    audio: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.audio)


def _words(sentences: Sequence[str]) -> list[list[str]]:
    return [sentence.rstrip(".").replace(",", "").split() for sentence in sentences]


def _utterance(rng: np.random.Generator, sentences: list[list[str]]) -> np.ndarray:
    """A few consecutive words of a sentence, spoken with a random voice, silence trimmed (float)."""
    words = sentences[int(rng.integers(len(sentences)))]
    count = int(rng.integers(2, len(words) + 1))
    start = int(rng.integers(0, len(words) - count + 1))
    voice = Voice(
        speed=int(rng.integers(140, 221)),
        pitch=int(rng.integers(20, 81)),
        word_gap=int(rng.integers(0, 4)),
        variant=int(rng.integers(len(VARIANTS))),
    )
    samples = synthesize(" ".join(words[start : start + count]), voice).astype(np.float64) / 32768.0
    audible = np.flatnonzero(np.abs(samples) > 0.01 * np.abs(samples).max())
    return samples[audible[0] : audible[-1] + 1]


def _pink_noise(rng: np.random.Generator, length: int) -> np.ndarray:
    """Pink (1/f) noise, unit RMS: white noise through Kellet's three-pole filter approximation."""
    white = rng.standard_normal(length)
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1.0, -2.494956002, 2.017265875, -0.522189400]
    pink = lfilter(b, a, white)
    return pink / np.sqrt(np.mean(pink**2))


def _melody(rng: np.random.Generator, length: int) -> np.ndarray:
    """Music-like tones, unit RMS: pentatonic notes (110–880 Hz), 5 harmonics, vibrato, 0.15–0.6 s each."""
    t_total = np.arange(length) / RATE
    out = np.zeros(length)
    scale = np.array([0, 2, 4, 7, 9])
    position = 0
    while position < length:
        duration = int(rng.uniform(0.15, 0.6) * RATE)
        semitone = int(rng.choice(scale)) + 12 * int(rng.integers(0, 3))
        f0 = 110.0 * 2 ** (semitone / 12)
        t = t_total[position : position + duration] - t_total[position]
        vibrato = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
        phase = 2 * np.pi * f0 * np.cumsum(vibrato) / RATE
        note = sum((0.6**k) * np.sin((k + 1) * phase) for k in range(5))
        envelope = np.minimum(1.0, np.minimum(t / 0.02, (t[-1] - t + 1e-9) / 0.05)) if len(t) else t
        out[position : position + len(t)] = note * envelope
        position += duration
    return out / np.sqrt(np.mean(out**2))


def _room(rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: a direct path, then noise decaying by 60 dB in RT60 seconds."""
    rt60 = rng.uniform(*RT60)
    length = int(rt60 * RATE)
    t = np.arange(length) / RATE
    response = rng.standard_normal(length) * 10 ** (-3 * t / rt60) * 0.3
    response[0] = 1.0
    return response / np.sqrt(np.sum(response**2))


@dataclass(frozen=True)
class Condition:
    """What is done to the speech: the room's reverberation, the tones and noise (both: the deployment)."""

    room: bool = True
    background: bool = True


#: The condition the experiment retrofits for; the others measure what each part does to the VAD.
DEPLOYMENT = Condition()
CONDITIONS = {
    "clean": Condition(room=False, background=False),
    "reverberation only": Condition(room=True, background=False),
    "tones and noise only": Condition(room=False, background=True),
    "both (the deployment)": DEPLOYMENT,
}


def make_clip(
    rng: np.random.Generator, sentences: list[list[str]], condition: Condition = DEPLOYMENT
) -> tuple[np.ndarray, np.ndarray]:
    """One clip (float32 samples) and its frame labels, from ``rng``."""
    speech = np.zeros(SAMPLES)
    inside = np.zeros(SAMPLES, dtype=bool)
    cursor = int(rng.uniform(0.1, 1.0) * RATE)
    for _ in range(int(rng.integers(1, 3))):
        utterance = _utterance(rng, sentences)[: SAMPLES - cursor - RATE // 10]
        if len(utterance) < RATE // 5:
            break
        speech[cursor : cursor + len(utterance)] = utterance
        inside[cursor : cursor + len(utterance)] = True
        cursor += len(utterance) + int(rng.uniform(0.4, 1.5) * RATE)
        if cursor >= SAMPLES - RATE // 2:
            break
    room = _room(rng)  # drawn whatever the condition, so every condition has the same speech and rooms
    wet = fftconvolve(speech, room)[:SAMPLES] if condition.room else speech
    level = np.sqrt(np.mean(wet[inside] ** 2))
    background = 0.7 * _melody(rng, SAMPLES) + 0.3 * _pink_noise(rng, SAMPLES)
    background /= np.sqrt(np.mean(background**2))
    snr = rng.uniform(*SNR_DB)
    mix = wet + background * level * 10 ** (-snr / 20) if condition.background else wet.copy()
    mix *= rng.uniform(0.1, 0.5) / np.abs(mix).max()
    labels = inside.reshape(FRAMES, FRAME).mean(axis=1) >= 0.5
    return mix.astype(np.float32), labels


def generate(count: int, seed: int, sentences: Sequence[str], condition: Condition = DEPLOYMENT) -> ClipSet:
    """``count`` clips; clip ``i`` depends only on (``seed``, ``i``), the sentences and the condition."""
    words = _words(sentences)
    clips = [make_clip(np.random.default_rng([seed, index]), words, condition) for index in range(count)]
    return ClipSet(np.stack([c[0] for c in clips]), np.stack([c[1] for c in clips]))


def cache_dir() -> Path:
    """``$AFTERLEARNER_CACHE/vad``, else ``$XDG_CACHE_HOME/afterlearner/vad`` (``~/.cache/...``)."""
    root = (
        os.environ.get("AFTERLEARNER_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "afterlearner"
    )
    return Path(root) / "vad"


def clip_set(count: int, seed: int, sentences: Sequence[str]) -> ClipSet:
    """:func:`generate`, cached on disk by (recipe, count, seed, sentences)."""
    key = hashlib.sha256(repr((RECIPE, count, seed, list(sentences))).encode()).hexdigest()[:20]
    path = cache_dir() / f"clips-{key}.npz"
    if path.exists():
        with np.load(path) as stored:
            return ClipSet(stored["audio"], stored["labels"])
    clips = generate(count, seed, sentences)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as handle:
        np.savez(handle, audio=clips.audio, labels=clips.labels)
    os.replace(handle.name, path)  # atomic: two processes generating at once leave one whole file
    return clips
