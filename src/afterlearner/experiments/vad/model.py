"""The real pretrained network: Silero VAD v6 (TorchScript), loaded from the ``silero-vad`` package.

The ``silero-vad`` wheel (MIT licence, by Silero) ships the trained model as
``silero_vad/data/silero_vad.jit``. It is loaded from there with :func:`torch.jit.load`, never
from a model hub. The package is located with :func:`importlib.util.find_spec` rather than imported:
importing ``silero_vad`` calls ``torch.set_num_threads(1)`` for the whole process.

The ScriptModule holds two networks, ``_model`` (16 kHz) and ``_model_8k``; at 16 kHz it reads
512-sample windows (32 ms) with 64 samples of context, computes an STFT magnitude (129 bins), runs
four convolutional blocks, an LSTM cell (state carried from window to window) and a 1×1 convolution
with a sigmoid: one speech probability per window. ``audio_forward`` runs a whole batch of clips
window by window, resetting the state first, so a call depends only on the audio and the weights.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch

#: The package (its distribution name) that ships the weights, and the file inside it.
DISTRIBUTION = "silero-vad"
WEIGHTS = Path("data") / "silero_vad.jit"
#: The sample rate the ℵ-condition uses (the 16 kHz branch of the model).
RATE = 16_000


class MissingModel(RuntimeError):
    """The ``silero-vad`` package is not installed."""


def weights_path() -> Path:
    """Path of ``silero_vad.jit`` inside the installed package (the package is not imported)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise MissingModel(
            "the silero-vad package is not installed: pip install 'afterlearner[realmodels]' "
            "(or pip install --no-deps silero-vad, which needs only torch and packaging)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS
    if not path.is_file():
        raise MissingModel(f"{path} is missing from the installed silero-vad package")
    return path


def version() -> str:
    """The installed ``silero-vad`` version (the weights' provenance)."""
    return importlib.metadata.version(DISTRIBUTION)


def load_vad() -> torch.jit.ScriptModule:
    """The pretrained Silero VAD as the package ships it, in eval mode on the CPU."""
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; the package ships TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(weights_path()), map_location="cpu").eval()


def speech_probabilities(model: torch.jit.ScriptModule, audio: np.ndarray | torch.Tensor) -> np.ndarray:
    """(clips, windows) speech probabilities of a (clips, samples) batch of 16 kHz float audio."""
    with torch.no_grad():
        batch = torch.as_tensor(audio, dtype=torch.float32)
        return model.audio_forward(batch, RATE).numpy()
