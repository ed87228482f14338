"""A small ℵ-space and a loss computed from the candidate's values alone, as an outside evaluator would."""

from __future__ import annotations

import numpy as np
import torch

import afterlearner as al

SETTINGS = {"budget": 30, "optimizer": "OnePlusOne", "seed": 4}
TARGET = np.array([0.5, -0.25, 0.75, -1.0])


def build() -> al.Aleph:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 4)
    return al.Aleph(model).add("bias").add("weight", mode="scale", per="row")


def loss_of(values: dict) -> float:
    """The ℵ-loss from the candidate's values by name (no model needed)."""
    return float(((values["bias"] - TARGET) ** 2).mean() + 0.01 * np.abs(values["weight"]).mean())
