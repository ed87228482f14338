"""Speech resynthesis experiment, against the real espeak-ng and pocketsphinx (no mocks)."""

from __future__ import annotations

import subprocess
import wave

import numpy as np
import pytest

from afterlearner import experiments
from afterlearner.experiments.speech import pipeline, sentences, synth
from afterlearner.experiments.speech.recognize import Decoding, Recognizer
from afterlearner.experiments.speech.task import LW_RANGE, make_task
from afterlearner.reproduce import run_experiment

#: A sentence the plain pipeline gets partly right with the Klatt voice (checked deterministic).
HEARD = "These days a chicken leg is a rare dish."
KLATT = synth.VARIANTS.index("klatt")


def test_normalise_and_word_error_rate() -> None:
    assert sentences.normalise("It's easy, to TELL!") == "it's easy to tell"
    assert pipeline.word_error_rate(["a b c d"], ["a b c d"]) == 0.0
    assert pipeline.word_error_rate(["a b c d"], ["a x c d"]) == pytest.approx(0.25)
    assert pipeline.word_error_rate(["a b"], ["a b c d"]) == pytest.approx(1.0)  # insertions count
    with pytest.raises(ValueError, match="as many"):
        pipeline.word_error_rate(["a"], ["a", "b"])


def test_split_is_disjoint_and_checked() -> None:
    aleph, test = sentences.split(20, 30)
    assert len(aleph) == 20 and len(test) == 30 and not set(aleph) & set(test)
    assert set(aleph) | set(test) == set(sentences.HARVARD)
    for sentences_of_list in (sentences.HARVARD[i : i + 10] for i in range(0, 50, 10)):
        assert len(set(aleph) & set(sentences_of_list)) == 4  # every Harvard list in the ℵ-set
    with pytest.raises(ValueError, match="at most 20"):
        sentences.split(21, 3)
    with pytest.raises(ValueError, match="at most 30"):
        sentences.split(3, 31)
    with pytest.raises(ValueError, match=">= 1"):
        sentences.split(0, 3)


def test_to_16k_keeps_frequency_and_duration() -> None:
    t = np.arange(synth.ESPEAK_RATE) / synth.ESPEAK_RATE  # one second
    tone = (10_000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    out = synth.to_16k(tone, synth.ESPEAK_RATE)
    assert out.dtype == np.int16 and len(out) == synth.RATE
    spectrum = np.abs(np.fft.rfft(out.astype(float)))
    assert np.argmax(spectrum) * synth.RATE / len(out) == pytest.approx(1000, abs=2)


def test_synthesis_is_espeak_resampled_to_16k(tmp_path) -> None:
    path = tmp_path / "direct.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "-v", "en-us", HEARD], check=True)
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == synth.ESPEAK_RATE
        direct = wav.getnframes()
    audio = synth.synthesize(HEARD, synth.Voice())
    assert audio.dtype == np.int16 and len(audio) == pytest.approx(direct * 16_000 / 22_050, abs=2)
    assert np.sqrt(np.mean(audio.astype(float) ** 2)) > 500  # speech, not silence
    slow = synth.synthesize(HEARD, synth.Voice(speed=100))
    assert len(slow) > 1.4 * len(audio)
    with pytest.raises(ValueError, match="variant"):
        synth.synthesize(HEARD, synth.Voice(variant=len(synth.VARIANTS)))


@pytest.mark.slow
def test_recognizer_hears_words_and_is_order_independent() -> None:
    first, second = HEARD, sentences.HARVARD[0]
    klatt = synth.Voice(variant=KLATT)
    recognizer = Recognizer()
    forward = [recognizer.transcribe(synth.synthesize(s, klatt), Decoding()) for s in (first, second)]
    backward = [recognizer.transcribe(synth.synthesize(s, klatt), Decoding()) for s in (second, first)][::-1]
    fresh = Recognizer().transcribe(synth.synthesize(first, klatt), Decoding())
    assert forward == backward and forward[0] == fresh  # CMN reset: no carry-over between utterances
    assert pipeline.word_error_rate([sentences.normalise(first)], [forward[0]]) < 0.75
    with pytest.raises(ValueError, match="int16"):
        recognizer.transcribe(np.zeros(100, dtype=np.float32), Decoding())


def test_registry_and_spaces() -> None:
    for name, size in (("speech", 9), ("speech-synthesis", 4), ("speech-decoding", 5)):
        experiment = experiments.get(name)
        assert experiment.optimizer == "DiscreteOnePlusOne" and 1 <= experiment.budget <= 300
        assert len(experiment.task(reduced=True).aleph) == size
    with pytest.raises(ValueError, match="space"):
        make_task(space="everything")  # type: ignore[arg-type]


@pytest.mark.slow
def test_reduced_reproduce_evaluates_in_worker_processes(tmp_path) -> None:
    """The default set-up (λ = 2, 2 worker processes) on the reduced task: every loss a worker
    computed is the loss this process computes for the same candidate."""
    row, result = run_experiment(
        experiments.get("speech"), budget=4, reduced=True, progress=False, out=tmp_path
    )
    assert row["workers"] == 2 and row["processes"] == 2 and row["n"] == 2
    losses = result.losses()
    assert len(losses) == 4 and all(loss is not None and loss >= 0 for loss in losses)
    assert result.best_loss == min(losses) <= result.initial_loss == losses[0]
    assert result.test_initial is not None and result.test_best is not None
    task = make_task(reduced=True)
    assert not set(task.loss.sentences) & set(task.test_loss.sentences)
    voice, decoding = task.loss.voice, task.loss.decoding
    assert len({tuple(e.vector) for e in result.history}) > 1  # not only the trained settings
    for evaluation in result.history:
        task.aleph.write(evaluation.vector)
        assert task.loss(None) == pytest.approx(evaluation.loss)
    task.aleph.restore()
    assert (voice.speed, voice.pitch, voice.word_gap, voice.variant) == (175, 50, 0, 0)
    assert (decoding.lw, decoding.wip) == (6.5, 0.65)


def test_decoding_ranges_stay_where_decoding_is_fast() -> None:
    """No candidate can ask for a language weight under 5 or beams wider than pocketsphinx's defaults
    (both make decoding several times slower, see docs/speech.md)."""
    space = make_task(reduced=True, space="both").aleph
    ranges = {entry["name"]: (entry["low"], entry["high"]) for entry in space.signature()}
    default = Decoding()
    assert ranges["sphinx.lw"] == LW_RANGE and LW_RANGE[0] == 5.0 < default.lw < LW_RANGE[1]
    for beam in ("beam", "wbeam", "pbeam"):
        assert ranges[f"sphinx.{beam}"][0] == getattr(default, beam)
