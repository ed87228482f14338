"""Doom (kills per life): a small policy cloned from a scripted teacher, retrofitted in its last layer.

ViZDoom's ``defend_the_center`` (Freedoom graphics, headless): a tiny convolutional policy trained
in this repository (``train.py``, weights ``policy.pt``) sees a low-resolution horizon band plus
ammo and health and picks turn left / turn right / attack. The ℵ-parameters are the last layer's
three biases and three per-action scales and the action-sampling temperature (7 scalars); the
ℵ-loss is minus the mean kills per life over fixed episode seeds, checked on disjoint seeds.
See docs/doom.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from afterlearner.result import RetrofitResult
from afterlearner.task import Task

TITLE = "ViZDoom defend_the_center: policy head and sampling temperature retrofitted for kills per life"
METRIC = "− kills per life"
DEFAULT_BUDGET = 80
DEFAULT_OPTIMIZER = "DiagonalCMA"
#: Two candidates at a time, in two worker processes (each with its own game): episodes are
#: independent, and the result for a seed does not depend on the number of processes.
WORKERS = 2
PROCESSES = 2
BOUND_NOTE = (
    "kills per episode lie in [0, 26] (26 rounds of ammunition, one life), so ε bounds the gap in "
    "kills/26: multiply it by 26 for kills per life"
)
#: Episode counts (ℵ-set, held-out test set): full run, reduced run (tests).
SIZES = {False: (24, 48), True: (3, 4)}


def make_task(reduced: bool = False) -> Task:
    """The committed policy, its 7 ℵ-parameters and the kills-per-life losses."""
    from afterlearner.experiments.doom.episodes import ALEPH_SEEDS, TEST_SEEDS, KillsPerLife
    from afterlearner.experiments.doom.policy import Sampler, load_policy
    from afterlearner.space import Aleph

    policy, sampler = load_policy(), Sampler(temperature=1.0)
    aleph_size, test_size = SIZES[bool(reduced)]
    aleph = (
        Aleph(policy)
        .add("head.bias", step=1.0)
        .add("head.weight", mode="scale", per="row", low=0.0)
        .hyper(sampler, "temperature", 0.05, 5.0, log=True, name="sampler.temperature")
    )
    return Task(
        aleph=aleph,
        loss=KillsPerLife(range(ALEPH_SEEDS, ALEPH_SEEDS + aleph_size), sampler),
        test_loss=KillsPerLife(range(TEST_SEEDS, TEST_SEEDS + test_size), sampler),
        name="doom-kills-per-life",
        n=aleph_size,
        budget=DEFAULT_BUDGET,
        optimizer=DEFAULT_OPTIMIZER,
        description="ViZDoom defend_the_center policy, head biases/scales and temperature vs kills per life",
    )


def extra_metrics(task: Task) -> dict[str, float]:
    """Held-out kills per life: median, 10th percentile and share of episodes with 10 kills or more."""
    kills = task.test_loss.kills(task.aleph.model)  # type: ignore[union-attr]
    return {
        "held-out median kills": float(np.median(kills)),
        "held-out 10th percentile kills": float(np.percentile(kills, 10)),
        "held-out share of episodes ≥ 10 kills": float(np.mean(kills >= 10)),
    }


def kills_before_after(task: Task, result: RetrofitResult) -> tuple[np.ndarray, np.ndarray]:
    """Held-out kills per episode with the trained settings and with the retrofitted ones."""
    result.restore()
    before = task.test_loss.kills(task.aleph.model)  # type: ignore[union-attr]
    result.apply()
    after = task.test_loss.kills(task.aleph.model)  # type: ignore[union-attr]
    return before, after


def after_reproduce(task: Task, result: RetrofitResult, out: Path) -> list[Path]:
    """Held-out kills per life before and after: ``OUT/results/doom-kills.png`` (histogram) and
    ``OUT/results/doom-kills.md`` (summary table, the retrofitted ℵ-values and the per-episode kills)."""
    from afterlearner.experiments.doom.report import kills_table, plot_kills

    before, after = kills_before_after(task, result)
    folder = Path(out) / "results"
    plot = plot_kills(before, after, folder / "doom-kills.png")
    pairs = zip(task.aleph.labels(), result.best, strict=True)
    values = ", ".join(f"{label} = {value:.4g}" for label, value in pairs)
    table = folder / "doom-kills.md"
    table.write_text(
        f"Held-out kills per life ({len(before)} episodes)\n\n{kills_table(before, after)}\n\n"
        f"Retrofitted ℵ-values: {values}\n\nPer episode, trained: {before.tolist()}\n\n"
        f"Per episode, retrofitted: {after.tolist()}\n"
    )
    return [plot, table]
