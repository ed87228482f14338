"""The referees: a panel of judges trained independently of the user's, that only score results afterwards.

The simulated user compares images through one judge (``weights/judge.pt``, seed 0). Whether an
image the retrofit steered towards the user's target really looks more like it, and not only to
that network, is asked of judges the search never consulted: the same architecture and data,
trained with other seeds (another initialisation and batch order), each one a held-out item. The
first referee is ``weights/judge_heldout.pt`` (seed 1, written by ``train.py``); the others (seeds
2 to 10) are trained by ``python -m afterlearner.experiments.ldm.referees`` and kept together in
``weights/referees.pt``, their held-out accuracies in ``weights/referees.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from afterlearner.experiments.ldm import data
from afterlearner.experiments.ldm.judge import Judge, accuracy, load_judge, train_judge

WEIGHTS = Path(__file__).with_name("weights")
#: Training seeds of the referees kept in ``referees.pt`` (seed 0 is the user's judge, seed 1 is
#: ``judge_heldout.pt``).
SEEDS = tuple(range(2, 11))
#: Epochs of every judge (as in ``train.py``).
EPOCHS = 15


def load_referees(weights: Path = WEIGHTS) -> list[Judge]:
    """The panel: ``judge_heldout.pt`` then the judges of ``referees.pt``, in seed order (eval mode)."""
    path = weights / "referees.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run python -m afterlearner.experiments.ldm.referees")
    panel = [load_judge(weights / "judge_heldout.pt")]
    saved = torch.load(path, weights_only=True)  # seed (a string) → state dict
    for _, state in sorted(saved.items(), key=lambda item: int(item[0])):
        judge = Judge()
        judge.load_state_dict(state)
        panel.append(judge.eval())
    return panel


def train_referees(
    seeds: tuple[int, ...] = SEEDS, epochs: int = EPOCHS
) -> tuple[dict[int, Judge], dict[int, float]]:
    """Train one judge per seed on the training digits; the judges and their held-out accuracies."""
    digits = data.load()
    judges = {
        seed: train_judge(digits.train_images, digits.train_labels, seed=seed, epochs=epochs)
        for seed in seeds
    }
    accuracies = {
        seed: accuracy(judge, digits.held_images, digits.held_labels) for seed, judge in judges.items()
    }
    return judges, accuracies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="directory to write referees.pt to")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    judges, accuracies = train_referees()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({str(seed): judge.state_dict() for seed, judge in judges.items()}, args.out / "referees.pt")
    figures = {
        "epochs": EPOCHS,
        "held_out_accuracy": {str(seed): round(a, 4) for seed, a in accuracies.items()},
    }
    (args.out / "referees.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"referees (seeds {SEEDS[0]}-{SEEDS[-1]}): held-out accuracy {min(accuracies.values()):.3f}-"
        f"{max(accuracies.values()):.3f}; saved to {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
