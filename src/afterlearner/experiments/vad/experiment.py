"""The VAD experiments: the pretrained Silero VAD on a new acoustic condition, retrofitted for frame F1
(see :mod:`.task`), in the network and its thresholds, and in its thresholds alone."""

from __future__ import annotations

import dataclasses

from afterlearner.experiments.base import Experiment
from afterlearner.experiments.vad.task import VADLoss, make_task
from afterlearner.task import Task


def held_out_metrics(task: Task) -> dict[str, float]:
    """Pooled frame F1, mean clip F1, miss and false-alarm rates on the held-out clips."""
    assert isinstance(task.test_loss, VADLoss)
    return task.test_loss.metrics(task.aleph.model)


NETWORK = Experiment(
    name="vad",
    title="Silero VAD (pretrained, TorchScript) on reverberant espeak-ng speech over music and noise: "
    "input gains, output layer and thresholds retrofitted for frame F1",
    metric="1 − frame F1 (mean over clips)",
    make_task=make_task,
    task_options={"space": "network"},
    budget=300,
    optimizer="DiagonalCMA",
    # Two candidates per step in two worker processes: an evaluation runs the VAD over the 64 ℵ-clips
    # (about 0.25 s of CPU on an idle core), so the two cores of a small machine halve the run time.
    workers=2,
    processes=2,
    extra_metrics=held_out_metrics,
)
#: The decision threshold and hysteresis gap alone (2 ℵ-parameters): what retuning without touching
#: the network gives.
THRESHOLD = dataclasses.replace(
    NETWORK,
    name="vad-threshold",
    title="Silero VAD on reverberant espeak-ng speech over music and noise: thresholds alone retrofitted",
    task_options={"space": "threshold"},
    budget=60,
)
EXPERIMENTS = (NETWORK, THRESHOLD)
