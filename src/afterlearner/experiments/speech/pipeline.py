"""The speech-resynthesis ℵ-loss: synthesize each sentence, recognise it, score the word error rate.

The WER is a corpus metric (all errors over all reference words), not a mean of per-sentence WERs,
so the loss shows its parts in the ``DatasetLoss`` interface, with the sentences as the items: the
held-out gain's interval comes from recomputing the corpus WER on resampled sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


class ResynthesisWER:
    """ℵ-loss: WER of ``recognise(synthesize(sentence))`` against the sentence, over fixed sentences.

    The voice and decoding settings are read at call time, so an :class:`~afterlearner.Aleph` built
    with ``aleph.hyper(voice, ...)`` / ``aleph.hyper(decoding, ...)`` steers it. The model argument
    is ignored (the pipeline has no torch model).

    Its parts, for the held-out interval: :meth:`outputs` (one transcript per sentence), ``targets``
    (the normalised sentences), :meth:`metric` (the corpus WER of transcripts against those
    sentences, any subset) and :meth:`score`; ``score(outputs())`` is ``loss()``, to the bit.
    """

    def __init__(
        self, sentences: Sequence[str], voice: Voice, decoding: Decoding, recognizer: Recognizer
    ) -> None:
        if not sentences:
            raise ValueError("ResynthesisWER needs at least one sentence")
        self.sentences = list(sentences)
        self.references = [normalise(sentence) for sentence in self.sentences]
        self.targets = self.references
        self.voice = voice
        self.decoding = decoding
        self.recognizer = recognizer

    def transcripts(self) -> list[str]:
        """What the recogniser heard for each sentence under the current settings."""
        return [self.recognizer.transcribe(synthesize(s, self.voice), self.decoding) for s in self.sentences]

    def __call__(self, model: Any = None) -> float:
        return word_error_rate(self.references, self.transcripts())

    def outputs(self, model: Any = None) -> list[str]:
        return self.transcripts()

    def metric(self, outputs: Sequence[str], targets: Sequence[str]) -> float:
        return word_error_rate(targets, outputs)

    def score(self, outputs: Sequence[str]) -> float:
        return self.metric(outputs, self.targets)
