"""Train the small depth network on rendered scenes: ``python -m afterlearner.experiments.depth.train``.

An ordinary differentiable training: L1 loss on log-depth, Adam, on scenes rendered by the training
camera (:data:`TRAIN_CAMERA`). One CPU thread, about two minutes; writes ``depth_cnn.pt``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from afterlearner.experiments.depth.model import WEIGHTS, DepthNet
from afterlearner.experiments.depth.render import Camera, render_dataset
from afterlearner.experiments.training import fit, save

#: The camera of the training scenes.
TRAIN_CAMERA = Camera(focal=28.0, pitch=0.3)
TRAIN_SEED = 1000


def train(scenes: int = 2000, epochs: int = 8, seed: int = 0, width: int = 16) -> DepthNet:
    torch.manual_seed(seed)
    images, depths = render_dataset(scenes, TRAIN_SEED, TRAIN_CAMERA)
    x, target = torch.from_numpy(images), torch.from_numpy(np.log(depths))
    return fit(  # type: ignore[return-value]
        DepthNet(width),
        x,
        target,
        lambda predicted, true: (predicted - true).abs().mean(),
        epochs=epochs,
        lr=2e-3,
        batch_size=32,
        report=lambda epoch, mean: f"epoch {epoch}/{epochs}: L1 log-depth {mean:.4f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--scenes", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    model = train(args.scenes, args.epochs)
    save(model, {"width": model.width}, args.out, started)


if __name__ == "__main__":
    main()
