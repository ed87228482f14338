"""The VAD experiments: the pretrained Silero VAD on a new acoustic condition, retrofitted for frame F1
(see :mod:`.task`), in the network and its thresholds, and in its thresholds alone."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from afterlearner.experiments.base import Experiment
from afterlearner.experiments.vad.model import RATE
from afterlearner.experiments.vad.task import INPUT_LAYER, OUTPUT_WEIGHT, VADLoss, make_task
from afterlearner.report import pyplot, save_figure
from afterlearner.result import RetrofitResult
from afterlearner.task import Task


def held_out_metrics(task: Task) -> dict[str, float]:
    """Pooled frame F1, mean clip F1, miss and false-alarm rates on the held-out clips."""
    assert isinstance(task.test_loss, VADLoss)
    return task.test_loss.metrics(task.aleph.model)


def what_changed(task: Task, result: RetrofitResult, out: Path) -> list[Path]:
    """One PNG: the retrofitted input gain of each STFT bin (by frequency) and the output layer's
    per-feature factors, with the retrofitted thresholds in the title."""
    vector, labels = np.asarray(result.best, dtype=float), task.aleph.labels()

    def searched(name: str) -> np.ndarray:
        return vector[[i for i, label in enumerate(labels) if label == name or label.startswith(name + "[")]]

    gains, factors = searched(INPUT_LAYER), searched(OUTPUT_WEIGHT)
    figure, axes = pyplot().subplots(1, 2, figsize=(11, 3.6))
    frequencies = np.arange(len(gains)) * RATE / (2 * max(len(gains) - 1, 1))
    axes[0].plot(frequencies, gains, ".-", markersize=3)
    axes[0].set(xlabel="STFT bin frequency (Hz)", ylabel="factor", title="input gain per frequency bin")
    axes[1].bar(np.arange(len(factors)), factors, width=1.0)
    axes[1].set(xlabel="LSTM feature", ylabel="factor", title="output layer: factor per feature")
    for axis in axes:
        axis.axhline(1.0, color="grey", linewidth=0.8)
    [threshold], [gap] = searched("threshold"), searched("gap")
    figure.suptitle(f"{task.name}: threshold {threshold:.3f} (trained 0.5), gap {gap:.3f} (trained 0.15)")
    return [save_figure(figure, Path(out) / "results" / f"{task.name}_changes.png")]


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
    after_reproduce=what_changed,
)
#: The decision threshold and hysteresis gap alone (2 ℵ-parameters): what retuning without touching
#: the network gives.
THRESHOLD = dataclasses.replace(
    NETWORK,
    name="vad-threshold",
    title="Silero VAD on reverberant espeak-ng speech over music and noise: thresholds alone retrofitted",
    task_options={"space": "threshold"},
    budget=60,
    after_reproduce=None,
)
EXPERIMENTS = (NETWORK, THRESHOLD)
