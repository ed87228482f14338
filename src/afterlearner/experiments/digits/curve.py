"""Measure a feedback session with a simulated user: hidden target score vs number of answers.

Two ways of choosing what the (simulated) person is shown, everything else equal (same user, same
``k`` candidates per question, same number of answers, same seeds):

* **session**: the candidates come from the feedback session's comparison-based optimizer, told
  only the user's comparisons;
* **random**: the candidates are random proposals from the same space (Nevergrad's RandomSearch:
  the latent drawn from the generator's N(0, I) prior, the scales uniform in their range), and the
  user keeps the best shown so far by the same comparisons.

Run ``python -m afterlearner.experiments.digits.curve`` to write ``docs/online-curve.png`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from afterlearner.experiments.digits.steering import TARGET_SAMPLE, DigitSteering, style_distance
from afterlearner.online.session import DEFAULT_OPTIMIZER, FeedbackSession
from afterlearner.online.simulated import SimulatedUser, Style, drive
from afterlearner.report import pyplot, save_figure

RANDOM = "RandomSearch"


def measure(
    answers: int = 30,
    seeds: Sequence[int] = range(10),
    k: int = 4,
    optimizer: str = DEFAULT_OPTIMIZER,
    sample: int = TARGET_SAMPLE,
    style: Style = "best",
) -> dict[str, Any]:
    """Curves (hidden score of the current best after 0..answers answers) per seed, session and random."""
    demo = DigitSteering()
    user = SimulatedUser(lambda vector: style_distance(demo.image(vector), sample), style=style)
    curves: dict[str, list[list[float]]] = {}
    for name, method in (("session", optimizer), ("random", RANDOM)):
        curves[name] = [
            drive(
                FeedbackSession(demo.aleph, demo.render, k=k, budget=answers, optimizer=method, seed=seed),
                user,
            )
            for seed in seeds
        ]
    return {
        "answers": answers,
        "k": k,
        "optimizer": optimizer,
        "style": style,
        "target_sample": sample,
        "seeds": list(seeds),
        "start": curves["session"][0][0],
        **curves,
    }


def summary(result: dict[str, Any]) -> dict[str, float]:
    """Mean final score of each method, the start, and in how many seeds the session beat random."""
    session = np.array([c[-1] for c in result["session"]])
    random = np.array([c[-1] for c in result["random"]])
    return {
        "start": result["start"],
        "session_mean": float(session.mean()),
        "random_mean": float(random.mean()),
        "session_median": float(np.median(session)),
        "random_median": float(np.median(random)),
        "session_wins": int(np.sum(session < random)),
        "seeds": len(session),
    }


def plot(result: dict[str, Any], path: str | Path) -> Path:
    """Mean curve (with the 25–75 % band over seeds) of both methods."""
    figure, axis = pyplot().subplots(figsize=(6.4, 4.0))
    x = np.arange(result["answers"] + 1)
    for name, label, colour in (
        ("session", f"feedback session ({result['optimizer']})", "tab:blue"),
        ("random", "random proposals", "tab:orange"),
    ):
        curves = np.array(result[name])
        axis.plot(x, curves.mean(axis=0), color=colour, label=f"{label}, mean")
        axis.fill_between(x, *np.percentile(curves, [25, 75], axis=0), color=colour, alpha=0.2)
    axis.set_xlabel(f"answers (k={result['k']} candidates each, answered by {result['style']!r})")
    axis.set_ylabel("hidden target: pixel MSE to target digit")
    axis.set_yscale("log")
    axis.set_title(f"Simulated user, {len(result['seeds'])} seeds (band: 25–75 %)")
    axis.grid(alpha=0.3)
    axis.legend()
    return save_figure(figure, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/online-curve.png"))
    parser.add_argument("--answers", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--optimizer", default=DEFAULT_OPTIMIZER)
    parser.add_argument(
        "--style",
        choices=["best", "ranking", "pair"],
        default="best",
        help="how the simulated user answers (default: best of k, or none)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = measure(args.answers, range(args.seeds), optimizer=args.optimizer, style=args.style)
    result["summary"] = summary(result)
    plot(result, args.out)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {args.out} and {args.out.with_suffix('.json')} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
