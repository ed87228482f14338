"""The task every evaluator is checked on (tests/evaluators/test_conformance.py).

A small classifier whose frozen ``features`` can be cached, with ℵ-entries of every kind the batched
evaluator stacks (offsets per element, factors per row, per column and per tensor), and a continuous
metric (cross-entropy), so a difference in the last bit of an output shows in the loss. The metric
misbehaves on purpose for chosen candidates, read from the mean output of a class (the first entry
is ``fc.bias``, so an offset of ±1000 on ``fc.bias[0]`` or ``fc.bias[1]`` moves that mean far from
the few units the other candidates give):

* class 0 above +500: it raises ``ValueError(REFUSED)``;
* class 0 below −500: it returns NaN;
* class 1 above +500: it sleeps ``SLEEP`` seconds first, so that candidate completes late.
"""

from __future__ import annotations

import time

import torch

from afterlearner.losses import DatasetLoss
from afterlearner.space import Aleph
from afterlearner.task import Task

#: Offsets of fc.bias[0] (RAISE, NAN) and fc.bias[1] (SLOW) that make the metric misbehave.
RAISE, NAN, SLOW = 1000.0, -1000.0, 1000.0
REFUSED = "this metric refuses a mean output above 500"
SLEEP = 0.4


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Linear(12, 24), torch.nn.Tanh())
        self.norm = torch.nn.LayerNorm(24)
        self.hidden = torch.nn.Linear(24, 16)
        self.fc = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(self.hidden(self.norm(self.features(x)))))


def metric(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Cross-entropy, except for the candidates chosen to fail or to be slow (see the module)."""
    means = outputs[:, :2].mean(dim=0)
    if means[0] > 500:
        raise ValueError(REFUSED)
    if means[0] < -500:
        return float("nan")
    if means[1] > 500:
        time.sleep(SLEEP)
    return float(torch.nn.functional.cross_entropy(outputs, targets))


def task() -> Task:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(90, 12, generator=generator)
    y = (x[:, :4].argmax(dim=1) + (x[:, 4] > 0.8).long()) % 4
    torch.manual_seed(0)
    model = Net().eval()
    aleph = (
        Aleph(model)
        .add("fc.bias")
        .add("fc.weight", mode="scale", per="row")
        .add("hidden.weight", mode="scale", per="column")
        .add("norm.weight", mode="scale", per="tensor")
        .add("norm.bias")
    )
    return Task(aleph, DatasetLoss(x, y, metric, batch_size=40), name="evaluator-conformance", n=len(y))
