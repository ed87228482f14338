"""Renderers: turn what a candidate produces into something a person judges (PNG image, WAV sound, text).

A task's ``render`` callable maps a candidate vector to a :class:`Rendering`; the helpers here do
the encoding (``image``, ``sound``, ``text``) so that a task only has to produce an array or a string.
"""

from __future__ import annotations

import base64
import io
import wave
from dataclasses import dataclass
from typing import Literal

import numpy as np

Kind = Literal["image", "sound", "text"]
MEDIA_TYPES: dict[Kind, str] = {
    "image": "image/png",
    "sound": "audio/wav",
    "text": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Rendering:
    """An encoded output: its kind, its media type and its bytes."""

    kind: Kind
    data: bytes

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.kind]

    def data_url(self) -> str:
        """A ``data:`` URL, for embedding in a page."""
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode('ascii')}"

    def as_text(self) -> str:
        if self.kind != "text":
            raise ValueError(f"a {self.kind} rendering has no text")
        return self.data.decode("utf-8")


def image(pixels: np.ndarray, size: int | None = 160) -> Rendering:
    """A PNG of ``pixels`` in [0, 1]: (H, W) grey, (1, H, W) grey, (H, W, 3) or (3, H, W) colour.

    Values outside [0, 1] are clipped. ``size`` is the width of the PNG in pixels (nearest-neighbour
    upscaling keeps small images crisp); ``None`` keeps the original size.
    """
    from PIL import Image

    array = np.asarray(pixels, dtype=float)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise ValueError(
            f"an image must be (H, W), (1, H, W), (H, W, 3) or (3, H, W), got shape {np.shape(pixels)}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("an image has NaN or infinite pixels")
    picture = Image.fromarray(np.round(np.clip(array, 0.0, 1.0) * 255).astype(np.uint8))
    if size is not None and size != picture.width:
        height = max(1, round(picture.height * size / picture.width))
        picture = picture.resize((size, height), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return Rendering("image", buffer.getvalue())


def sound(samples: np.ndarray, rate: int) -> Rendering:
    """A 16-bit mono WAV of ``samples`` in [-1, 1] (clipped) at ``rate`` Hz."""
    array = np.asarray(samples, dtype=float).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValueError("a sound has NaN or infinite samples")
    if not isinstance(rate, int) or rate <= 0:
        raise ValueError(f"rate must be a positive integer, got {rate!r}")
    pcm = np.round(np.clip(array, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return Rendering("sound", buffer.getvalue())


def text(value: str) -> Rendering:
    """A text rendering (UTF-8)."""
    if not isinstance(value, str):
        raise ValueError(f"a text rendering needs a str, got {type(value).__name__}")
    return Rendering("text", value.encode("utf-8"))
