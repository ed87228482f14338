"""Renderers (PNG, WAV, text), feedback task files, and the ``afterlearner feedback`` command's errors."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest
from paths import TASKS
from PIL import Image

from afterlearner.cli import main
from afterlearner.errors import TaskError
from afterlearner.online import image, sound, text
from afterlearner.online.task import FeedbackTask, load_feedback_task

TONE = TASKS / "feedback_tone_task.py"


def test_png_is_an_upscaled_exact_image() -> None:
    pixels = np.linspace(0, 1, 64).reshape(1, 8, 8)
    rendering = image(pixels, size=80)
    picture = Image.open(io.BytesIO(rendering.data))
    assert (rendering.kind, rendering.media_type) == ("image", "image/png")
    assert (picture.size, picture.mode) == ((80, 80), "L")
    assert np.array_equal(np.asarray(picture)[::10, ::10], np.round(pixels[0] * 255).astype(np.uint8))
    colour = Image.open(io.BytesIO(image(np.zeros((3, 4, 6)), size=None).data))
    assert colour.size == (6, 4) and colour.mode == "RGB"
    assert rendering.data_url().startswith("data:image/png;base64,iVBOR")


BAD_IMAGES = [np.zeros(5), np.zeros((2, 3, 3, 3)), np.zeros((4, 4, 2)), np.full((2, 2), np.nan)]


@pytest.mark.parametrize("bad", BAD_IMAGES)
def test_bad_images_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="image"):
        image(bad)


def test_wav_round_trip() -> None:
    samples = np.sin(np.linspace(0, 20, 400)) * 1.5  # clipped to [-1, 1]
    rendering = sound(samples, rate=8000)
    with wave.open(io.BytesIO(rendering.data)) as wav:
        header = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes())
        assert header == (1, 2, 8000, 400)
        pcm = np.frombuffer(wav.readframes(400), dtype="<i2")
    assert np.array_equal(pcm, np.round(np.clip(samples, -1, 1) * 32767).astype("<i2"))
    assert rendering.media_type == "audio/wav"
    with pytest.raises(ValueError, match="rate"):
        sound(samples, rate=0)
    with pytest.raises(ValueError, match="NaN"):
        sound(np.array([np.inf]), rate=8000)


def test_text() -> None:
    rendering = text("ℵ-loss: 0.25")
    assert rendering.as_text() == "ℵ-loss: 0.25" and rendering.media_type.startswith("text/plain")
    with pytest.raises(ValueError, match="needs a str"):
        text(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no text"):
        sound(np.zeros(3), 8000).as_text()


def test_task_file_with_a_plain_parametrization() -> None:
    task = load_feedback_task(f"{TONE}:factory")
    assert isinstance(task, FeedbackTask) and task.name == "tone" and task.k == 3
    session = task.session(seed=2)
    proposal = session.propose()
    assert [c.rendering.kind for c in proposal.candidates] == ["sound"] * 3
    assert proposal.candidates[0].vector.shape == (2,)
    assert np.array_equal(session.best.vector, [440.0, 0.5])


def test_task_file_errors() -> None:
    with pytest.raises(TaskError, match="does not exist"):
        load_feedback_task("missing.py:factory")
    with pytest.raises(TaskError, match="no function 'nope'"):
        load_feedback_task(f"{TONE}:nope")
    with pytest.raises(TaskError, match="returned int, not an afterlearner.online.FeedbackTask"):
        load_feedback_task(f"{TONE}:not_a_feedback_task")


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feedback", "serve", f"{TONE}:nope", "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "no function 'nope'" in capsys.readouterr().err
    assert (
        main(
            [
                "feedback",
                "serve",
                f"{TONE}:factory",
                "--store",
                str(tmp_path / "s.sqlite"),
                "--optimizer",
                "NGOpt",
            ]
        )
        == 2
    )
    assert "NGOpt uses loss values" in capsys.readouterr().err
    junk = tmp_path / "junk.sqlite"
    junk.write_text("hello")
    assert main(["feedback", "serve", f"{TONE}:factory", "--store", str(junk)]) == 2
    assert "not an afterlearner store" in capsys.readouterr().err
