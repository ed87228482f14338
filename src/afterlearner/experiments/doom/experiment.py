"""The Doom experiment: the policy head and sampling temperature retrofitted for kills per life.

Reported beside the row: the held-out kills-per-life distribution before and after retrofitting, as
a histogram and a Markdown table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from afterlearner.experiments.base import Experiment
from afterlearner.experiments.doom.task import make_task
from afterlearner.report import pyplot, save_figure
from afterlearner.result import RetrofitResult
from afterlearner.task import Task

#: Most kills an episode can have: one life and 26 rounds of ammunition.
MAX_KILLS = 26


def plot_kills(before: np.ndarray, after: np.ndarray, path: Path) -> Path:
    """Overlaid histograms of kills per life (trained vs retrofitted) written to ``path``."""
    bins = np.arange(-0.5, MAX_KILLS + 1.5, 1.0)
    figure, axes = pyplot().subplots(figsize=(6, 3.2))
    axes.hist(before, bins=bins, alpha=0.6, label=f"trained (mean {np.mean(before):.2f})")
    axes.hist(after, bins=bins, alpha=0.6, label=f"retrofitted (mean {np.mean(after):.2f})")
    axes.set_xlabel("kills per life (held-out episodes)")
    axes.set_ylabel("episodes")
    axes.legend()
    return save_figure(figure, path)


def kills_table(before: np.ndarray, after: np.ndarray) -> str:
    """Markdown table: mean, std, quartiles, min and max of kills per life before and after."""
    rows = ["| | mean | std | min | 25 % | median | 75 % | max |", "|---|---|---|---|---|---|---|---|"]
    for label, kills in (("trained", before), ("retrofitted", after)):
        q = np.percentile(kills, [25, 50, 75])
        rows.append(
            f"| {label} | {np.mean(kills):.2f} | {np.std(kills):.2f} | {np.min(kills)} | {q[0]:.1f} "
            f"| {q[1]:.1f} | {q[2]:.1f} | {np.max(kills)} |"
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


def kills_before_after(task: Task, result: RetrofitResult) -> tuple[np.ndarray, np.ndarray]:
    """Held-out kills per episode with the trained settings and with the retrofitted ones."""
    result.restore()
    before = task.test_loss.kills(task.aleph.model)  # type: ignore[union-attr]
    result.apply()
    after = task.test_loss.kills(task.aleph.model)  # type: ignore[union-attr]
    return before, after


def kills_report(task: Task, result: RetrofitResult, out: Path) -> list[Path]:
    """Held-out kills per life before and after: ``OUT/results/doom-kills.png`` (histogram) and
    ``OUT/results/doom-kills.md`` (summary table, the retrofitted ℵ-values and the per-episode kills)."""
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


EXPERIMENTS = (
    Experiment(
        name="doom",
        title="ViZDoom defend_the_center: policy head and sampling temperature retrofitted for kills per "
        "life",
        metric="− kills per life",
        make_task=make_task,
        budget=80,
        optimizer="DiagonalCMA",
        # Two candidates at a time, in two worker processes (each with its own game): episodes are
        # independent, and the result for a seed does not depend on the number of processes.
        workers=2,
        processes=2,
        bound_note="kills per episode lie in [0, 26] (26 rounds of ammunition, one life), so ε bounds the "
        "gap in kills/26: multiply it by 26 for kills per life",
        extra_metrics=held_out_metrics,
        after_reproduce=kills_report,
    ),
)
