"""The ℵ-loss: word error rate of the recogniser on enhanced noisy speech, over fixed sentences.

Each sentence is spoken by espeak-ng, mixed with the room's noise (a fixed seed per sentence), and
its noisy spectrum and the network's input features are computed once. An evaluation runs the
enhancement network (the candidate written into it), resynthesizes the audio, decodes it with the
current decoding settings and scores the corpus word error rate.

The WER is a corpus metric (all errors over all reference words), not a mean of per-sentence WERs,
so the loss shows its parts in the ``DatasetLoss`` interface, with the sentences as the items: the
held-out gain's interval comes from recomputing the corpus WER on resampled sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from afterlearner.experiments.speech.enhance import Enhancer, enhance, features, stft
from afterlearner.experiments.speech.noise import Noise, add_noise
from afterlearner.experiments.speech.recognize import Decoding, Recognizer
from afterlearner.experiments.speech.sentences import normalise
from afterlearner.experiments.speech.synth import Voice, synthesize


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER: (substitutions + deletions + insertions) / reference words (can exceed 1)."""
    import jiwer  # imported here: the package is an optional extra

    if len(references) != len(hypotheses) or not references:
        raise ValueError(
            f"need as many hypotheses as references (> 0), got {len(hypotheses)} and {len(references)}"
        )
    return float(jiwer.wer(list(references), list(hypotheses)))


@dataclass(frozen=True)
class Utterance:
    """One noisy sentence, ready for the network: its noisy audio, noisy STFT and network input."""

    noisy: np.ndarray
    spectrum: torch.Tensor
    inputs: torch.Tensor


def noisy_utterances(
    sentences: Sequence[str], voice: Voice, noise: Noise, snr_db: float, seed: int
) -> list[Utterance]:
    """The sentences spoken by ``voice`` in noise; sentence i gets noise seed ``seed + i``."""
    utterances = []
    for i, sentence in enumerate(sentences):
        noisy, _ = add_noise(synthesize(sentence, voice), noise, snr_db, seed + i)
        spectrum = stft(noisy)
        utterances.append(Utterance(noisy, spectrum, features(spectrum)))
    return utterances


class EnhancedWER:
    """ℵ-loss: WER of ``recognise(enhance(noisy speech))`` against the sentences.

    Called with the enhancement network (the :class:`~afterlearner.Aleph`'s model); the decoding
    settings are read at call time, so ``aleph.hyper(decoding, ...)`` steers them too. ``network=False``
    skips the network (the noisy audio goes straight to the recogniser: the baseline without it).

    Its parts, for the held-out interval: :meth:`outputs` (one transcript per sentence), ``targets``
    (the normalised sentences), :meth:`metric` (the corpus WER of transcripts against those
    sentences, any subset) and :meth:`score`; ``score(outputs(model))`` is ``loss(model)``, to the bit.
    """

    def __init__(
        self,
        sentences: Sequence[str],
        utterances: Sequence[Utterance],
        decoding: Decoding,
        recognizer: Recognizer,
        network: bool = True,
    ) -> None:
        if not sentences or len(sentences) != len(utterances):
            raise ValueError(
                f"need one utterance per sentence (> 0), got {len(utterances)} and {len(sentences)}"
            )
        self.sentences = list(sentences)
        self.targets = [normalise(sentence) for sentence in self.sentences]
        self.utterances = list(utterances)
        self.decoding = decoding
        self.recognizer = recognizer
        self.network = network

    def audio(self, model: Enhancer, index: int) -> np.ndarray:
        """The audio the recogniser hears for sentence ``index``."""
        utterance = self.utterances[index]
        if not self.network:
            return utterance.noisy
        return enhance(model, utterance.spectrum, len(utterance.noisy), utterance.inputs)

    def transcripts(self, model: Enhancer) -> list[str]:
        """What the recogniser heard for each sentence under the current network and settings."""
        return [
            self.recognizer.transcribe(self.audio(model, i), self.decoding)
            for i in range(len(self.utterances))
        ]

    def __call__(self, model: Enhancer) -> float:
        return word_error_rate(self.targets, self.transcripts(model))

    def outputs(self, model: Enhancer) -> list[str]:
        return self.transcripts(model)

    def metric(self, outputs: Sequence[str], targets: Sequence[str]) -> float:
        return word_error_rate(targets, outputs)

    def score(self, outputs: Sequence[str]) -> float:
        return self.metric(outputs, self.targets)
