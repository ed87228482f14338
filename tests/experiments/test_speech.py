"""Speech experiment, against the real espeak-ng, pocketsphinx and the committed enhancement network."""

from __future__ import annotations

import subprocess
import wave

import numpy as np
import pytest
import torch

from afterlearner import experiments
from afterlearner.experiments.speech import enhance, language_model, noise, pipeline, sentences, synth
from afterlearner.experiments.speech.recognize import Decoding, Recognizer
from afterlearner.experiments.speech.task import DEPLOY_NOISE, DEPLOY_SNR_DB, LM_SENTENCES, VOICE, make_task
from afterlearner.reproduce import run_experiment

#: A training command the clean Klatt voice gets right (checked deterministic).
HEARD = "turn off the radio in the kitchen"


def test_word_error_rate() -> None:
    assert sentences.normalise("It's easy, to TELL!") == "it's easy to tell"
    assert pipeline.word_error_rate(["a b c d"], ["a b c d"]) == 0.0
    assert pipeline.word_error_rate(["a b c d"], ["a x c d"]) == pytest.approx(0.25)
    assert pipeline.word_error_rate(["a b"], ["a b c d"]) == pytest.approx(1.0)  # insertions count
    with pytest.raises(ValueError, match="as many"):
        pipeline.word_error_rate(["a"], ["a", "b"])


def test_splits_are_disjoint_deterministic_and_in_the_vocabulary() -> None:
    train, aleph, test = (
        sentences.split("train", 2000),
        sentences.split("aleph", 200),
        sentences.split("test", 400),
    )
    assert len(set(train)) == 2000 and len(set(aleph)) == 200 and len(set(test)) == 400
    assert not set(train) & set(aleph) and not set(train) & set(test) and not set(aleph) & set(test)
    assert sentences.split("test", 5) == test[:5]  # a smaller request is a prefix
    words = {word for sentence in train + aleph + test for word in sentence.split()}
    assert words == set(sentences.vocabulary())
    assert all(sentences.normalise(s) == s for s in test)
    with pytest.raises(ValueError, match="holds 1 to 200"):
        sentences.split("aleph", 201)
    with pytest.raises(ValueError, match="split must be"):
        sentences.split("dev", 3)


def _arpa_probabilities(text: str) -> dict[tuple[str, ...], tuple[float, float | None]]:
    table: dict[tuple[str, ...], tuple[float, float | None]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and not line.startswith("\\"):
            table[tuple(parts[1].split())] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else None)
    return table


def test_language_model_is_a_normalised_backoff_trigram() -> None:
    corpus = ["a b c", "a b d", "b c", "a c d"]
    table = _arpa_probabilities(language_model.arpa(corpus))
    vocabulary = ["a", "b", "c", "d", "</s>"]

    def prob(*gram: str) -> float:
        if gram in table:
            return 10 ** table[gram][0]
        history = gram[:-1]
        backoff = 10 ** (table.get(history, (0.0, 0.0))[1] or 0.0) if history in table else 1.0
        return backoff * prob(*gram[1:])

    for history in (("<s>",), ("a",), ("b",), ("<s>", "a"), ("a", "b"), ("b", "c")):
        assert sum(prob(*history, word) for word in vocabulary) == pytest.approx(1.0)
    assert prob("a", "b") == pytest.approx((2 - language_model.DISCOUNT) / 3)
    with pytest.raises(ValueError, match="at least one"):
        language_model.arpa([])


def test_dictionary_has_every_pronunciation_and_refuses_unknown_words(tmp_path) -> None:
    cmudict = tmp_path / "mini.dict"
    cmudict.write_text("read R IY D\nread(2) R EH D\nred R EH D\nreader R IY D ER\n")
    assert language_model.dictionary(["read", "red"], cmudict).splitlines() == [
        "read R IY D",
        "read(2) R EH D",
        "red R EH D",
    ]
    with pytest.raises(ValueError, match="xyzzy"):
        language_model.dictionary(["red", "xyzzy"], cmudict)


def test_synthesis_is_espeak_resampled_to_16k(tmp_path) -> None:
    path = tmp_path / "direct.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "-v", "en-us+klatt", HEARD], check=True)
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == synth.ESPEAK_RATE
        direct = wav.getnframes()
    audio = synth.synthesize(HEARD, VOICE)
    assert audio.dtype == np.int16 and len(audio) == pytest.approx(direct * 16_000 / 22_050, abs=2)
    assert np.sqrt(np.mean(audio.astype(float) ** 2)) > 500  # speech, not silence
    with pytest.raises(ValueError, match="variant"):
        synth.synthesize(HEARD, synth.Voice(variant=len(synth.VARIANTS)))


