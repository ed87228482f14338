"""Held-out WER of the trained chain in several rooms: ``python -m ...speech.conditions``.

What the enhancement network does where it was trained (white and pink noise) and where it is
deployed (motor hum), against clean speech and the noisy audio sent straight to the recogniser;
the same held-out sentences and noise seeds as the experiment, default decoder settings. The
figures of docs/speech.md's table of conditions.
"""

from __future__ import annotations

import argparse

from afterlearner.experiments.speech.enhance import load_enhancer
from afterlearner.experiments.speech.noise import Coloured, Noise
from afterlearner.experiments.speech.pipeline import EnhancedWER, noisy_utterances, word_error_rate
from afterlearner.experiments.speech.recognize import Decoding, Recognizer
from afterlearner.experiments.speech.sentences import split
from afterlearner.experiments.speech.synth import synthesize
from afterlearner.experiments.speech.task import (
    DEPLOY_NOISE,
    DEPLOY_SNR_DB,
    LM_SENTENCES,
    SIZES,
    TEST_SEED,
    VOICE,
)

ROOMS: dict[str, Noise] = {"motor": DEPLOY_NOISE, "white": Coloured(0.0), "pink": Coloured(1.0)}


def conditions(sentences: int = SIZES[False][1], snr_db: float = DEPLOY_SNR_DB) -> dict[str, float]:
    """``{"clean": WER, "<room> without network": WER, "<room> with network": WER, ...}``."""
    test = split("test", sentences)
    recognizer, decoding, model = Recognizer(split("train", LM_SENTENCES)), Decoding(), load_enhancer()
    clean = [recognizer.transcribe(synthesize(sentence, VOICE), decoding) for sentence in test]
    table = {"clean": word_error_rate(test, clean)}
    for name, noise in ROOMS.items():
        utterances = noisy_utterances(test, VOICE, noise, snr_db, TEST_SEED)
        for network in (False, True):
            loss = EnhancedWER(test, utterances, decoding, recognizer, network=network)
            table[f"{name} {'with' if network else 'without'} network"] = loss(model)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=SIZES[False][1])
    parser.add_argument("--snr", type=float, default=DEPLOY_SNR_DB)
    args = parser.parse_args()
    for condition, wer in conditions(args.sentences, args.snr).items():
        print(f"{condition}: WER {wer:.4f}", flush=True)


if __name__ == "__main__":
    main()
