"""The text lines the recognizer reads: generated from a seed, rendered with a Debian font, degraded.

Each line is two to four words of the Harvard sentences (the speech experiment's material) with,
sometimes, a number, a capital or a punctuation mark: Latin text the recognizer was trained to read.
The *new condition* is how it looks: DejaVu Serif Condensed Italic (a font PaddleOCR's training
renders are unlikely to use), grey ink on a grey page (low contrast), a Gaussian blur and pixel noise.
Every line's text, blur, contrast and noise come from one seed, so a seed gives the same images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from afterlearner.errors import ConfigError
from afterlearner.experiments.harvard import HARVARD
from afterlearner.experiments.ocr.model import HEIGHT

#: The font of the new condition (Debian package fonts-dejavu-extra).
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerifCondensed-Italic.ttf")
#: The width every line is padded to (PaddleOCR's recognizer input is 3 × 48 × 320).
WIDTH = 320
#: Font size in pixels before the line is scaled to the model's height.
FONT_SIZE = 30
WORDS = tuple(sorted({w for s in HARVARD for w in re.findall(r"[a-z]+", s.lower()) if len(w) > 1}))


@dataclass(frozen=True)
class Degradation:
    """How a clean render is spoiled: blur radius (pixels), ink/page contrast, noise (grey levels)."""

    blur: tuple[float, float] = (1.0, 1.6)
    contrast: tuple[float, float] = (0.2, 0.35)
    noise: float = 15.0


CLEAN = Degradation(blur=(0.0, 0.0), contrast=(1.0, 1.0), noise=0.0)


def line_texts(count: int, seed: int) -> list[str]:
    """``count`` distinct generated lines of text (at most 22 characters each)."""
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < count:
        words = [str(w) for w in rng.choice(WORDS, size=int(rng.integers(2, 5)))]
        if rng.random() < 0.5:
            words[0] = words[0].capitalize()
        if rng.random() < 0.3:
            words.insert(int(rng.integers(0, len(words) + 1)), str(int(rng.integers(1, 10_000))))
        text = " ".join(words)
        if rng.random() < 0.3:
            text += str(rng.choice([".", ",", ":", "?", "!"]))
        if len(text) <= 22 and text not in seen:
            texts.append(text)
            seen.add(text)
    return texts


def _font() -> ImageFont.FreeTypeFont:
    if not FONT.is_file():
        raise ConfigError(f"{FONT} is missing: apt-get install fonts-dejavu-extra (ci/apt-packages.txt)")
    return ImageFont.truetype(str(FONT), FONT_SIZE)


def render(text: str, degradation: Degradation, rng: np.random.Generator) -> np.ndarray:
    """One line as a grey image of height :data:`HEIGHT` (uint8, width at most :data:`WIDTH`)."""
    font = _font()
    left, top, right, bottom = font.getbbox(text)
    pad = 6
    image = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 255)
    ImageDraw.Draw(image).text((pad - left, pad - top), text, font=font, fill=0)
    low, high = degradation.blur
    radius = float(rng.uniform(low, high))
    if radius > 0:
        image = image.filter(ImageFilter.GaussianBlur(radius))
    width = min(WIDTH, int(np.ceil(HEIGHT * image.width / image.height)))
    pixels = np.asarray(image.resize((width, HEIGHT), Image.Resampling.BILINEAR), dtype=np.float64)
    contrast = float(rng.uniform(*degradation.contrast))
    page = float(rng.uniform(110.0, 200.0)) if contrast < 1 else 255.0
    pixels = page - (255.0 - pixels) * contrast * page / 255.0
    pixels = pixels + rng.normal(0.0, degradation.noise, pixels.shape) if degradation.noise else pixels
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def to_input(image: np.ndarray) -> torch.Tensor:
    """PaddleOCR's preprocessing: grey to 3 channels, (x/255 − 0.5)/0.5, zero-padded to :data:`WIDTH`."""
    tensor = torch.zeros(3, HEIGHT, WIDTH)
    values = torch.from_numpy(image.astype(np.float32) / 255.0 - 0.5) / 0.5
    tensor[:, :, : image.shape[1]] = values
    return tensor


def make_lines(count: int, seed: int, degradation: Degradation) -> tuple[torch.Tensor, list[str]]:
    """``count`` rendered lines: the model inputs ``(count, 3, 48, 320)`` and their texts."""
    texts = line_texts(count, seed)
    rng = np.random.default_rng([seed, 1])
    images = [to_input(render(text, degradation, rng)) for text in texts]
    return torch.stack(images), texts
