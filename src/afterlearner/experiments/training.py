"""The ordinary differentiable training the experiments' own small networks share (depth, speech).

Adam with a cosine schedule over ``epochs``, shuffled mini-batches, the mean loss per epoch printed.
Each experiment's ``train.py`` seeds torch, builds its data and network, and calls :func:`fit`; the
committed weights are what those scripts write, bit for bit, on one CPU thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def fit(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    error: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    report: Callable[[int, float], str],
) -> torch.nn.Module:
    """Fit ``model`` to ``targets`` by ``error(prediction, target)`` (a scalar); returns it in eval mode.

    ``report(epoch, mean loss)`` is the line printed after each epoch (1-based epoch).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(inputs))
        total = 0.0
        for start in range(0, len(inputs), batch_size):
            batch = order[start : start + batch_size]
            loss = error(model(inputs[batch]), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        schedule.step()
        print(report(epoch + 1, total / len(inputs)), flush=True)
    return model.eval()


def save(model: torch.nn.Module, shape: dict[str, Any], path: Path, started: float) -> None:
    """Write the weights as the experiments load them (``shape``: the constructor's arguments, then
    ``state_dict``) and say where, how large, and how long since ``started`` (``time.perf_counter``)."""
    torch.save({**shape, "state_dict": model.state_dict()}, path)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB) in {time.perf_counter() - started:.0f} s")
