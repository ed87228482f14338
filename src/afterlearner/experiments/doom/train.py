"""Train the Doom policy by behaviour cloning with DAgger from the scripted teacher.

Round 0 records the teacher playing; each later round lets the current policy play (so it visits
the states its own mistakes lead to) while the teacher labels every state, and the policy is
retrained on everything gathered so far. One CPU thread, a few minutes::

    python -m afterlearner.experiments.doom.train            # writes doom/policy.pt
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from afterlearner.experiments.doom.episodes import ALEPH_SEEDS, play, policy_chooser
from afterlearner.experiments.doom.game import Observation, batch, make_game
from afterlearner.experiments.doom.policy import WEIGHTS, DoomPolicy, Sampler
from afterlearner.experiments.doom.teacher import teacher_action


def gather(game, policy: DoomPolicy | None, seeds: range, memory: list[tuple[Observation, int]]) -> list[int]:
    """Play ``seeds`` (the teacher if ``policy`` is None), appending (observation, teacher action)."""
    results = []
    for seed in seeds:
        student = None if policy is None else policy_chooser(policy, Sampler(1.0), seed)

        def choose(state, observation: Observation, student=student) -> int:
            label = teacher_action(state)
            memory.append((observation, label))
            return label if student is None else student(state, observation)

        results.append(play(game, choose, seed))
    return results


def fit(policy: DoomPolicy, memory: list[tuple[Observation, int]], epochs: int, seed: int) -> float:
    """Cross-entropy training on all gathered (observation, teacher action) pairs; returns the last loss."""
    frames, variables = batch([observation for observation, _ in memory])
    labels = torch.tensor([label for _, label in memory])
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    policy.train()
    loss = torch.zeros(())
    for _ in range(epochs):
        for index in torch.randperm(len(labels), generator=generator).split(128):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(policy(frames[index], variables[index]), labels[index])
            loss.backward()
            optimizer.step()
    return float(loss.detach())


def train(rounds: int = 4, episodes: int = 12, epochs: int = 6, seed: int = 0) -> DoomPolicy:
    """DAgger: ``rounds`` rounds of ``episodes`` episodes each; seeds below the ℵ-seeds."""
    torch.manual_seed(seed)
    policy = DoomPolicy()
    game = make_game(labels=True)
    memory: list[tuple[Observation, int]] = []
    try:
        for round_index in range(rounds):
            seeds = range(seed * 1000 + round_index * episodes, seed * 1000 + (round_index + 1) * episodes)
            assert seeds.stop <= ALEPH_SEEDS
            started = time.perf_counter()
            results = gather(game, None if round_index == 0 else policy, seeds, memory)
            loss = fit(policy, memory, epochs, seed + round_index)
            who = "teacher" if round_index == 0 else "policy"
            print(
                f"round {round_index}: {who} kills {np.mean(results):.1f}, {len(memory)} samples, "
                f"loss {loss:.3f}, {time.perf_counter() - started:.0f} s",
                flush=True,
            )
    finally:
        game.close()
    return policy.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    policy = train(args.rounds, args.episodes, args.epochs, args.seed)
    torch.save(policy.state_dict(), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
