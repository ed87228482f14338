"""Silero VAD retrofitted for frame-level F1 on reverberant espeak-ng speech over music and noise.

The scenario: the pretrained Silero voice activity detector (:mod:`.model`) is deployed where it
hears synthetic (espeak-ng) voices in a reverberant room over music-like tones and pink noise
(:mod:`.audio`). Its frame decisions degrade: it takes the harmonic tones for voice and misses
reverberant speech under them. What the application measures is the frame-level F1 of the
speech/non-speech decisions, a step function of the network's output.

The ℵ-loss is the mean over clips of 1 − F1 of the clip's frames (every clip holds speech, so each
F1 is defined; one value in [0, 1] per clip: the bound applies with n = the number of ℵ-clips),
and its held-out form returns the per-clip values, so the held-out gain gets a paired interval over
clips. Decisions follow Silero's own rule (``get_speech_timestamps``): speech starts when the
probability reaches ``threshold`` and ends when it falls below ``threshold − gap`` (hysteresis).

ℵ-spaces (:data:`SPACES`):

* ``"threshold"`` (2 scalars): the decision threshold and the hysteresis gap alone;
* ``"network"`` (260 scalars, the default): those two, plus one gain per STFT frequency bin at the
  network's input (per-input-channel factors of the first convolution: an equaliser that can
  turn down the bands the tones and noise occupy) and per-input-channel factors and the bias of the
  last 1×1 convolution (how the LSTM's 128 features are read into the speech logit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from afterlearner.experiments.harvard import HARVARD
from afterlearner.experiments.vad.audio import ClipSet, clip_set
from afterlearner.experiments.vad.model import load_vad, speech_probabilities
from afterlearner.space import Aleph
from afterlearner.task import Task

Space = Literal["threshold", "network"]
SPACES: tuple[Space, ...] = ("threshold", "network")
ALEPH_SEED, TEST_SEED = 1, 2
#: Clips in the ℵ-set and the held-out set: full run, reduced run (tests).
SIZES = {False: (64, 200), True: (6, 10)}
#: The 16 kHz branch's first convolution (input: 129 STFT magnitude bins) and last 1×1 convolution.
INPUT_LAYER = "_model.encoder.0.reparam_conv.weight"
OUTPUT_WEIGHT = "_model.decoder.decoder.2.weight"
OUTPUT_BIAS = "_model.decoder.decoder.2.bias"


def sentence_split() -> tuple[list[str], list[str]]:
    """Disjoint sentences for the ℵ-set (2 of every 5 Harvard sentences) and the held-out set (the rest)."""
    return (
        [s for i, s in enumerate(HARVARD) if i % 5 < 2],
        [s for i, s in enumerate(HARVARD) if i % 5 >= 2],
    )


@dataclass
class Decision:
    """How probabilities become frame decisions: Silero's defaults (0.5, and release at 0.5 − 0.15)."""

    threshold: float = 0.5
    gap: float = 0.15

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """(clips, frames) bool: speech from a frame ≥ ``threshold`` until a frame < ``threshold − gap``."""
        release = max(self.threshold - self.gap, 0.0)
        active = probabilities[:, 0] >= self.threshold
        decisions = np.empty(probabilities.shape, dtype=bool)
        decisions[:, 0] = active
        for frame in range(1, probabilities.shape[1]):
            column = probabilities[:, frame]
            active = np.where(active, column >= release, column >= self.threshold)
            decisions[:, frame] = active
        return decisions


def clip_f1(decisions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Frame-level F1 of each clip (1 for a clip with neither speech frames nor speech decisions)."""
    hits = (decisions & labels).sum(axis=1)
    total = decisions.sum(axis=1) + labels.sum(axis=1)
    return np.where(total > 0, 2 * hits / np.maximum(total, 1), 1.0)


class VADLoss:
    """Mean over clips of 1 − frame F1 of the model's decisions on ``clips``; :meth:`metrics` gives more."""

    def __init__(self, clips: ClipSet, decision: Decision) -> None:
        if len(clips) == 0:
            raise ValueError("VADLoss needs at least one clip")
        self.clips = clips
        self.decision = decision

    def decisions(self, model: torch.jit.ScriptModule) -> np.ndarray:
        probabilities = speech_probabilities(model, self.clips.audio)
        return self.decision.decide(probabilities[:, : self.clips.labels.shape[1]])

    def per_clip(self, model: torch.jit.ScriptModule) -> np.ndarray:
        """1 − F1 of each clip: the loss is their mean."""
        return 1.0 - clip_f1(self.decisions(model), self.clips.labels)

    def metrics(self, model: torch.jit.ScriptModule) -> dict[str, float]:
        """Frame F1 pooled over all clips, mean clip F1, miss rate and false-alarm rate."""
        decisions, labels = self.decisions(model), self.clips.labels
        hits = float((decisions & labels).sum())
        return {
            "pooled frame F1": 2 * hits / float(decisions.sum() + labels.sum()),
            "mean clip F1": float(clip_f1(decisions, labels).mean()),
            "miss rate": float((~decisions)[labels].mean()),
            "false-alarm rate": float(decisions[~labels].mean()),
        }

    def __call__(self, model: torch.jit.ScriptModule) -> float:
        return float(self.per_clip(model).mean())


class PerClipVADLoss(VADLoss):
    """The held-out form of :class:`VADLoss`: calling it gives 1 − F1 per clip (their mean is the loss),
    so ``heldout`` pairs the clips of the trained and of the retrofitted model."""

    def __call__(self, model: torch.jit.ScriptModule) -> np.ndarray:  # type: ignore[override]
        return self.per_clip(model)


def add_decision(aleph: Aleph, decision: Decision) -> None:
    """The threshold over Silero's whole useful range, and the hysteresis gap (0: none)."""
    aleph.hyper(decision, "threshold", 0.05, 0.95, name="threshold")
    aleph.hyper(decision, "gap", 0.0, 0.4, name="gap")


def add_network(aleph: Aleph) -> None:
    """Per-frequency-bin input gains (129) and the last layer's per-feature factors (128) and bias (1)."""
    aleph.add(INPUT_LAYER, mode="scale", per="column", step=0.1, low=0.0, high=3.0)
    aleph.add(OUTPUT_WEIGHT, mode="scale", per="column", step=0.1, low=0.0, high=3.0)
    aleph.add(OUTPUT_BIAS, mode="offset", step=0.5)


def make_task(reduced: bool = False, space: Space = "network") -> Task:
    """The experiment's task: the packaged Silero VAD, ℵ-clips and disjoint held-out clips."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    aleph_count, test_count = SIZES[bool(reduced)]
    aleph_sentences, test_sentences = sentence_split()
    aleph_clips = clip_set(aleph_count, ALEPH_SEED, aleph_sentences)
    test_clips = clip_set(test_count, TEST_SEED, test_sentences)
    model, decision = load_vad(), Decision()
    aleph = Aleph(model)
    add_decision(aleph, decision)
    if space == "network":
        add_network(aleph)
    return Task(
        aleph=aleph,
        loss=VADLoss(aleph_clips, decision),
        test_loss=PerClipVADLoss(test_clips, decision),
        name=f"vad-{space}",
        n=aleph_count,
        description="1 − frame F1 of Silero VAD on reverberant espeak-ng speech over music-like tones, noise",
    )
