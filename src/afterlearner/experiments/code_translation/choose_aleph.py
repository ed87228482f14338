"""Choose the code-translation ℵ-space on the validation split, never on the held-out set.

``python -m afterlearner.experiments.code_translation.choose_aleph [--metric ca bleu] [--budget 200]``

Each ℵ-space of :data:`.task.ALEPH_CHOICES` is retrofitted on the ℵ-set (DiagonalCMA, the
experiment's budget, seed 0) and its gain measured on the validation split (300 programs of their
own seed, disjoint from the ℵ-set, the held-out set and training), with its paired 95% interval.
The choice with the largest validation gain wins (ties: fewer scalars); :data:`.task.DEFAULT_ALEPH`
records the winners, and the held-out set is only used afterwards, by ``afterlearner reproduce``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from afterlearner.experiments.code_translation.model import load_translator
from afterlearner.experiments.code_translation.task import (
    ALEPH_CHOICES,
    Metric,
    experiment_cases,
    translation_task,
    validation_cases,
)
from afterlearner.retrofit import retrofit

OPTIMIZER = "DiagonalCMA"


@dataclass(frozen=True)
class Trial:
    """One ℵ-space retrofitted on the ℵ-set and measured on the validation split."""

    metric: str
    aleph: str
    scalars: int
    budget: int
    aleph_before: float
    aleph_after: float
    validation_before: float
    validation_after: float
    gain: float
    gain_low: float | None
    gain_high: float | None
    p_value: float | None


def trial(metric: Metric, aleph: str, budget: int, seed: int = 0, reduced: bool = False) -> Trial:
    """Retrofit the ℵ-space ``aleph`` for ``metric`` and measure its gain on the validation split."""
    aleph_cases, _ = experiment_cases(reduced)
    task = translation_task(load_translator(), aleph_cases, validation_cases(reduced), metric, aleph)
    result = retrofit(
        task.aleph,
        task.loss,
        budget=budget,
        optimizer=OPTIMIZER,
        seed=seed,
        test_loss=task.test_loss,
        n=task.n,
        progress=False,
        name=f"choose-{metric}-{aleph}",
    )
    gain = result.test_gain
    assert gain is not None and result.initial_loss is not None and result.best_loss is not None
    assert result.test_initial is not None and result.test_best is not None
    return Trial(
        metric,
        aleph,
        len(task.aleph),
        budget,
        result.initial_loss,
        result.best_loss,
        result.test_initial,
        result.test_best,
        gain.value,
        gain.low,
        gain.high,
        gain.p_value,
    )


def choose(trials: list[Trial]) -> Trial:
    """The trial with the largest validation gain; among equal gains, the one with fewer scalars."""
    return max(trials, key=lambda t: (round(t.gain, 12), -t.scalars))


def table(trials: list[Trial]) -> str:
    """The trials as a Markdown table, the chosen one in bold."""
    chosen = choose(trials)
    lines = [
        "| ℵ-space | scalars | ℵ-loss before → after | validation loss before → after "
        "| validation gain [95%] | p |",
        "|---|---|---|---|---|---|",
    ]
    for t in trials:
        interval = f"[{t.gain_low:.4f}, {t.gain_high:.4f}]" if t.gain_low is not None else ""
        name = f"**{t.aleph}** (chosen)" if t is chosen else t.aleph
        p = f"{t.p_value:.3g}" if t.p_value is not None else ""
        lines.append(
            f"| {name} | {t.scalars} | {t.aleph_before:.4f} → {t.aleph_after:.4f} | "
            f"{t.validation_before:.4f} → {t.validation_after:.4f} | {t.gain:.4f} {interval} | {p} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metric", nargs="+", default=["ca", "bleu"], choices=["ca", "bleu"])
    parser.add_argument("--aleph", nargs="+", default=list(ALEPH_CHOICES), choices=ALEPH_CHOICES)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reduced", action="store_true", help="16 programs per split (a quick check)")
    parser.add_argument("--out", type=Path, help="write the trials as JSON here")
    args = parser.parse_args()
    everything = []
    for metric in args.metric:
        trials = []
        for aleph in args.aleph:
            trials.append(trial(metric, aleph, args.budget, args.seed, args.reduced))
            print(json.dumps(asdict(trials[-1])), flush=True)
        print(f"\n{metric}: chosen {choose(trials).aleph}\n{table(trials)}\n", flush=True)
        everything += trials
    if args.out is not None:
        args.out.write_text(json.dumps([asdict(t) for t in everything], indent=1) + "\n")


if __name__ == "__main__":
    main()
