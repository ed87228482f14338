"""A task file with a large ℵ-space (1025 scalars) for the speed of ``show --values`` and its plots."""

from __future__ import annotations

import torch

import afterlearner as al


def task() -> al.Task:
    torch.manual_seed(0)
    model = torch.nn.Linear(40, 25)
    inputs = torch.randn(64, 40)
    target = torch.randn(64, 25)

    def loss(m: torch.nn.Module) -> float:
        return float(((m(inputs) - target) ** 2).mean())

    aleph = al.Aleph(model).add("weight").add("bias")  # 1000 + 25 offsets
    return al.Task(aleph=aleph, loss=loss, name="wide", budget=30)
