"""How much each part of the new condition hurts the trained VAD (``python -m ...vad.degradation``).

The same clips (held-out seed and sentences; same speech, rooms and melodies) under each
:data:`~.audio.CONDITIONS`, scored with Silero's default decisions. docs/vad.md shows the table.
"""

from __future__ import annotations

import argparse

from afterlearner.experiments.vad.audio import CONDITIONS, generate
from afterlearner.experiments.vad.model import load_vad
from afterlearner.experiments.vad.task import TEST_SEED, Decision, VADLoss, sentence_split


def degradation(count: int = 100, seed: int = TEST_SEED) -> dict[str, dict[str, float]]:
    """:meth:`VADLoss.metrics` of the trained VAD on ``count`` clips under each condition."""
    model, sentences = load_vad(), sentence_split()[1]
    return {
        name: VADLoss(generate(count, seed, sentences, condition), Decision()).metrics(model)
        for name, condition in CONDITIONS.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100, help="clips per condition (default 100)")
    args = parser.parse_args()
    table = degradation(args.clips)
    keys = list(next(iter(table.values())))
    print("| clips | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, metrics in table.items():
        print(f"| {name} | " + " | ".join(f"{metrics[key]:.3f}" for key in keys) + " |")


if __name__ == "__main__":
    main()
