"""The code-translation experiments: JavaScript → Python retrofitted for computational accuracy, for
BLEU, or for computational accuracy with BLEU guarded (see :mod:`.task`)."""

from __future__ import annotations

import dataclasses

from afterlearner.experiments.base import Experiment
from afterlearner.experiments.code_translation.task import TranslationLoss, make_task
from afterlearner.task import Task


def held_out_metrics(task: Task) -> dict[str, float]:
    """CA, BLEU and exact match on the held-out programs."""
    assert isinstance(task.test_loss, TranslationLoss)
    return task.test_loss.metrics()


COMPUTATIONAL_ACCURACY = Experiment(
    name="code-translation-ca",
    title="Code translation (JavaScript → Python, small transformer) retrofitted for computational accuracy",
    metric="1 − computational accuracy",
    make_task=make_task,
    task_options={"metric": "ca"},
    budget=200,
    optimizer="DiagonalCMA",
    extra_metrics=held_out_metrics,
)
BLEU = dataclasses.replace(
    COMPUTATIONAL_ACCURACY,
    name="code-translation-bleu",
    title="Code translation (JavaScript → Python, small transformer) retrofitted for BLEU",
    metric="1 − BLEU/100",
    task_options={"metric": "bleu"},
    bound_note="indicative only: corpus BLEU is not a mean of per-program losses in [0, 1]",
)
GUARDED = dataclasses.replace(
    COMPUTATIONAL_ACCURACY,
    name="code-translation-ca-guarded",
    title="Code translation (JavaScript → Python, small transformer) retrofitted for computational accuracy "
    "with BLEU guarded (it may not get worse)",
    task_options={"metric": "ca", "guards": True},
)
EXPERIMENTS = (COMPUTATIONAL_ACCURACY, BLEU, GUARDED)
