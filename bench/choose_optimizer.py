"""Which optimizer should be the default? Sample efficiency and overhead, measured side by side.

For each candidate optimizer: the demo's retrofit (balanced error of the digit classifier, 20
ℵ-scalars, budget 200) over several seeds (ℵ-loss and held-out loss reached), a smooth 50-dimensional
problem at budget 300 (how fast it converges), and the optimizer's own time per ask/tell.

    .venv/bin/python bench/choose_optimizer.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import afterlearner as al
from afterlearner.experiments.digits.task import make_task

CANDIDATES = [
    "DiagonalCMA",
    "OnePlusOne",
    "DiscreteLenglerOnePlusOne",
    "TwoPointsDE",
    "PSO",
    "NGOpt",
    "RandomSearch",
]


def smooth_problem(optimizer: str, seed: int) -> tuple[float, float]:
    """50 offsets pulled towards a random target; returns (final loss / initial loss, seconds)."""
    torch.manual_seed(seed)
    layer = torch.nn.Linear(50, 50)
    target = torch.randn(50) * float(layer.bias.detach().abs().mean())

    def loss(m: torch.nn.Module) -> float:
        return float(((m.bias - target) ** 2).sum())

    start = time.perf_counter()
    result = al.retrofit(
        al.Aleph(layer).add("bias"), loss, budget=300, optimizer=optimizer, seed=seed, progress=False
    )
    return result.best_loss / result.initial_loss, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tasks = [make_task(seed) for seed in range(args.seeds)]
    print(
        f"{'optimizer':28s} {'demo ℵ-loss':>12s} {'demo held-out':>14s} "
        f"{'smooth ratio':>13s} {'ms/eval':>8s} bound"
    )
    trained = (
        np.mean([t.loss(t.aleph.model) for t in tasks]),
        np.mean([t.test_loss(t.aleph.model) for t in tasks]),
    )
    print(f"{'(trained model)':28s} {trained[0]:12.4f} {trained[1]:14.4f}")
    for name in CANDIDATES:
        aleph_losses, test_losses, overheads = [], [], []
        for seed, task in enumerate(tasks):
            result = al.retrofit(
                task.aleph,
                task.loss,
                budget=200,
                optimizer=name,
                seed=seed,
                test_loss=task.test_loss,
                n=task.n,
                progress=False,
            )
            result.restore()
            aleph_losses.append(result.best_loss)
            test_losses.append(result.test_best)
            evaluation_time = sum(e.wall_time for e in result.history)
            overheads.append((result.wall_time - evaluation_time) / result.evaluations * 1000)
        smooth = [smooth_problem(name, seed) for seed in range(args.seeds)]
        bound = result.bound()
        print(
            f"{name:28s} {np.mean(aleph_losses):12.4f} {np.mean(test_losses):14.4f} "
            f"{np.mean([s[0] for s in smooth]):13.4f} {np.mean(overheads):8.2f} "
            f"{'none' if bound is None else f'{bound:.2f}'}"
        )


if __name__ == "__main__":
    main()
