"""The kills-per-life distribution before and after retrofitting: a histogram and a Markdown table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Most kills an episode can have: one life and 26 rounds of ammunition.
MAX_KILLS = 26


def plot_kills(before: np.ndarray, after: np.ndarray, path: Path) -> Path:
    """Overlaid histograms of kills per life (trained vs retrofitted) written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    bins = np.arange(-0.5, MAX_KILLS + 1.5, 1.0)
    figure, axes = plt.subplots(figsize=(6, 3.2))
    axes.hist(before, bins=bins, alpha=0.6, label=f"trained (mean {np.mean(before):.2f})")
    axes.hist(after, bins=bins, alpha=0.6, label=f"retrofitted (mean {np.mean(after):.2f})")
    axes.set_xlabel("kills per life (held-out episodes)")
    axes.set_ylabel("episodes")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


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
