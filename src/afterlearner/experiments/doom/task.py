"""The Doom task: the committed policy, its ℵ-parameters and the kills-per-life losses.

Seven ℵ-parameters by default: the last layer's three biases and three per-action scales, and the
sampling temperature. ``temperature=False`` leaves the temperature at 1 and searches the six head
scalars alone: the variant that shows what the retrofit adds beyond "play more deterministically".

ViZDoom is imported when the task is built, not when this module is imported (``afterlearner
reproduce list`` reads the experiments without starting a game).
"""

from __future__ import annotations

from afterlearner.task import Task

#: Episode counts (ℵ-set, held-out test set): full run, reduced run (tests). The held-out set is
#: large enough to tell the baselines apart (greedy play and the no-temperature retrofit), and cheap:
#: an episode takes 0.05–0.3 s of one core.
SIZES = {False: (24, 200), True: (3, 4)}


def make_task(reduced: bool = False, temperature: bool = True) -> Task:
    """The head's three biases and three per-action scales, and (``temperature``) the sampling temperature."""
    from afterlearner.experiments.doom.episodes import ALEPH_SEEDS, TEST_SEEDS, KillsPerLife, PerEpisodeKills
    from afterlearner.experiments.doom.policy import Sampler, load_policy
    from afterlearner.space import Aleph

    policy, sampler = load_policy(), Sampler(temperature=1.0)
    aleph_size, test_size = SIZES[bool(reduced)]
    aleph = Aleph(policy).add("head.bias", step=1.0).add("head.weight", mode="scale", per="row", low=0.0)
    if temperature:
        aleph.hyper(sampler, "temperature", 0.05, 5.0, log=True, name="sampler.temperature")
    return Task(
        aleph=aleph,
        loss=KillsPerLife(range(ALEPH_SEEDS, ALEPH_SEEDS + aleph_size), sampler),
        test_loss=PerEpisodeKills(range(TEST_SEEDS, TEST_SEEDS + test_size), sampler),
        name="doom-kills-per-life" if temperature else "doom-no-temperature-kills-per-life",
        n=aleph_size,
        description="ViZDoom defend_the_center policy, head biases/scales"
        + (" and temperature" if temperature else " (temperature kept at 1)")
        + " vs kills per life",
    )
