"""afterlearner with all accelerations against the hand-written Nevergrad ask/tell loop, same retrofit.

Both retrofit the convolutional digit classifier of bench/speed_conv.py (head bias + row scales, error
rate on 300 held-out digits) with the same optimizer, budget, λ and seed, from the same
parametrization; the hand-written loop writes each candidate into the head and runs the whole network,
as users write it today. afterlearner gets a DatasetLoss and chooses its evaluator itself (prefix
cache, then vmap over the population when that measures faster). Printed: wall times, their ratio,
and whether the best losses (and the whole sequence of losses) are identical.

    .venv/bin/python bench/speed_vs_nevergrad.py [--budget 64] [--population 16] [--optimizer DiagonalCMA]
"""

from __future__ import annotations

import argparse
import os
import time

import nevergrad as ng
import numpy as np
import torch
from speed_conv import build

from afterlearner import retrofit
from afterlearner.retrofit import derive_seed


def hand_written(setup, budget: int, population: int, optimizer: str, seed: int) -> tuple[float, list[float]]:
    """The loop a user writes: ask λ, write each into the head, full forward pass, error rate, tell."""
    model = setup.model
    bias, weight = model.head.bias.detach().clone(), model.head.weight.detach().clone()
    parametrization = setup.aleph.parametrization()  # the same search space and steps
    parametrization.random_state = np.random.RandomState(derive_seed(seed, 0))
    opt = ng.optimizers.registry[optimizer](
        parametrization=parametrization, budget=budget, num_workers=population
    )
    opt.suggest(parametrization.value)
    losses: list[float] = []
    while len(losses) < budget:
        candidates = [opt.ask() for _ in range(min(population, budget - len(losses)))]
        values = []
        for candidate in candidates:
            vector = torch.as_tensor(np.asarray(candidate.value, dtype=float).ravel(), dtype=torch.float32)
            with torch.no_grad():
                model.head.bias.copy_(bias + vector[:10])
                model.head.weight.copy_(weight * vector[10:].view(-1, 1))
                predicted = model(setup.x_aleph).argmax(dim=1).numpy()
            values.append(float(np.mean(predicted != setup.y_aleph)))
        for candidate, value in zip(candidates, values, strict=True):
            opt.tell(candidate, value)
        losses.extend(values)
    with torch.no_grad():
        model.head.bias.copy_(bias)
        model.head.weight.copy_(weight)
    return min(losses), losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--optimizer", default="DiagonalCMA")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    setup = build()
    print(
        f"load average before: {os.getloadavg()[0]:.2f} (2 cores); "
        f"budget {args.budget}, λ={args.population}, "
        f"{args.optimizer}, ℵ-dataset {setup.loss.n} digits 32×32"
    )
    start = time.perf_counter()
    hand_best, hand_losses = hand_written(setup, args.budget, args.population, args.optimizer, args.seed)
    hand_time = time.perf_counter() - start
    start = time.perf_counter()
    result = retrofit(
        setup.aleph,
        setup.loss,
        budget=args.budget,
        optimizer=args.optimizer,
        workers=args.population,
        seed=args.seed,
        progress=False,
    )
    ours_time = time.perf_counter() - start
    print(f"hand-written Nevergrad loop: {hand_time:7.2f} s, best loss {hand_best:.6f}")
    print(f"afterlearner (accelerated):  {ours_time:7.2f} s, best loss {result.best_loss:.6f}")
    print(
        f"speed-up: {hand_time / ours_time:.1f}x; identical best losses: {hand_best == result.best_loss}; "
        f"identical loss sequences: {hand_losses == result.losses()}"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
