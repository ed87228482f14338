"""A CPU-bound task for the parallel benchmark: ℵ-parameters in the FIRST layer, so nothing can be
cached and every evaluation is a full forward pass of an MLP over 1000 samples (25–60 ms on one core
of the shared machine).

    afterlearner run bench/speed_cpu_task.py:task --processes 2 --budget 32
"""

from __future__ import annotations

import torch

from afterlearner import Aleph, Task
from afterlearner.losses import DatasetLoss, error_rate


def task(samples: int = 1000) -> Task:
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(samples, 256, generator=generator)
    y = (x[:, :10].argmax(dim=1) + (x[:, 10] > 0).long()) % 10
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 10),
    ).eval()
    aleph = Aleph(model).add("0.bias")
    return Task(aleph, DatasetLoss(x, y, error_rate), name="cpu-bound", n=len(y), budget=32)


def heavy() -> Task:
    """The same network over 4000 samples: about 4 times the cost per evaluation."""
    return task(samples=4000)
