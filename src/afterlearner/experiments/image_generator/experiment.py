"""The image-generator experiment: the digit generator retrofitted for a Fréchet distance (see
:mod:`.task`), with samples before and after beside the row, and the held-out gain as the second,
independently trained judge sees it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from afterlearner.experiments.base import Experiment
from afterlearner.experiments.image_generator.task import (
    TEST_LATENTS,
    QualityLoss,
    make_task,
    second_judge_loss,
)
from afterlearner.heldout import HeldOut, compare, observe
from afterlearner.report import pyplot, save_figure
from afterlearner.result import RetrofitResult
from afterlearner.task import Task


def held_out_metrics(task: Task) -> dict[str, float]:
    """Fréchet distance, classifier confidence and class entropy on the held-out latents."""
    assert isinstance(task.test_loss, QualityLoss)
    return task.test_loss.metrics(task.aleph.model)


#: The label of the second judge's comparison in the results.
SECOND_JUDGE = "Fréchet distance, second judge (CNN, seed 1, never seen by the search)"


def second_judge(task: Task, result: RetrofitResult) -> dict[str, HeldOut]:
    """The held-out Fréchet distance through the second judge, trained vs retrofitted, with its interval.

    The same held-out latents and real digits as the row's held-out loss, another judge's features; the
    paired bootstrap resamples the latents. Leaves the retrofitted generator in place.
    """
    assert isinstance(task.test_loss, QualityLoss)
    loss = second_judge_loss(reduced=len(task.test_loss.latents) < TEST_LATENTS)
    model = task.aleph.model
    result.restore()
    before = observe(loss, model)
    result.apply()
    after = observe(loss, model)
    return {SECOND_JUDGE: compare(loss, before, after)}


def sample_grid(images: torch.Tensor, columns: int = 16) -> np.ndarray:
    """Images (N, 1, 8, 8) tiled into one array with 1-pixel gaps."""
    rows = (len(images) + columns - 1) // columns
    grid = np.ones((rows * 9 + 1, columns * 9 + 1))
    for index, image in enumerate(images.numpy()):
        r, c = divmod(index, columns)
        grid[1 + 9 * r : 9 + 9 * r, 1 + 9 * c : 9 + 9 * c] = 1 - image[0]
    return grid


def samples_before_after(task: Task, result: RetrofitResult, out: Path) -> list[Path]:
    """Write samples of the same 64 held-out latents before and after retrofitting (one PNG)."""
    assert isinstance(task.test_loss, QualityLoss)
    model, latents_shown = task.aleph.model, task.test_loss.latents[:64]
    with torch.no_grad():
        after = model(latents_shown)
        with task.aleph.applied(task.aleph.identity()):
            before = model(latents_shown)
    figure, axes = pyplot().subplots(1, 2, figsize=(9, 5))
    for axis, images, label in ((axes[0], before, "trained"), (axes[1], after, "retrofitted")):
        axis.imshow(sample_grid(images, 8), cmap="gray", vmin=0, vmax=1)
        axis.set_title(f"{label} (same 64 latents)")
        axis.axis("off")
    return [save_figure(figure, Path(out) / "results" / "image-generator_samples.png")]


EXPERIMENTS = (
    Experiment(
        name="image-generator",
        title="Image generator quality: digit VAE decoder retrofitted for a Fréchet distance on a separate "
        "classifier",
        metric="Fréchet distance (classifier features)",
        make_task=make_task,
        budget=300,
        optimizer="DiagonalCMA",
        bound_applies=False,
        bound_note="not applicable: the Fréchet distance is not a mean of per-sample losses in [0, 1]",
        extra_metrics=held_out_metrics,
        after_reproduce=samples_before_after,
        comparisons=second_judge,
    ),
)
