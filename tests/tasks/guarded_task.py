"""A task file with a guard: fc.bias is pulled towards a target while its size may grow only a little."""

from __future__ import annotations

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

    def loss(m: Net) -> float:
        return float(((m.fc.bias - target) ** 2).mean())

    def size(m: Net) -> float:
        return float(m.fc.bias.abs().sum())

    def held_out_size(m: Net) -> float:
        return float(m.fc.bias.abs().sum()) + 0.001

    aleph = al.Aleph(model).add("fc.bias")
    return al.Task(
        aleph=aleph,
        loss=loss,
        test_loss=loss,
        name="guarded",
        n=100,
        budget=40,
        guards={"size": al.Guard(size, 0.05, held_out_size)},
    )
