"""The OCR experiment on the real PP-OCRv4 recognizer (its ONNX weights from the rapidocr wheel,
converted by onnx2torch): a faithful conversion, seeded degraded lines, greedy CTC decoding, and a
retrofit through ``al.Aleph`` on the converted module that restores it bit for bit and round-trips
its patch. Skipped, with the reason, only where the 'realmodels' packages are not installed."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import afterlearner as al
from afterlearner.evaluators import default_evaluator, describe
from afterlearner.experiments.ocr import lines, model
from afterlearner.experiments.ocr.metric import CharacterErrorRate, best_path, ctc_greedy

MISSING = model.available()
needs_model = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))


@pytest.fixture(scope="module")
def recognizer() -> model.Recognizer:
    return model.load_recognizer()


def test_ctc_greedy_merges_repeats_and_drops_blanks() -> None:
    charset = ["", "a", "b", " "]
    steps = torch.tensor([[0, 1, 1, 0, 1, 2, 2, 3, 0, 2], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    assert ctc_greedy(steps, charset) == ["aab b", ""]  # a a _ a b b ␣ _ b; all blanks
    scores = torch.nn.functional.one_hot(steps, 4).float()
    assert torch.equal(best_path(torch.nn.Identity(), scores), steps)
    outputs = steps[:1]
    cer = CharacterErrorRate(charset)
    assert cer(outputs, ["aab b"]) == 0.0
    assert cer(outputs, ["aab c"]) == pytest.approx(1 / 5)


def test_lines_are_seeded_distinct_and_padded() -> None:
    first, texts = lines.make_lines(6, 3, lines.Degradation())
    again, same = lines.make_lines(6, 3, lines.Degradation())
    assert torch.equal(first, again) and texts == same
    assert len(set(texts)) == 6 and all(len(t) <= 22 for t in texts)
    assert lines.make_lines(6, 4, lines.Degradation())[1] != texts
    assert first.shape == (6, 3, model.HEIGHT, lines.WIDTH) and first.abs().max() <= 1.0
    longer = lines.line_texts(40, 3)
    assert longer[:6] == texts and len(set(longer)) == 40  # a longer stream starts the same: disjoint slices
    clean = lines.render(texts[0], lines.CLEAN, np.random.default_rng(0))
    spoiled = lines.render(texts[0], lines.Degradation(), np.random.default_rng(0))
    assert clean.shape == spoiled.shape and clean.min() == 0 and clean.max() == 255
    assert np.ptp(spoiled.astype(float)) < 255 and spoiled.std() < clean.std()  # low contrast


@needs_model
def test_conversion_matches_onnxruntime(recognizer: model.Recognizer) -> None:
    import onnxruntime

    inputs, _ = lines.make_lines(3, 5, lines.Degradation())
    with torch.no_grad():
        converted = recognizer.module(inputs).numpy()
    session = onnxruntime.InferenceSession(str(model.model_path()), providers=["CPUExecutionProvider"])
    original = session.run(None, {"x": inputs.numpy()})[0]
    assert converted.shape == original.shape == (3, lines.WIDTH // 8, len(recognizer.charset))
    np.testing.assert_allclose(converted, original, atol=1e-4)
    assert recognizer.charset[0] == "" and recognizer.charset[-1] == " " and len(recognizer.charset) == 6625
    assert recognizer.version == "1.4.4"
    if "torchvision" not in sys.modules:
        assert not any(name.startswith("torchvision") for name in sys.modules)  # the stand-in is gone


@needs_model
def test_the_degradation_makes_the_recognizer_err(recognizer: model.Recognizer) -> None:
    cer = CharacterErrorRate(recognizer.charset)
    scores = {}
    for name, degradation in (("clean", lines.CLEAN), ("degraded", lines.Degradation())):
        inputs, texts = lines.make_lines(16, 0, degradation)
        with torch.no_grad():
            scores[name] = cer(best_path(recognizer.module, inputs), texts)
    assert scores["clean"] < 0.03 < 0.1 < scores["degraded"] < 0.6, scores


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in [*module.named_parameters(), *module.named_buffers()]}


def _equal(module: torch.nn.Module, snapshot: dict[str, torch.Tensor]) -> bool:
    now = dict([*module.named_parameters(), *module.named_buffers()])
    return now.keys() == snapshot.keys() and all(torch.equal(now[n], snapshot[n]) for n in snapshot)


@needs_model
@pytest.mark.slow
def test_retrofit_of_the_converted_module_restores_and_patches(tmp_path) -> None:
    from afterlearner.experiments.ocr.task import make_task

    task = make_task(reduced=True)
    converted = task.aleph.model
    assert isinstance(converted, torch.fx.GraphModule)
    trained = _snapshot(converted)

    evaluator = default_evaluator(task.aleph, task.loss, 1)
    assert "prefix cache: p2o/Conv/0, …" in describe(evaluator)  # the backbone is computed once
    rng = np.random.default_rng(0)
    candidate = task.aleph.identity() + rng.normal(0, 0.05, len(task.aleph))
    [(_, cached)] = list(evaluator.evaluate([candidate]))
    task.aleph.restore()  # the evaluator leaves its candidate in the model
    assert _equal(converted, trained)
    with task.aleph.applied(candidate):
        assert cached.loss == task.loss(converted)  # the cache gives the full pass's loss
        retrofitted = _snapshot(converted)
    assert _equal(converted, trained)

    result = al.retrofit(task.aleph, task.loss, budget=6, seed=0, progress=False, test_loss=task.test_loss)
    assert result.evaluations == 6 and result.best_loss <= result.initial_loss
    assert any(not np.array_equal(e.vector, task.aleph.identity()) for e in result.history)
    result.apply()
    result.restore()
    assert _equal(converted, trained)  # every parameter and buffer, bit for bit

    path = al.save_patch(task.aleph, candidate, tmp_path / "ocr.safetensors")
    fresh = model.load_recognizer().module
    al.apply_patch(fresh, path)
    assert _equal(fresh, retrofitted)
    assert task.loss(fresh) == cached.loss
    al.apply_patch(task.aleph, path)
    assert _equal(converted, retrofitted)
    task.aleph.restore()
    assert _equal(converted, trained)
