"""The speech experiments: the enhancement network's output biases and the decoder's weights,
retrofitted for word error rate in a room with motor hum (see :mod:`.task`), together and apart."""

from __future__ import annotations

import dataclasses

from afterlearner.experiments.base import Experiment
from afterlearner.experiments.speech.task import make_task

BOTH = Experiment(
    name="speech",
    title="espeak-ng → motor hum → enhancement network → pocketsphinx: network biases and decoder "
    "weights retrofitted for word error rate",
    metric="WER",
    make_task=make_task,
    task_options={"space": "both"},
    budget=40,
    optimizer="OnePlusOne",
    # Two candidates per step, evaluated in two worker processes: an evaluation enhances and decodes
    # every ℵ-sentence (about 6 s of CPU), so the two cores of a small machine halve the run time.
    workers=2,
    processes=2,
    bound_note="the WER is a corpus ratio that can exceed 1, not a mean of per-sentence losses in [0, 1]: "
    "ε is indicative only",
)
#: The network's 32 output biases alone.
NETWORK = dataclasses.replace(
    BOTH,
    name="speech-network",
    title="espeak-ng → motor hum → enhancement network → pocketsphinx: network biases alone retrofitted "
    "for word error rate",
    task_options={"space": "network"},
)
#: The decoder's language weight and word insertion penalty alone (2 scalars).
DECODING = dataclasses.replace(
    BOTH,
    name="speech-decoding",
    title="espeak-ng → motor hum → enhancement network → pocketsphinx: decoder weights alone retrofitted "
    "for word error rate",
    task_options={"space": "decoding"},
    budget=20,
)
EXPERIMENTS = (BOTH, NETWORK, DECODING)
