"""Shared fixtures: small models and losses that make the core's behaviour easy to check.

Helper modules live in tests/support (on ``sys.path`` through pyproject's ``pythonpath``), task files
in tests/tasks; ``paths`` says where both are. Tests that take seconds are marked ``slow``
(``make test-fast`` leaves them out, ``make test`` runs them).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch


class TinyNet(torch.nn.Module):
    """A two-layer classifier on 6 features and 4 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(6, 8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.body(x)))


@pytest.fixture
def tiny_net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


@pytest.fixture
def quadratic_loss():
    """A smooth loss of fc.bias whose minimum is known: the bias equal to ``target``."""
    target = torch.tensor([0.5, -0.25, 0.75, -1.0])

    def loss(model: torch.nn.Module) -> float:
        return float(((model.fc.bias.detach() - target) ** 2).sum())

    return loss


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.hookimpl(tryfirst=True)  # before ``-m "not slow"`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that drives a real browser is slow, wherever it is: Chromium and a server in child
    processes take 5-25 s a test on the 2-core machine."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
