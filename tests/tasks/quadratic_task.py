"""A task file for the CLI and crash tests: a tiny net whose fc.bias is pulled towards a target.

``AFTERLEARNER_TEST_SLEEP`` (seconds) slows each evaluation so a test can kill the run mid-way.
"""

from __future__ import annotations

import os
import time

import torch

import afterlearner as al


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)


def task() -> al.Task:
    torch.manual_seed(0)
    model = Net()
    target = torch.tensor([0.5, -0.25, 0.75, -1.0])
    pause = float(os.environ.get("AFTERLEARNER_TEST_SLEEP", "0"))

    def loss(m: Net) -> float:
        if pause:
            time.sleep(pause)
        return float(((m.fc.bias - target) ** 2).mean())

    def test_loss(m: Net) -> float:
        return float(((m.fc.bias - target) ** 2).mean()) + 0.01

    aleph = al.Aleph(model).add("fc.bias").add("fc.weight", mode="scale", per="row")
    return al.Task(aleph=aleph, loss=loss, test_loss=test_loss, name="quadratic", n=100, budget=40)
