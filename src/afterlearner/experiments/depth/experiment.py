"""The depth-sensing experiment: the depth CNN on a new camera, retrofitted for δ1 (see :mod:`.task`)."""

from __future__ import annotations

from afterlearner.experiments.base import Experiment
from afterlearner.experiments.depth.task import DepthLoss, make_task
from afterlearner.task import Task


def held_out_metrics(task: Task) -> dict[str, float]:
    """δ1, δ2, δ3 and AbsRel on the held-out scenes."""
    assert isinstance(task.test_loss, DepthLoss)
    return task.test_loss.metrics(task.aleph.model)


EXPERIMENTS = (
    Experiment(
        name="depth",
        title="Depth sensing: small monocular depth CNN on a new camera, retrofitted for δ1 (threshold 1.25)",
        metric="1 − δ1",
        make_task=make_task,
        budget=150,
        optimizer="DiagonalCMA",
        extra_metrics=held_out_metrics,
    ),
    Experiment(
        name="depth-guarded",
        title="Depth sensing retrofitted for δ1 with AbsRel and δ2 guarded (neither may get worse)",
        metric="1 − δ1",
        make_task=make_task,
        budget=150,
        optimizer="DiagonalCMA",
        task_options={"guards": True},
        extra_metrics=held_out_metrics,
    ),
)
