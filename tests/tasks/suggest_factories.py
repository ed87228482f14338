"""Factories for ``afterlearner suggest``: a model, a generation config, and something that is neither."""

from __future__ import annotations

import torch


class Tagger(torch.nn.Module):
    """Two normalized blocks and a 5-class output layer."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList(
            [torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.LayerNorm(6)) for _ in range(2)]
        )
        self.out = torch.nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.out(x)


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return Tagger().eval()


def scripted() -> torch.nn.Module:
    return torch.jit.script(model())


def config() -> dict[str, float]:
    return {"temperature": 0.8, "top_p": 0.9}


def other() -> str:
    return "not a model"
