"""The VAD experiment against the real pretrained Silero VAD (the weights shipped in the silero-vad
package) and real espeak-ng: data, decisions, and a retrofit of the TorchScript module through
``al.Aleph`` that restores bit for bit and round-trips through a patch file."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import afterlearner as al
from afterlearner.evaluators import default_evaluator, describe
from afterlearner.experiments.vad import audio, model, task
from afterlearner.experiments.vad.task import Decision
from afterlearner.guard import ModelChanged

needs_silero = pytest.mark.skipif(
    importlib.util.find_spec("silero_vad") is None,
    reason="silero-vad is not installed (pip install 'afterlearner[realmodels]'): its weights are the model",
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Generated clips go to a folder of this test, not the user's cache."""
    monkeypatch.setenv("AFTERLEARNER_CACHE", str(tmp_path / "cache"))


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in [*module.named_parameters(), *module.named_buffers()]}


def same(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    now = dict([*module.named_parameters(), *module.named_buffers()])
    return now.keys() == before.keys() and all(torch.equal(now[k], before[k]) for k in before)


def test_clips_are_reproducible_labelled_and_cached(tmp_path) -> None:
    sentences = task.sentence_split()[0]
    clips = audio.clip_set(3, seed=5, sentences=sentences)
    again = audio.generate(3, seed=5, sentences=sentences)
    assert clips.audio.shape == (3, audio.SAMPLES) and clips.labels.shape == (3, audio.FRAMES)
    assert np.array_equal(clips.audio, again.audio) and np.array_equal(clips.labels, again.labels)
    assert list(audio.cache_dir().glob("clips-*.npz")) and audio.cache_dir().is_relative_to(tmp_path)
    assert np.array_equal(audio.clip_set(3, seed=5, sentences=sentences).audio, clips.audio)  # from cache
    other = audio.generate(3, seed=6, sentences=sentences)
    assert not np.array_equal(other.audio, clips.audio)
    assert np.abs(clips.audio).max() <= 0.5
    # every clip holds speech and non-speech; the speech frames carry more energy than the others
    assert clips.labels.any(axis=1).all() and (~clips.labels).any(axis=1).all()
    energy = (clips.audio.reshape(3, audio.FRAMES, audio.FRAME) ** 2).mean(axis=2)
    assert energy[clips.labels].mean() > 1.5 * energy[~clips.labels].mean()


def test_conditions_share_speech_and_labels() -> None:
    sentences = task.sentence_split()[0]
    made = {
        name: audio.generate(2, seed=4, sentences=sentences, condition=c)
        for name, c in audio.CONDITIONS.items()
    }
    deployment = made["both (the deployment)"]
    assert np.array_equal(deployment.audio, audio.generate(2, seed=4, sentences=sentences).audio)
    assert all(np.array_equal(clips.labels, deployment.labels) for clips in made.values())
    labels = deployment.labels
    near = labels | np.roll(labels, 1, axis=1) | np.roll(labels, -1, axis=1)
    outside = ~near  # frames with no utterance sample: clean audio is exactly zero there
    clean = made["clean"].audio.reshape(2, audio.FRAMES, audio.FRAME)
    assert (
        outside.any() and (clean[outside] == 0).all() and (np.abs(clean[labels]).max(axis=1) > 0).mean() > 0.8
    )
    # the room spreads speech into the frames after it, the tones and noise fill every frame
    reverberant = made["reverberation only"].audio.reshape(2, audio.FRAMES, audio.FRAME)
    assert (reverberant[outside] != 0).any()
    background = made["tones and noise only"].audio.reshape(2, audio.FRAMES, audio.FRAME)
    assert (np.abs(background[outside]).max(axis=1) > 0).all()


def test_the_two_sets_speak_different_sentences() -> None:
    aleph_sentences, test_sentences = task.sentence_split()
    assert len(aleph_sentences) == 20 and len(test_sentences) == 30
    assert not set(aleph_sentences) & set(test_sentences)


def test_decision_hysteresis_and_clip_f1() -> None:
    probabilities = np.array([[0.2, 0.6, 0.4, 0.3, 0.55, 0.1]])
    assert Decision(0.5, 0.15).decide(probabilities).tolist() == [[False, True, True, False, True, False]]
    assert Decision(0.5, 0.0).decide(probabilities).tolist() == [[False, True, False, False, True, False]]
    assert Decision(0.25, 0.3).decide(probabilities).tolist() == [[False, True, True, True, True, True]]
    decisions = np.array([[True, True, False, False], [False, False, False, False], [False] * 4])
    labels = np.array([[True, False, True, False], [True, False, False, False], [False] * 4])
    # 1 hit of 2 decided and 2 labelled: 2·1/4; nothing decided: 0; nothing either way: 1
    assert task.clip_f1(decisions, labels).tolist() == [0.5, 0.0, 1.0]


def test_missing_package_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(model.MissingModel, match=r"afterlearner\[realmodels\]"):
        model.weights_path()


@needs_silero
def test_the_weights_come_from_the_package() -> None:
    path = model.weights_path()
    assert path.name == "silero_vad.jit" and "silero_vad" in path.parts and path.stat().st_size > 100_000
    assert int(model.version().split(".")[0]) >= 6
    vad = model.load_vad()
    assert isinstance(vad, torch.jit.ScriptModule) and not vad.training
    assert dict(vad.named_parameters())[task.INPUT_LAYER].shape == (128, 129, 3)
    silence = np.zeros((1, audio.SAMPLES), dtype=np.float32)
    probabilities = model.speech_probabilities(vad, silence)
    assert probabilities.shape == (1, audio.FRAMES) and probabilities.max() < 0.1
    assert np.array_equal(probabilities, model.speech_probabilities(vad, silence))  # state reset per call


@needs_silero
@pytest.mark.slow
def test_the_trained_vad_degrades_on_the_new_condition() -> None:
    built = task.make_task(reduced=True)
    losses = built.test_loss(built.aleph.model)
    assert losses.shape == (task.SIZES[True][1],) and ((0 <= losses) & (losses <= 1)).all()
    assert losses.mean() == pytest.approx(task.VADLoss(built.test_loss.clips, Decision())(built.aleph.model))
    metrics = built.test_loss.metrics(built.aleph.model)
    assert 0.3 < metrics["pooled frame F1"] < 0.95  # works, but far from perfect
    assert metrics["false-alarm rate"] > 0.05  # the tones are taken for speech


@needs_silero
@pytest.mark.slow
def test_retrofit_of_the_torchscript_module_restores_and_round_trips_a_patch(tmp_path) -> None:
    built = task.make_task(reduced=True, space="network")
    vad = built.aleph.model
    trained = snapshot(vad)
    result = al.retrofit(built.aleph, built.loss, budget=6, optimizer="DiagonalCMA", seed=1, progress=False)
    assert result.evaluations == 6 and result.best_loss <= result.initial_loss
    moved = next(e.vector for e in result.history if not np.array_equal(e.vector, built.aleph.identity()))
    built.aleph.write(moved)
    assert not same(vad, trained)
    patch = result.save(tmp_path / "vad.safetensors")
    built.aleph.write(result.best)
    retrofitted = snapshot(vad)
    best_loss = built.loss(vad)
    result.restore()
    assert same(vad, trained)  # every parameter and buffer, bit for bit
    assert built.loss.decision == task.Decision()

    fresh = model.load_vad()  # the patch on a freshly loaded model, without afterlearner
    fresh.load_state_dict(load_file(patch), strict=False)
    assert same(fresh, retrofitted)
    fresh = model.load_vad()  # and with apply_patch, through a new task's Aleph (thresholds included)
    rebuilt = task.make_task(reduced=True, space="network")
    hypers = al.apply_patch(rebuilt.aleph, patch)
    assert set(hypers) == {"threshold", "gap"}
    assert same(rebuilt.aleph.model, retrofitted) and rebuilt.loss(rebuilt.aleph.model) == best_loss
    bare = model.load_vad()
    al.apply_patch(bare, patch)
    assert same(bare, retrofitted)


@needs_silero
def test_the_guard_undoes_a_loss_that_changes_the_frozen_scriptmodule() -> None:
    vad = model.load_vad()
    trained = snapshot(vad)
    aleph = al.Aleph(vad).add(task.OUTPUT_BIAS)
    frozen = dict(vad.named_parameters())["_model.decoder.rnn.bias_ih"]

    def meddling(module: torch.nn.Module) -> float:
        frozen.add_(0.5)
        return 0.0

    with pytest.raises(ModelChanged, match="_model.decoder.rnn.bias_ih"):
        al.retrofit(aleph, meddling, budget=3, progress=False)
    assert same(vad, trained)


@needs_silero
def test_scriptmodule_dataset_loss_falls_back_to_whole_passes() -> None:
    """No prefix cache on a TorchScript module (its submodules cannot be hooked); evaluation still runs."""
    vad = model.load_vad()
    clips = audio.generate(2, seed=3, sentences=task.sentence_split()[0])
    inputs = torch.from_numpy(clips.audio)
    targets = torch.from_numpy(clips.labels).float()

    def forward(module: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return module.audio_forward(batch, model.RATE)[:, : audio.FRAMES]

    def frame_error(outputs: torch.Tensor, labels: torch.Tensor) -> float:
        return float(((outputs >= 0.5).float() != labels).float().mean())

    loss = al.DatasetLoss(inputs, targets, metric=frame_error, forward=forward)
    aleph = al.Aleph(vad).add(task.OUTPUT_BIAS)
    evaluator = default_evaluator(aleph, loss, workers=1)
    assert "TorchScript" in describe(evaluator)
    [(position, outcome)] = list(evaluator.evaluate([aleph.identity()]))
    assert position == 0 and outcome.loss == loss(vad)
    evaluator.close()
