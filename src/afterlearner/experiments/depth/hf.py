"""The real-model path: a DPT / MiDaS-style depth model from Hugging Face transformers, on local files.

Users with a real DPT checkpoint (``Intel/dpt-hybrid-midas`` and the like, saved with
``save_pretrained``) retrofit it exactly like the small CNN::

    model = load_dpt("path/to/dpt")                 # a local directory, never a download
    task = dpt_task(model, aleph_data, test_data)   # output scale/shift + the head's last convolution

MiDaS-style models predict relative inverse depth (disparity), so the calibrated output reads the
raw prediction as disparity: depth = 1 / (scale · raw + shift).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from afterlearner.experiments.depth.model import Calibrated, Output
from afterlearner.experiments.depth.task import DepthData, depth_task
from afterlearner.task import Task

#: The head's last convolution of ``DPTForDepthEstimation`` (per-input-channel scales and its bias).
DPT_LAST_LAYERS = [
    ("dpt.head.head.4.weight", "scale", "column"),
    ("dpt.head.head.4.bias", "offset", "element"),
]


class DPTDepth(nn.Module):
    """``DPTForDepthEstimation`` as a plain module: images (N, 3, H, W) in [0, 1] → raw maps (N, H, W)."""

    def __init__(self, dpt: nn.Module, mean: float = 0.5, std: float = 0.5) -> None:
        super().__init__()
        self.dpt = dpt
        self.mean, self.std = mean, std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.dpt.config.image_size
        pixels = nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        raw = self.dpt(pixel_values=(pixels - self.mean) / self.std).predicted_depth
        return nn.functional.interpolate(raw[:, None], size=images.shape[-2:], mode="bilinear").squeeze(1)


def load_dpt(path: str | Path, output: Output = "disparity") -> Calibrated:
    """A local ``DPTForDepthEstimation`` directory as a :class:`Calibrated` depth model (eval, no grad)."""
    from transformers import DPTForDepthEstimation

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a saved transformers model (no config.json)")
    dpt = DPTForDepthEstimation.from_pretrained(str(path), local_files_only=True).eval()
    return Calibrated(DPTDepth(dpt).requires_grad_(False), output=output).eval()


def dpt_task(model: Calibrated, aleph_data: DepthData, test_data: DepthData) -> Task:
    """The δ1 task of a DPT model: output scale and shift, and the head's last convolution."""
    return depth_task(model, aleph_data, test_data, DPT_LAST_LAYERS, name="dpt-delta1")
