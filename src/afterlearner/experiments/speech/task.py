"""The speech task: a voice interface in a room with a motor, retrofitted for word error rate.

The chain: espeak-ng speaks a command (the Klatt voice, :data:`VOICE`); the room adds the hum of a
motor (:data:`DEPLOY_NOISE` at :data:`DEPLOY_SNR_DB`); the enhancement network (:mod:`.enhance`,
trained to mask white, pink and brown noise, never motor hum, for a signal-level proxy) cleans the
audio; pocketsphinx, with a language model of the training commands, transcribes it. The ℵ-loss is
the corpus word error rate on the ℵ-sentences; the held-out check uses other sentences (and other
noise draws).

Three ℵ-spaces: the enhancement network's output-layer biases (one gain logit per mel band, 32
scalars) with the decoder's language weight and word insertion penalty (``both``, 34 scalars), the
network alone (``network``) and the decoder alone (``decoding``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from afterlearner.experiments.speech.enhance import load_enhancer
from afterlearner.experiments.speech.noise import Motor
from afterlearner.experiments.speech.pipeline import EnhancedWER, noisy_utterances
from afterlearner.experiments.speech.recognize import Decoding, Recognizer
from afterlearner.experiments.speech.sentences import split
from afterlearner.experiments.speech.synth import VARIANTS, Voice, espeak_path
from afterlearner.space import Aleph
from afterlearner.task import Task

Space = Literal["network", "decoding", "both"]
#: The speaker: espeak-ng's US English voice with the Klatt formant model, default speed and pitch.
VOICE = Voice(variant=VARIANTS.index("klatt"))
#: The deployment room: motor hum as loud as the speech (0 dB SNR); the network never heard hum.
DEPLOY_NOISE = Motor()
DEPLOY_SNR_DB = 0.0
#: Training sentences behind the language model.
LM_SENTENCES = 2000
#: ℵ-set and held-out sizes (sentences): full run, reduced run (tests).
SIZES = {False: (60, 150), True: (3, 4)}
#: Noise seeds: sentence i of the ℵ-set gets ALEPH_SEED + i, of the held-out set TEST_SEED + i.
ALEPH_SEED, TEST_SEED = 10_000, 20_000
#: The language weight's range around pocketsphinx's default 6.5 (log scale).
LW_RANGE = (2.0, 20.0)
#: Search step of the band-gain logits' offsets.
BIAS_STEP = 0.5


def add_network(aleph: Aleph) -> None:
    """The biases of the network's output layer: one gain logit offset per mel band."""
    aleph.add("out.bias", step=BIAS_STEP)


def add_decoding(aleph: Aleph, decoding: Decoding) -> None:
    """pocketsphinx's language weight and word insertion penalty, on log scales."""
    aleph.hyper(decoding, "lw", LW_RANGE[0], LW_RANGE[1], log=True, name="sphinx.lw")
    aleph.hyper(decoding, "wip", 1e-3, 10.0, log=True, name="sphinx.wip")


def make_task(reduced: bool = False, space: Space = "both", weights: str | Path | None = None) -> Task:
    """The task for one ℵ-space; ``reduced`` uses fewer sentences (the test-suite version)."""
    if space not in ("network", "decoding", "both"):
        raise ValueError(f"space must be 'network', 'decoding' or 'both', got {space!r}")
    espeak_path()  # fail early, with the install hint, if espeak-ng is missing
    aleph_size, test_size = SIZES[bool(reduced)]
    aleph_sentences, test_sentences = split("aleph", aleph_size), split("test", test_size)
    model = load_enhancer(weights)
    decoding, recognizer = Decoding(), Recognizer(split("train", LM_SENTENCES))
    aleph = Aleph(model)
    if space in ("network", "both"):
        add_network(aleph)
    if space in ("decoding", "both"):
        add_decoding(aleph, decoding)

    def loss(sentences: list[str], seed: int) -> EnhancedWER:
        utterances = noisy_utterances(sentences, VOICE, DEPLOY_NOISE, DEPLOY_SNR_DB, seed)
        return EnhancedWER(sentences, utterances, decoding, recognizer)

    return Task(
        aleph=aleph,
        loss=loss(aleph_sentences, ALEPH_SEED),
        test_loss=loss(test_sentences, TEST_SEED),
        name=f"speech-{space}",
        n=len(aleph_sentences),
        description=f"espeak-ng → motor hum → enhancement network → pocketsphinx WER, ℵ-parameters: {space}",
    )
