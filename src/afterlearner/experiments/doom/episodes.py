"""Playing episodes and the ℵ-loss: minus the mean kills per life over a fixed list of episode seeds.

An episode is one life, so kills per life is the mean of the episodes' kills: the held-out loss
(:class:`PerEpisodeKills`) shows it as one loss per episode, minus its kills, and the held-out gain
gets a paired interval over episodes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import torch

from afterlearner.experiments.doom.game import FRAME_SKIP, Observation, button, kills, make_game, observe
from afterlearner.experiments.doom.policy import DoomPolicy, Sampler

#: Episode seeds: policy training uses seeds below ALEPH_SEEDS; the ℵ-set and test set are disjoint.
ALEPH_SEEDS = 10_000
TEST_SEEDS = 20_000

Chooser = Callable[[object, Observation], int]
#: Results a loss remembers (policy and sampler settings → kills).
REMEMBERED = 4


def play(game, choose: Chooser, seed: int) -> int:
    """Play the episode of seed ``seed``, ``choose(state, observation)`` picking each action; its kills."""
    game.set_seed(int(seed))
    game.new_episode()
    while not game.is_episode_finished():
        state = game.get_state()
        game.make_action(button(choose(state, observe(state))), FRAME_SKIP)
    return kills(game)


def policy_chooser(policy: DoomPolicy, sampler: Sampler, seed: int) -> Chooser:
    """Actions sampled from the policy, with a generator seeded by the episode seed (reproducible)."""
    generator = torch.Generator().manual_seed(int(seed))
    return lambda state, observation: sampler.act(policy, observation, generator)


class KillsPerLife:
    """ℵ-loss: minus the mean kills per life of the policy over ``seeds`` (one life per episode).

    The sampler's temperature (and whether it plays greedily) is read at call time, so
    ``aleph.hyper(sampler, "temperature", ...)`` steers it. The game is started on first use and kept open.
    """

    def __init__(self, seeds: Sequence[int], sampler: Sampler) -> None:
        if not seeds:
            raise ValueError("KillsPerLife needs at least one episode seed")
        self.seeds = [int(seed) for seed in seeds]
        self.sampler = sampler
        self._game = None
        self._recent: dict[bytes, np.ndarray] = {}

    def _key(self, policy: DoomPolicy) -> bytes:
        digest = hashlib.sha256(repr((float(self.sampler.temperature), bool(self.sampler.greedy))).encode())
        for tensor in policy.state_dict().values():
            digest.update(tensor.detach().numpy().tobytes())
        return digest.digest()

    def kills(self, policy: DoomPolicy) -> np.ndarray:
        """Kills of each episode, in seed order (the last few results are remembered: the reports ask
        for the trained, greedy and retrofitted policies' kills several times)."""
        key = self._key(policy)
        if key in self._recent:
            return self._recent[key].copy()
        if self._game is None:
            self._game = make_game()
        policy.eval()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one frame at a time: extra threads only spin (set back below)
        try:
            game, sampler = self._game, self.sampler
            result = np.array([play(game, policy_chooser(policy, sampler, s), s) for s in self.seeds])
        finally:
            torch.set_num_threads(threads)
        self._recent[key] = result
        if len(self._recent) > REMEMBERED:
            del self._recent[next(iter(self._recent))]  # the oldest
        return result.copy()

    def __call__(self, policy: DoomPolicy) -> float:
        return -float(self.kills(policy).mean())

    def close(self) -> None:
        if self._game is not None:
            self._game.close()
            self._game = None


class PerEpisodeKills(KillsPerLife):
    """The held-out form of :class:`KillsPerLife`: calling it gives minus the kills of each episode, a
    1-D array whose mean is the loss; ``heldout`` pairs the episodes of the two models (same seeds)."""

    def __call__(self, policy: DoomPolicy) -> np.ndarray:  # type: ignore[override]
        return -self.kills(policy).astype(float)
