"""The small monocular depth network, its output calibration layer, and the depth metrics.

``DepthNet`` is a three-level convolutional encoder-decoder with skip connections that predicts
log-depth from a 32×32 RGB image. ``Calibrated`` wraps any depth model and applies the output scale
and shift that retrofitting searches, in the space the model predicts in (log-depth, depth or
disparity, the last for MiDaS/DPT-style relative models). The metrics are the standard ones of
monocular depth: δ1, δ2, δ3 (fraction of pixels with max(d/d*, d*/d) < 1.25, 1.25², 1.25³) and
AbsRel (mean |d − d*| / d*).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

#: The committed weights, produced by ``python -m afterlearner.experiments.depth.train``.
WEIGHTS = Path(__file__).with_name("depth_cnn.pt")

Output = Literal["log", "depth", "disparity"]
#: Depths are clamped to this range (metres) before the metrics: no division by zero or negative depth.
DEPTH_RANGE = (1e-3, 1e3)


def _block(inputs: int, outputs: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride, 1), nn.BatchNorm2d(outputs), nn.ReLU())


class DepthNet(nn.Module):
    """Encoder-decoder: image (N, 3, H, W) → log-depth (N, H, W); H and W divisible by 4."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.width = width
        self.enc1 = _block(3, width)
        self.enc2 = _block(width, 2 * width, stride=2)
        self.enc3 = nn.Sequential(_block(2 * width, 4 * width, stride=2), _block(4 * width, 4 * width))
        self.up3 = _block(4 * width + 2 * width, 2 * width)
        self.up2 = _block(2 * width + width, width)
        self.head = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        f1 = self.enc1(image)
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
        x = self.up3(torch.cat([nn.functional.interpolate(f3, scale_factor=2.0), f2], dim=1))
        x = self.up2(torch.cat([nn.functional.interpolate(x, scale_factor=2.0), f1], dim=1))
        return self.head(x).squeeze(1) + 2.0  # log-depth, centred near e² ≈ 7 m


class Calibrated(nn.Module):
    """Depth in metres from a model's raw output: ``scale · raw + shift`` read as ``output``.

    ``output="log"``: depth = exp(scale·raw + shift); ``"depth"``: depth = scale·raw + shift;
    ``"disparity"``: depth = 1 / (scale·raw + shift). ``scale`` and ``shift`` start at 1 and 0 (the
    model as trained) and are the natural ℵ-parameters of a depth model.
    """

    def __init__(
        self, model: nn.Module, output: Output = "log", scale: float = 1.0, shift: float = 0.0
    ) -> None:
        super().__init__()
        if output not in ("log", "depth", "disparity"):
            raise ValueError(f"output must be 'log', 'depth' or 'disparity', got {output!r}")
        self.model = model
        self.output = output
        self.scale = nn.Parameter(torch.tensor(float(scale)), requires_grad=False)
        self.shift = nn.Parameter(torch.tensor(float(shift)), requires_grad=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        raw = self.model(image)
        value = self.scale * raw + self.shift
        if self.output == "log":
            depth = torch.exp(value.clamp(max=np.log(DEPTH_RANGE[1])))
        elif self.output == "depth":
            depth = value
        else:
            depth = 1.0 / value.clamp(min=1.0 / DEPTH_RANGE[1])
        return depth.clamp(*DEPTH_RANGE)


def depth_metrics(predicted: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image δ1, δ2, δ3 and AbsRel of predicted vs true depth maps, both (N, H, W) in metres."""
    predicted = np.clip(np.asarray(predicted, dtype=np.float64), *DEPTH_RANGE)
    truth = np.asarray(truth, dtype=np.float64)
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted depth has shape {predicted.shape}, the truth {truth.shape}")
    if not np.all(truth > 0):
        raise ValueError("true depths must be positive")
    ratio = np.maximum(predicted / truth, truth / predicted)
    axes = tuple(range(1, ratio.ndim))
    return {
        "delta1": (ratio < 1.25).mean(axis=axes),
        "delta2": (ratio < 1.25**2).mean(axis=axes),
        "delta3": (ratio < 1.25**3).mean(axis=axes),
        "absrel": (np.abs(predicted - truth) / truth).mean(axis=axes),
    }


def predict(model: nn.Module, images: np.ndarray | torch.Tensor, batch: int = 256) -> np.ndarray:
    """Depth maps (N, H, W) of ``model`` (a :class:`Calibrated`) on images (N, 3, H, W)."""
    images = torch.as_tensor(images)
    with torch.no_grad():
        return torch.cat([model(images[i : i + batch]) for i in range(0, len(images), batch)]).numpy()


def load_depth_net(path: str | Path | None = None) -> DepthNet:
    """The trained :class:`DepthNet` (eval mode, gradients off) from ``path`` or the committed weights."""
    path = Path(path) if path is not None else WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m afterlearner.experiments.depth.train`")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = DepthNet(int(checkpoint["width"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval().requires_grad_(False)
