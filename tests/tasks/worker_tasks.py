"""Task factories for the worker-process and Dask tests (tests/evaluators/test_parallel.py), loaded by
the workers through ``load_task``.

``task``: a small classifier with a DatasetLoss. ``fragile``: the same model with an opaque loss
that kills its process when the first ℵ-offset is 99, hangs when it is 77 and raises when it is
NaN, so tests can make a worker die, hang or fail on purpose with one chosen candidate.
"""

from __future__ import annotations

import os
import time

import torch

from afterlearner.losses import DatasetLoss, error_rate
from afterlearner.space import Aleph
from afterlearner.task import Task

DIE = 99.0
HANG = 77.0
HANG_SECONDS = 3.0


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Tanh())
        self.fc = torch.nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def _model_and_data() -> tuple[Net, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(120, 20, generator=generator)
    y = (x[:, :4].argmax(dim=1) + (x[:, 4] > 1.0).long()) % 4
    torch.manual_seed(0)
    return Net().eval(), x, y


def task() -> Task:
    model, x, y = _model_and_data()
    aleph = Aleph(model).add("fc.bias").add("fc.weight", mode="scale", per="row")
    return Task(aleph, DatasetLoss(x, y, error_rate, batch_size=50), name="speed-test", n=len(y))


def fragile() -> Task:
    model, x, y = _model_and_data()
    aleph = Aleph(model).add("fc.bias")
    trained = model.fc.bias.detach().clone()
    data_loss = DatasetLoss(x, y, error_rate)

    def loss(m: torch.nn.Module) -> float:
        offset = float(m.fc.bias.detach()[0] - trained[0])
        if abs(offset - DIE) < 1e-3:
            os._exit(3)
        if offset != offset:
            raise ValueError("this loss refuses NaN candidates")
        if abs(offset - HANG) < 1e-3:
            time.sleep(HANG_SECONDS)
        return data_loss(m)

    return Task(aleph, loss, name="speed-fragile", n=len(y))


def dies_above_zero() -> Task:
    """The small classifier whose loss kills its process whenever the first bias offset is positive:
    about half of the optimizer's candidates."""
    model, x, y = _model_and_data()
    aleph = Aleph(model).add("fc.bias")
    trained = model.fc.bias.detach().clone()
    data_loss = DatasetLoss(x, y, error_rate)

    def loss(m: torch.nn.Module) -> float:
        if float(m.fc.bias.detach()[0] - trained[0]) > 0:
            os._exit(4)
        return data_loss(m)

    return Task(aleph, loss, name="speed-dies", n=len(y))