def test_noise_has_its_snr_spectrum_and_seed() -> None:
    speech = synth.synthesize(HEARD, VOICE)
    noisy, added = noise.add_noise(speech, DEPLOY_NOISE, DEPLOY_SNR_DB, seed=3)
    snr = 10 * np.log10(np.mean(speech.astype(float) ** 2) / np.mean(added**2))
    assert snr == pytest.approx(DEPLOY_SNR_DB, abs=1e-6)
    assert np.array_equal(noisy, noise.add_noise(speech, DEPLOY_NOISE, DEPLOY_SNR_DB, seed=3)[0])
    assert not np.array_equal(noisy, noise.add_noise(speech, DEPLOY_NOISE, DEPLOY_SNR_DB, seed=4)[0])
    rng = np.random.default_rng(0)
    hum = np.abs(np.fft.rfft(noise.Motor(f0_range=(100.0, 100.0), floor=0.0).sample(16_000, rng)))
    assert np.argmax(hum) == 100  # 1 Hz bins: the fundamental
    assert hum[200] > 100 * np.median(hum)  # a harmonic stands out
    brown = noise.Coloured(2.0).sample(16_000, rng)
    spectrum = np.abs(np.fft.rfft(brown)) ** 2
    assert spectrum[100:200].mean() > 50 * spectrum[4000:5000].mean()  # 1/f²: low frequencies dominate


def test_enhancer_is_trained_and_masks_in_bands() -> None:
    filters = enhance.mel_filters()
    assert filters.shape == (enhance.BANDS, enhance.N_FFT // 2 + 1)
    assert torch.allclose(filters.sum(dim=0), torch.ones(filters.shape[1]))
    model = enhance.load_enhancer()
    speech = synth.synthesize(HEARD, VOICE)
    spectrum = enhance.stft(speech)
    assert np.abs(enhance.istft(spectrum, len(speech)).astype(int) - speech).max() <= 1  # STFT round trip
    noisy, added = noise.add_noise(speech, noise.Coloured(1.0), 5.0, seed=0)
    enhanced = enhance.enhance(model, enhance.stft(noisy), len(noisy))
    # trained on coloured noise: the enhanced audio is closer to the clean speech than the noisy one
    error_before = np.mean((noisy.astype(float) - speech) ** 2)
    error_after = np.mean((enhanced.astype(float) - speech) ** 2)
    assert error_after < 0.5 * error_before


@pytest.mark.slow
def test_recognizer_hears_clean_commands_and_is_order_independent() -> None:
    recognizer = Recognizer(sentences.split("train", LM_SENTENCES))
    second = sentences.split("test", 1)[0]
    forward = [recognizer.transcribe(synth.synthesize(s, VOICE), Decoding()) for s in (HEARD, second)]
    backward = [recognizer.transcribe(synth.synthesize(s, VOICE), Decoding()) for s in (second, HEARD)][::-1]
    assert forward == backward  # CMN reset: no carry-over between utterances
    assert forward[0] == HEARD
    with pytest.raises(ValueError, match="int16"):
        recognizer.transcribe(np.zeros(100, dtype=np.float32), Decoding())


@pytest.mark.slow
def test_network_helps_the_recognizer_in_motor_noise() -> None:
    """The pipeline as trained works: on 12 held-out commands in motor hum, the enhancement network
    lowers the WER of the noisy audio, and the WER with it is at most 0.5."""
    task = make_task(reduced=True, space="both")
    test = sentences.split("test", 12)
    utterances = pipeline.noisy_utterances(test, VOICE, DEPLOY_NOISE, DEPLOY_SNR_DB, seed=20_000)
    recognizer, decoding = task.loss.recognizer, task.loss.decoding
    with_network = pipeline.EnhancedWER(test, utterances, decoding, recognizer)
    without = pipeline.EnhancedWER(test, utterances, decoding, recognizer, network=False)
    model = task.aleph.model
    assert with_network(model) < without(model) and with_network(model) <= 0.5
    assert with_network.score(with_network.outputs(model)) == with_network(model)


def test_registry_and_spaces() -> None:
    for name, size in (("speech", 34), ("speech-network", 32), ("speech-decoding", 2)):
        experiment = experiments.get(name)
        assert experiment.optimizer == "OnePlusOne" and 1 <= experiment.budget <= 100
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
    assert row["workers"] == 2 and row["processes"] == 2 and row["n"] == 3
    losses = result.losses()
    assert len(losses) == 4 and all(loss is not None and loss >= 0 for loss in losses)
    assert result.best_loss == min(losses) <= result.initial_loss == losses[0]
    assert result.test_initial is not None and result.test_best is not None
    task = make_task(reduced=True)
    assert not set(task.loss.sentences) & set(task.test_loss.sentences)
    trained_bias = task.aleph.model.out.bias.detach().clone()
    assert len({tuple(e.vector) for e in result.history}) > 1  # not only the trained settings
    for evaluation in result.history:
        task.aleph.write(evaluation.vector)
        assert task.loss(task.aleph.model) == pytest.approx(evaluation.loss)
    task.aleph.restore()
    assert torch.equal(task.aleph.model.out.bias, trained_bias)
    assert (task.loss.decoding.lw, task.loss.decoding.wip) == (6.5, 0.65)


@pytest.mark.slow
def test_conditions_table_compares_rooms_with_and_without_the_network() -> None:
    from afterlearner.experiments.speech.conditions import ROOMS, conditions

    table = conditions(sentences=6)
    assert list(table) == ["clean"] + [f"{r} {w} network" for r in ROOMS for w in ("without", "with")]
    for room in ROOMS:  # at 0 dB the raw noisy audio is nearly unintelligible; the network helps
        assert table[f"{room} with network"] < table[f"{room} without network"]
        assert table["clean"] < table[f"{room} without network"]
