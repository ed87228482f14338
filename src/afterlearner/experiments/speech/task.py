"""The speech-resynthesis task: espeak-ng → pocketsphinx, retrofitted for word error rate.

Three ℵ-spaces over the same pipeline: the synthesis settings alone, the decoding
hyperparameters alone, and both together. The ℵ-set and the held-out test set are disjoint
Harvard sentences.
"""

from __future__ import annotations

from typing import Literal

from afterlearner.experiments.speech.pipeline import ResynthesisWER
from afterlearner.experiments.speech.recognize import Decoding, Recognizer
from afterlearner.experiments.speech.sentences import split
from afterlearner.experiments.speech.synth import VARIANTS, Voice, espeak_path
from afterlearner.space import Aleph
from afterlearner.task import Task

Space = Literal["synthesis", "decoding", "both"]
#: ℵ-set and test-set sizes (sentences): full run (all 50, split 20/30), reduced run (tests).
SIZES = {False: (20, 30), True: (2, 3)}
#: The language weight's range: above 5, decoding stays within about 1.4× the default's CPU time.
LW_RANGE = (5.0, 30.0)


def add_synthesis(aleph: Aleph, voice: Voice) -> None:
    """espeak-ng's speed, pitch, word gap and voice variant.

    Pitch spans espeak-ng's whole range; speed and word gap stop where the audio gets so long
    that decoding it would dominate the run time (slow speech is decoded in proportion to its length).
    """
    aleph.hyper(voice, "speed", 120, 260, name="espeak.speed")
    aleph.hyper(voice, "pitch", 0, 99, name="espeak.pitch")
    aleph.hyper(voice, "word_gap", 0, 10, name="espeak.word_gap")
    aleph.hyper(voice, "variant", 0, len(VARIANTS) - 1, name="espeak.variant")


def add_decoding(aleph: Aleph, decoding: Decoding) -> None:
    """pocketsphinx's language weight, insertion penalty and beams, on log scales.

    The language weight ranges from 5 to 30 around its default 6.5: below about 5 the language
    model no longer prunes the search (beams compare acoustic + lw × language-model scores, so a
    small lw lets many more word hypotheses through) and decoding gets much slower: measured on 8
    sentences, 2.4–3.8× the default's CPU time at lw 3 and 4–8× at lw 2, against at most 1.4× at
    lw 5 (docs/speech.md). The insertion penalty ranges widely around its default. The beams may
    only narrow (down to 10^-20) from the defaults: wider beams make every evaluation slower for
    gains the defaults already capture.
    """
    aleph.hyper(decoding, "lw", LW_RANGE[0], LW_RANGE[1], log=True, name="sphinx.lw")
    aleph.hyper(decoding, "wip", 1e-3, 10.0, log=True, name="sphinx.wip")
    aleph.hyper(decoding, "beam", 1e-48, 1e-20, log=True, name="sphinx.beam")
    aleph.hyper(decoding, "wbeam", 7e-29, 1e-12, log=True, name="sphinx.wbeam")
    aleph.hyper(decoding, "pbeam", 1e-48, 1e-20, log=True, name="sphinx.pbeam")


def make_task(reduced: bool = False, space: Space = "both") -> Task:
    """The task for one ℵ-space; ``reduced`` uses fewer sentences (the test-suite version)."""
    if space not in ("synthesis", "decoding", "both"):
        raise ValueError(f"space must be 'synthesis', 'decoding' or 'both', got {space!r}")
    espeak_path()  # fail early, with the install hint, if espeak-ng is missing
    aleph_sentences, test_sentences = split(*SIZES[bool(reduced)])
    voice, decoding, recognizer = Voice(), Decoding(), Recognizer()
    aleph = Aleph()
    if space in ("synthesis", "both"):
        add_synthesis(aleph, voice)
    if space in ("decoding", "both"):
        add_decoding(aleph, decoding)
    return Task(
        aleph=aleph,
        loss=ResynthesisWER(aleph_sentences, voice, decoding, recognizer),
        test_loss=ResynthesisWER(test_sentences, voice, decoding, recognizer),
        name=f"speech-{space}",
        n=len(aleph_sentences),
        description=f"espeak-ng → pocketsphinx word error rate, ℵ-parameters: {space}",
    )
