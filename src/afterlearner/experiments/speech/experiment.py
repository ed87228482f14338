"""The speech experiments: espeak-ng → pocketsphinx settings retrofitted for word error rate (see
:mod:`.task`), with both halves of the settings and with each half alone."""

from __future__ import annotations

import dataclasses

from afterlearner.experiments.base import Experiment
from afterlearner.experiments.speech.task import make_task

BOTH = Experiment(
    name="speech",
    title="espeak-ng → pocketsphinx: synthesis and decoding settings retrofitted for word error rate",
    metric="WER",
    make_task=make_task,
    task_options={"space": "both"},
    budget=40,
    optimizer="DiscreteOnePlusOne",
    # Two candidates per step, evaluated in two worker processes: an evaluation decodes every
    # ℵ-sentence (seconds of CPU), so the two cores of a small machine halve the run time.
    workers=2,
    processes=2,
    bound_note="the WER is a corpus ratio that can exceed 1, not a mean of per-sentence losses in [0, 1]: "
    "ε is indicative only",
)
#: Espeak-ng's speed, pitch, word gap and voice variant (4 ℵ-parameters).
SYNTHESIS = dataclasses.replace(
    BOTH,
    name="speech-synthesis",
    title="espeak-ng → pocketsphinx: synthesis settings alone retrofitted for word error rate",
    task_options={"space": "synthesis"},
    budget=30,
)
#: Pocketsphinx's language weight, word insertion penalty and beams (5 ℵ-parameters).
DECODING = dataclasses.replace(
    BOTH,
    name="speech-decoding",
    title="espeak-ng → pocketsphinx: decoding settings alone retrofitted for word error rate",
    task_options={"space": "decoding"},
    budget=30,
)
EXPERIMENTS = (BOTH, SYNTHESIS, DECODING)
