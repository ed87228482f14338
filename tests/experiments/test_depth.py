"""Depth-sensing experiment: renderer geometry, metrics, calibration, a reduced retrofit, the DPT path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from afterlearner.experiments.depth import render
from afterlearner.experiments.depth.experiment import held_out_metrics
from afterlearner.experiments.depth.model import Calibrated, DepthNet, depth_metrics, load_depth_net
from afterlearner.experiments.depth.task import DepthData, DepthLoss, make_task
from afterlearner.retrofit import retrofit


def test_ray_plane_and_sphere_intersections_are_exact():
    rays = np.array([[0.0, -0.5, 1.0], [0.0, 0.5, 1.0]])
    t = render._hit_plane(rays, np.array([0.0, 1.0, 0.0]), -1.5)
    assert t[0] == pytest.approx(3.0) and t[1] == np.inf  # the ground at y = -1.5, seen only looking down
    t, normals = render._hit_sphere(np.array([[0.0, 0.0, 1.0]]), np.array([0.0, 0.0, 5.0]), 1.0)
    assert t[0] == pytest.approx(4.0) and normals[0] == pytest.approx([0.0, 0.0, -1.0])
    t, normals = render._hit_box(
        np.array([[0.0, 0.0, 1.0]]), np.array([-1.0, -1.0, 6.0]), np.array([1.0, 1.0, 7.0])
    )
    assert t[0] == pytest.approx(6.0) and normals[0] == pytest.approx([0.0, 0.0, -1.0])


def test_rendered_scenes_are_reproducible_and_bounded():
    images, depths = render.render_dataset(4, seed=7)
    again, depths_again = render.render_dataset(4, seed=7)
    assert images.shape == (4, 3, render.SIDE, render.SIDE) and depths.shape == (4, render.SIDE, render.SIDE)
    assert np.array_equal(images, again) and np.array_equal(depths, depths_again)
    assert 0 <= images.min() and images.max() <= 1
    assert 1.0 < depths.min() and depths.max() <= render.WALL_RANGE[1] + 1e-3
    # the bottom row sees the ground (or an object in front of it), the top rows the far wall
    assert (depths[:, -1] < depths[:, 0]).all()
    with pytest.raises(ValueError, match="count"):
        render.render_dataset(0, seed=0)


def test_depth_metrics_known_values():
    truth = np.full((1, 2, 2), 10.0)
    predicted = np.array([[[10.0, 12.0], [14.0, 30.0]]])  # ratios 1, 1.2, 1.4, 3
    metrics = depth_metrics(predicted, truth)
    assert metrics["delta1"][0] == 0.5 and metrics["delta2"][0] == 0.75 and metrics["delta3"][0] == 0.75
    assert metrics["absrel"][0] == pytest.approx((0 + 0.2 + 0.4 + 2.0) / 4)
    with pytest.raises(ValueError, match="shape"):
        depth_metrics(predicted, np.ones((1, 3, 3)))


def test_calibrated_output_modes():
    class Constant(torch.nn.Module):
        def forward(self, images):
            return torch.full(images.shape[:1] + images.shape[2:], 2.0)

    images = torch.zeros(1, 3, 4, 4)
    assert Calibrated(Constant(), "depth")(images)[0, 0, 0] == pytest.approx(2.0)
    assert Calibrated(Constant(), "disparity")(images)[0, 0, 0] == pytest.approx(0.5)
    assert Calibrated(Constant(), "log", scale=0.5)(images)[0, 0, 0] == pytest.approx(np.e)
    with pytest.raises(ValueError, match="output"):
        Calibrated(Constant(), "inverse")


def test_committed_weights_load_and_predict_sensible_depth():
    model = load_depth_net()
    assert isinstance(model, DepthNet) and not model.training
    images, depths = render.render_dataset(8, seed=11, camera=render.Camera(focal=28.0, pitch=0.3))
    metrics = DepthLoss(DepthData(images, depths)).metrics(Calibrated(model).eval())
    assert metrics["delta1"] > 0.5 and metrics["absrel"] < 0.35  # it learned depth, on its training camera


def test_reduced_retrofit_improves_delta1_and_reports_metrics():
    task = make_task(reduced=True)
    assert task.n == 16 and len(task.aleph) == 19
    before = held_out_metrics(task)
    result = retrofit(
        task.aleph,
        task.loss,
        budget=25,
        optimizer="DiagonalCMA",
        seed=0,
        progress=False,
        test_loss=task.test_loss,
        n=task.n,
    )
    assert result.best_loss < result.initial_loss
    after = held_out_metrics(task)
    assert set(after) == {"delta1", "delta2", "delta3", "absrel"}
    assert after["delta1"] == pytest.approx(1 - result.test_best)
    result.restore()
    assert held_out_metrics(task) == before


def test_guarded_retrofit_never_returns_a_candidate_worse_on_absrel_or_delta2():
    task = make_task(reduced=True, guards=True)
    assert set(task.guards) == {"absrel", "delta2"}
    trained = {name: guard[0](task.aleph.model) for name, guard in task.guards.items()}
    result = retrofit(
        task.aleph,
        task.loss,
        budget=30,
        optimizer="DiagonalCMA",
        seed=0,
        progress=False,
        test_loss=task.test_loss,
        n=task.n,
        guards=task.guards,
    )
    assert result.infeasible > 0 and result.best_loss < result.initial_loss
    for name, guard in task.guards.items():  # on the ℵ-set, neither guard got worse
        assert guard[0](task.aleph.model) <= trained[name]
    assert {check.name for check in result.guard_checks} == {"absrel", "delta2"}
    assert all(check.test_trained is not None for check in result.guard_checks)


def test_unknown_aleph_choice_is_rejected():
    with pytest.raises(ValueError, match="aleph must be one of"):
        make_task(reduced=True, aleph="everything")


def test_dpt_from_a_local_directory(tmp_path):
    transformers = pytest.importorskip("transformers")
    from afterlearner.experiments.depth.hf import dpt_task, load_dpt

    config = transformers.DPTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        reassemble_factors=[4, 2, 1, 0.5],
    )
    torch.manual_seed(0)
    transformers.DPTForDepthEstimation(config).save_pretrained(tmp_path / "dpt")
    model = load_dpt(tmp_path / "dpt")
    images, depths = render.render_dataset(6, seed=3)
    task = dpt_task(model, DepthData(images[:3], depths[:3]), DepthData(images[3:], depths[3:]))
    last_conv = model.model.dpt.head.head[4]
    # scale, shift, then per-input-channel factors and the bias of the head's last convolution
    assert len(task.aleph) == 2 + last_conv.in_channels + 1
    result = retrofit(
        task.aleph,
        task.loss,
        budget=6,
        optimizer="OnePlusOne",
        progress=False,
        test_loss=task.test_loss,
        n=task.n,
    )
    assert result.evaluations == 6 and result.best_loss <= result.initial_loss
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_dpt(tmp_path)
