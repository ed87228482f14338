"""The Doom experiments: the policy head (and the sampling temperature) retrofitted for kills per life.

``doom`` searches the head's biases and per-action scales and the temperature; ``doom-no-temperature``
the head alone, the temperature kept at 1. Beside each row: the obvious baseline, the trained policy
played greedily (argmax), compared on the same held-out episodes with the trained policy as sampled
and with the retrofitted one (gains with paired intervals over episodes), and the held-out
kills-per-life distributions as a histogram and a Markdown table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from afterlearner.experiments.base import Experiment
from afterlearner.experiments.doom.policy import Sampler
from afterlearner.experiments.doom.task import make_task
from afterlearner.heldout import HeldOut, compare, observe
from afterlearner.report import pyplot, save_figure
from afterlearner.result import RetrofitResult
from afterlearner.task import Task

#: Most kills an episode can have: one life and 26 rounds of ammunition.
MAX_KILLS = 26
#: The labels of the three policies the reports compare.
TRAINED, GREEDY, RETROFITTED = "trained", "trained, greedy", "retrofitted"


def plot_kills(kills: Mapping[str, np.ndarray], path: Path) -> Path:
    """Overlaid histograms of held-out kills per life, one per policy, written to ``path``."""
    bins = np.arange(-0.5, MAX_KILLS + 1.5, 1.0)
    figure, axes = pyplot().subplots(figsize=(6, 3.2))
    for label, values in kills.items():
        axes.hist(values, bins=bins, alpha=0.5, label=f"{label} (mean {np.mean(values):.2f})")
    axes.set_xlabel("kills per life (held-out episodes)")
    axes.set_ylabel("episodes")
    axes.legend()
    return save_figure(figure, path)


def kills_table(kills: Mapping[str, np.ndarray]) -> str:
    """Markdown table: mean, std, quartiles, min and max of kills per life, one row per policy."""
    rows = ["| | mean | std | min | 25 % | median | 75 % | max |", "|---|---|---|---|---|---|---|---|"]
    for label, values in kills.items():
        q = np.percentile(values, [25, 50, 75])
        rows.append(
            f"| {label} | {np.mean(values):.2f} | {np.std(values):.2f} | {np.min(values)} | {q[0]:.1f} "
            f"| {q[1]:.1f} | {q[2]:.1f} | {np.max(values)} |"
        )
    return "\n".join(rows)


def held_out_metrics(task: Task) -> dict[str, float]:
    """Held-out kills per life: median, 10th percentile and share of episodes with 10 kills or more."""
    kills = task.test_loss.kills(task.aleph.model)  # type: ignore[union-attr]
    return {
        "held-out median kills": float(np.median(kills)),
        "held-out 10th percentile kills": float(np.percentile(kills, 10)),
        "held-out share of episodes ≥ 10 kills": float(np.mean(kills >= 10)),
    }


@contextlib.contextmanager
def greedy(sampler: Sampler) -> Iterator[None]:
    """The policy played greedily (argmax) inside the block, sampled again after it."""
    sampler.greedy = True
    try:
        yield
    finally:
        sampler.greedy = False


def kills_of_each(task: Task, result: RetrofitResult) -> dict[str, np.ndarray]:
    """Held-out kills per episode of the trained policy (sampled, then greedy) and of the retrofitted one.

    Leaves the retrofitted policy in place.
    """
    loss, model = task.test_loss, task.aleph.model
    result.restore()
    trained = loss.kills(model)  # type: ignore[union-attr]
    with greedy(loss.sampler):  # type: ignore[union-attr]
        greedy_kills = loss.kills(model)  # type: ignore[union-attr]
    result.apply()
    return {TRAINED: trained, GREEDY: greedy_kills, RETROFITTED: loss.kills(model)}  # type: ignore[union-attr]


def kills_before_after(task: Task, result: RetrofitResult) -> tuple[np.ndarray, np.ndarray]:
    """Held-out kills per episode with the trained settings and with the retrofitted ones."""
    kills = kills_of_each(task, result)
    return kills[TRAINED], kills[RETROFITTED]


def greedy_baseline(task: Task, result: RetrofitResult) -> dict[str, HeldOut]:
    """Held-out −kills per life: sampled → greedy (what argmax alone gives) and greedy → retrofitted
    (what the retrofit adds beyond it), each a paired comparison over the same episodes."""
    loss, model = task.test_loss, task.aleph.model
    result.restore()
    sampled = observe(loss, model)
    with greedy(loss.sampler):  # type: ignore[union-attr]
        argmax = observe(loss, model)
    result.apply()
    retrofitted = observe(loss, model)
    return {
        "− kills per life: trained (sampled, T = 1) → trained played greedily (argmax)": compare(
            loss, sampled, argmax
        ),
        "− kills per life: trained played greedily (argmax) → retrofitted": compare(
            loss, argmax, retrofitted
        ),
    }


def kills_report(task: Task, result: RetrofitResult, out: Path, name: str = "doom") -> list[Path]:
    """Held-out kills per life of the trained (sampled and greedy) and retrofitted policies:
    ``OUT/results/NAME-kills.png`` (histograms) and ``OUT/results/NAME-kills.md`` (summary table, the
    retrofitted ℵ-values and the per-episode kills)."""
    kills = kills_of_each(task, result)
    folder = Path(out) / "results"
    plot = plot_kills(kills, folder / f"{name}-kills.png")
    pairs = zip(task.aleph.labels(), result.best, strict=True)
    values = ", ".join(f"{label} = {value:.4g}" for label, value in pairs)
    episodes = "\n\n".join(f"Per episode, {label}: {values.tolist()}" for label, values in kills.items())
    table = folder / f"{name}-kills.md"
    table.write_text(
        f"Held-out kills per life ({len(kills[TRAINED])} episodes)\n\n{kills_table(kills)}\n\n"
        f"Retrofitted ℵ-values: {values}\n\n{episodes}\n"
    )
    return [plot, table]


#: Shared by both experiments: kills per episode are bounded by the ammunition.
BOUND_NOTE = (
    "kills per episode lie in [0, 26] (26 rounds of ammunition, one life), so ε bounds the gap in "
    "kills/26: multiply it by 26 for kills per life"
)

DOOM = Experiment(
    name="doom",
    title="ViZDoom defend_the_center: policy head and sampling temperature retrofitted for kills per life",
    metric="− kills per life",
    make_task=make_task,
    budget=80,
    optimizer="DiagonalCMA",
    # Two candidates at a time, in two worker processes (each with its own game): episodes are
    # independent, and the result for a seed does not depend on the number of processes.
    workers=2,
    processes=2,
    bound_note=BOUND_NOTE,
    extra_metrics=held_out_metrics,
    after_reproduce=kills_report,
    comparisons=greedy_baseline,
)
#: The policy head alone, its sampling temperature kept at 1: what the retrofit adds beyond the temperature.
NO_TEMPERATURE = dataclasses.replace(
    DOOM,
    name="doom-no-temperature",
    title="ViZDoom defend_the_center: policy head alone retrofitted for kills per life (temperature "
    "kept at 1)",
    task_options={"temperature": False},
    after_reproduce=functools.partial(kills_report, name="doom-no-temperature"),
)

EXPERIMENTS = (DOOM, NO_TEMPERATURE)
