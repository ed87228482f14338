"""A small model for the patch tests, importable without afterlearner.

A fresh interpreter that never imports afterlearner builds it from here to load a patch file the way
a user without afterlearner would.
"""

from __future__ import annotations

import torch


class PatchNet(torch.nn.Module):
    """Linear → BatchNorm → ReLU → Linear, times a non-persistent output gain."""

    def __init__(self, hidden: int = 8, outputs: int = 4) -> None:
        super().__init__()
        self.body = torch.nn.Linear(6, hidden)
        self.norm = torch.nn.BatchNorm1d(hidden)
        self.fc = torch.nn.Linear(hidden, outputs)
        self.register_buffer("gain", torch.ones(outputs), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.norm(self.body(x)))) * self.gain


def build(seed: int = 0, hidden: int = 8, outputs: int = 4, dtype: str = "float32") -> PatchNet:
    """The "trained" model: fixed by ``seed``, with running statistics that are not the defaults."""
    torch.manual_seed(seed)
    model = PatchNet(hidden, outputs)
    with torch.no_grad():
        model.norm.running_mean.normal_()
        model.norm.running_var.uniform_(0.5, 2.0)
        model.norm.num_batches_tracked += 3
        model.gain.uniform_(0.5, 1.5)
    return model.to(getattr(torch, dtype)).eval()


def inputs(dtype: str = "float32") -> torch.Tensor:
    """A fixed batch of 16 inputs."""
    return torch.randn(16, 6, generator=torch.Generator().manual_seed(1)).to(getattr(torch, dtype))
