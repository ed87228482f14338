"""The Doom policy: a tiny convolutional network on the horizon band plus ammo and health.

The last layer ``head`` gives one logit per action; actions are sampled from
``softmax(logits / temperature)``. The head's biases and per-action scales and the temperature
are the ℵ-parameters.
"""

from __future__ import annotations

from pathlib import Path

import torch

from afterlearner.experiments.doom.game import ACTIONS, Observation, batch

#: The committed weights, written by ``python -m afterlearner.experiments.doom.train``.
WEIGHTS = Path(__file__).with_name("policy.pt")


class DoomPolicy(torch.nn.Module):
    """(1×30×80 frame, 2 game variables) → one logit per action."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 5, stride=2, padding=2),
            torch.nn.ReLU(),  # 15×40
            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
            torch.nn.ReLU(),  # 8×20
            torch.nn.Conv2d(16, 16, 3, stride=2, padding=1),
            torch.nn.ReLU(),  # 4×10
            torch.nn.Flatten(),
        )
        self.body = torch.nn.Sequential(torch.nn.Linear(16 * 4 * 10 + 2, 64), torch.nn.ReLU())
        self.head = torch.nn.Linear(64, len(ACTIONS))

    def forward(self, frames: torch.Tensor, variables: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(torch.cat([self.features(frames), variables], dim=1)))


class Sampler:
    """Samples actions from ``softmax(logits / temperature)`` with its own seeded generator.

    ``greedy``: play the most likely action instead (argmax of the logits, the temperature is ignored):
    the obvious baseline of a sampled policy, "play it deterministically".
    """

    def __init__(self, temperature: float = 1.0, greedy: bool = False) -> None:
        self.temperature = temperature
        self.greedy = greedy

    def act(self, policy: DoomPolicy, observation: Observation, generator: torch.Generator) -> int:
        with torch.no_grad():
            logits = policy(*batch([observation]))[0]
        if self.greedy:
            return int(logits.argmax())
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        probabilities = torch.softmax(logits.double() / self.temperature, dim=0)
        return int(torch.multinomial(probabilities, 1, generator=generator))


def load_policy(path: Path = WEIGHTS) -> DoomPolicy:
    """The trained policy (eval mode); a clear error if the weights are missing."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run python -m afterlearner.experiments.doom.train")
    policy = DoomPolicy()
    policy.load_state_dict(torch.load(path, weights_only=True))
    return policy.eval()
