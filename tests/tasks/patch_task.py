"""A task file for the export tests: tests/support/patch_model.py's net with an output temperature.

``AFTERLEARNER_TEST_LOSS_SHIFT`` (a float, read at every evaluation) is added to the ℵ-loss, so a
test can make the task's loss differ from the one a store journaled.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import torch

import afterlearner as al

SUPPORT = str(Path(__file__).resolve().parents[1] / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

import patch_model  # noqa: E402  (tests/support/, put on the path above)


def _task(space: str) -> al.Task:
    model = patch_model.build(seed=0)
    sampler = types.SimpleNamespace(temperature=1.0)
    x = patch_model.inputs()
    target = torch.linspace(-1.0, 1.0, 4).expand(16, 4)

    def loss(m: patch_model.PatchNet) -> float:
        shift = float(os.environ.get("AFTERLEARNER_TEST_LOSS_SHIFT", "0"))
        return float(((m(x) / sampler.temperature - target) ** 2).mean()) + shift

    aleph = al.Aleph(model).add("fc.bias").add(space, mode="scale", per="row")
    aleph.hyper(sampler, "temperature", low=0.5, high=2.0, name="temperature")
    return al.Task(aleph=aleph, loss=loss, test_loss=loss, name="patch-net", n=50, budget=30)


def task() -> al.Task:
    return _task("body.weight")


def other_space() -> al.Task:
    """The same model and loss, another ℵ-space: fc.weight's rows instead of body.weight's."""
    return _task("fc.weight")
