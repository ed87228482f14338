"""Speech resynthesis (word error rate), synthesis and decoding settings together.

espeak-ng speaks Harvard sentences, pocketsphinx (its bundled US English acoustic model, language
model and dictionary) recognises them, jiwer scores the word error rate against the text. The
ℵ-parameters are espeak-ng's speed, pitch, word gap and voice variant and pocketsphinx's language
weight, word insertion penalty and beams. See docs/speech.md. The modules ``synthesis_only`` and
``decoding_only`` are the same experiment with one half of the settings.
"""

from __future__ import annotations

from afterlearner.task import Task

TITLE = "espeak-ng → pocketsphinx: synthesis and decoding settings retrofitted for word error rate"
METRIC = "WER"
DEFAULT_BUDGET = 40
DEFAULT_OPTIMIZER = "DiscreteOnePlusOne"
#: Two candidates per step, evaluated in two worker processes: an evaluation decodes every ℵ-sentence
#: (seconds of CPU), so the two cores of a small machine halve the run time.
WORKERS = 2
PROCESSES = 2
BOUND_NOTE = (
    "the WER is a corpus ratio that can exceed 1, not a mean of per-sentence losses in [0, 1]: "
    "ε is indicative only"
)


def make_task(reduced: bool = False) -> Task:
    """Both halves: 4 synthesis + 5 decoding ℵ-parameters."""
    from afterlearner.experiments.speech.task import make_speech_task

    return make_speech_task("both", reduced=reduced, budget=DEFAULT_BUDGET)
