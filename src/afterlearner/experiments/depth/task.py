"""Depth sensing retrofitted for δ1: the small depth CNN, deployed on a camera it was not trained on.

The scenario: a monocular depth network was trained (L1 on log-depth) on scenes from one camera
and is deployed behind another lens (a longer focal length, :data:`DEPLOY_CAMERA`). Its depth is
now systematically off, and what the application measures is δ1, the fraction of pixels whose
depth ratio max(d/d*, d*/d) is below 1.25: a step function of the output, zero-gradient almost
everywhere. Retrofitting searches the output scale and shift (in log-depth) and the per-channel
scales and bias of the last convolution, on 64 scenes of the deployment camera, and is checked on
200 other scenes of that camera. The ℵ-loss is the mean over scenes of 1 − δ1 (one sample per
scene, values in [0, 1], so the bound applies with n = number of scenes).

The held-out loss is the same mean over scenes, returned as its parts (:class:`PerSceneDepthLoss`: one
1 − δ1 per scene), so the held-out gain gets a paired interval over scenes. Scenes, not pixels, are
the items: every scene has the same number of pixels, so the pooled δ1 and the mean of per-scene δ1
are the same number, and the pixels of one scene are not independent draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from afterlearner import presets
from afterlearner.experiments.depth.model import Calibrated, depth_metrics, load_depth_net, predict
from afterlearner.experiments.depth.render import Camera, render_dataset
from afterlearner.task import Task

#: The deployment camera: a longer lens than the training camera (focal 28 px).
DEPLOY_CAMERA = Camera(focal=36.0, pitch=0.3)
ALEPH_SEED, TEST_SEED = 1, 2
ALEPH_SCENES, TEST_SCENES = 64, 200
REDUCED_ALEPH_SCENES, REDUCED_TEST_SCENES = 16, 32


@dataclass
class DepthData:
    """Images (N, 3, H, W) and true depth maps (N, H, W) in metres."""

    images: np.ndarray
    depths: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


class DepthLoss:
    """Mean over images of 1 − δ1 of ``model`` on ``data``; :meth:`metrics` gives all four metrics."""

    def __init__(self, data: DepthData) -> None:
        self.data = data

    def metrics(self, model: nn.Module) -> dict[str, float]:
        per_image = depth_metrics(predict(model, self.data.images), self.data.depths)
        return {key: float(values.mean()) for key, values in per_image.items()}

    def per_scene(self, model: nn.Module) -> np.ndarray:
        """1 − δ1 of each scene: the loss is their mean."""
        return 1.0 - depth_metrics(predict(model, self.data.images), self.data.depths)["delta1"]

    def __call__(self, model: nn.Module) -> float:
        return 1.0 - self.metrics(model)["delta1"]


class MetricLoss(DepthLoss):
    """One more depth metric as a loss (lower is better): AbsRel, or 1 − δ2 / 1 − δ3; a guard's loss."""

    def __init__(self, data: DepthData, metric: str) -> None:
        super().__init__(data)
        self.metric = metric

    def __call__(self, model: nn.Module) -> float:  # type: ignore[override]
        per_image = depth_metrics(predict(model, self.data.images), self.data.depths)[self.metric]
        values = per_image if self.metric == "absrel" else 1.0 - per_image
        return float(values.mean())


#: The guards of the guarded variant: metric → tolerance (how much worse than the trained model, on
#: the loss scale: AbsRel itself, 1 − δ2). Zero: δ1 may improve only where neither gets worse.
GUARDS = {"absrel": 0.0, "delta2": 0.0}


def depth_guards(aleph_data: DepthData, test_data: DepthData) -> dict[str, tuple]:
    """AbsRel and 1 − δ2 as guards (tolerances :data:`GUARDS`), each with its held-out check."""
    return {
        name: (MetricLoss(aleph_data, name), tolerance, MetricLoss(test_data, name))
        for name, tolerance in GUARDS.items()
    }


class PerSceneDepthLoss(DepthLoss):
    """The held-out form of :class:`DepthLoss`: calling it gives 1 − δ1 per scene (a 1-D array whose
    mean is the loss), so ``heldout`` can pair the scenes of the trained and the retrofitted model."""

    def __call__(self, model: nn.Module) -> np.ndarray:  # type: ignore[override]
        return self.per_scene(model)


def depth_task(
    model: Calibrated,
    aleph_data: DepthData,
    test_data: DepthData,
    last_layers: list[tuple[str, str, str]] = (),
    name: str = "depth-delta1",
) -> Task:
    """A δ1 task for any :class:`Calibrated` depth model.

    The ℵ-space is the output scale and shift plus ``last_layers``: (pattern, mode, per) triples
    passed to :meth:`Aleph.add` with names relative to the wrapped model (e.g.
    ``("head.weight", "scale", "column")`` for per-input-channel factors of the last convolution).
    """
    if len(aleph_data) == 0 or len(test_data) == 0:
        raise ValueError("the ℵ-set and the held-out set must not be empty")
    # Calibrated's own scale and shift (in log-depth), each with step 0.05
    aleph = presets.output_affine(model, scale_step=0.05, shift_step=0.05)
    for pattern, mode, per in last_layers:
        aleph.add(f"model.{pattern}", mode=mode, per=per)  # type: ignore[arg-type]
    return Task(
        aleph=aleph,
        loss=DepthLoss(aleph_data),
        test_loss=PerSceneDepthLoss(test_data),
        name=name,
        n=len(aleph_data),
        description="1 − δ1 of a depth model on an ℵ-set of scenes; held-out scenes for the check",
    )


#: ℵ-space choices: the layers of :class:`DepthNet` searched besides the output scale and shift.
#: ``"head"`` (the default, 19 scalars): per-input-channel factors and bias of the last convolution;
#: ``"output"`` (2 scalars): scale and shift only; ``"head+bn"`` (51 scalars): also the per-channel
#: gains and biases of the last normalisation layer.
ALEPH_CHOICES: dict[str, list[tuple[str, str, str]]] = {
    "output": [],
    "head": [("head.weight", "scale", "column"), ("head.bias", "offset", "element")],
    "head+bn": [
        ("head.weight", "scale", "column"),
        ("head.bias", "offset", "element"),
        ("up2.1.weight", "scale", "element"),
        ("up2.1.bias", "offset", "element"),
    ],
}
DEFAULT_ALEPH = "head"


def make_task(
    reduced: bool = False, aleph: str = DEFAULT_ALEPH, weights: str | Path | None = None, guards: bool = False
) -> Task:
    """The experiment: committed CNN, 64 ℵ-scenes and 200 held-out scenes from the deployment camera.

    ``guards``: AbsRel and δ2 may not get worse than the trained model's (:data:`GUARDS`).
    """
    if aleph not in ALEPH_CHOICES:
        raise ValueError(f"aleph must be one of {', '.join(ALEPH_CHOICES)}, got {aleph!r}")
    aleph_count = REDUCED_ALEPH_SCENES if reduced else ALEPH_SCENES
    test_count = REDUCED_TEST_SCENES if reduced else TEST_SCENES
    aleph_data = DepthData(*render_dataset(aleph_count, ALEPH_SEED, DEPLOY_CAMERA))
    test_data = DepthData(*render_dataset(test_count, TEST_SEED, DEPLOY_CAMERA))
    model = Calibrated(load_depth_net(weights), output="log").eval()
    task = depth_task(model, aleph_data, test_data, ALEPH_CHOICES[aleph])
    if guards:
        task.guards = depth_guards(aleph_data, test_data)
        task.name = "depth-delta1-guarded"
    return task
