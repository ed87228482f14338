"""Train a judge's classifier: ``python -m afterlearner.experiments.image_generator.train_classifier
[--judge mlp|cnn]``.

Cross-entropy on scikit-learn's digits (all but a 297-digit validation split, whose accuracy is
printed), one CPU thread, a few seconds. ``--judge mlp`` (default) writes ``digit_classifier.pt``,
the judge the retrofit is tuned against (seed 0); ``--judge cnn`` writes ``digit_classifier_cnn.pt``,
the second judge (a CNN, seed 1: its own initialisation, noise and validation split).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from afterlearner.experiments.image_generator.quality import JUDGES, real_digits


def train(seed: int = 0, epochs: int = 150, kind: str = "mlp") -> tuple[torch.nn.Module, float]:
    """Train the judge ``kind`` (see ``quality.JUDGES``) with ``seed``: the model, its validation accuracy."""
    torch.manual_seed(seed)
    images, labels = real_digits()
    labels = torch.from_numpy(labels).long()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    train_idx, valid_idx = order[297:], order[:297]
    model = JUDGES[kind][0]()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(epochs):
        model.train()
        for start in range(0, len(train_idx), 100):
            batch = train_idx[start : start + 100]
            noisy = (images[batch] + 0.05 * torch.randn_like(images[batch])).clamp(0, 1)
            loss = torch.nn.functional.cross_entropy(model(noisy), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(images[valid_idx]).argmax(1) == labels[valid_idx]).float().mean())
    return model, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--judge", choices=sorted(JUDGES), default="mlp")
    parser.add_argument("--out", type=Path, default=None, help="default: the judge's committed weights")
    args = parser.parse_args()
    _, default_out, seed = JUDGES[args.judge]
    args.out = args.out or default_out
    torch.set_num_threads(1)
    model, accuracy = train(seed=seed, kind=args.judge)
    torch.save(model.state_dict(), args.out)
    print(f"validation accuracy {accuracy:.3f}; wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
