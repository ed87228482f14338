"""Prefix-cache replay on a transformer of all-MiniLM's shape: copies of every cached output vs none.

A 6-layer post-norm encoder (d_model 384, 12 heads, feed-forward 1536, as BERT writes it; random
weights: the cost of a forward pass does not depend on them) classifies token sequences by their
mean embedding. The ℵ-parameters are the last layer's second layer norm (weight scaled, bias
shifted), so the prefix cache records the embedding, the first five layers and the last layer's
attention, first norm and feed-forward modules; each candidate runs the last residual, the norm and
the head, which read three of those outputs (the feed-forward's input and output, the residual).
Replay used to hand out a copy of every recorded output; now it hands out the recorded tensors
themselves (and copies a boundary only once the live part was seen changing its output in place).
Both are timed in one run, interleaved (the copying replay is forced by marking every boundary as
copied), on the same candidates: median time per evaluation, best-of beside, and whether the losses
are identical to uncached passes.

    .venv/bin/python bench/speed_cache_replay.py [--samples 48] [--length 32] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from issue17 import load, median_and_best, print_table

from afterlearner import Aleph
from afterlearner.evaluators.cache import CachedEvaluator, human_bytes
from afterlearner.losses import DatasetLoss, error_rate


class Layer(torch.nn.Module):
    """A post-norm encoder layer as BERT (and all-MiniLM) write it, residuals in the forward code."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.attention = torch.nn.MultiheadAttention(width, 12, batch_first=True)
        self.norm1 = torch.nn.LayerNorm(width)
        self.intermediate = torch.nn.Linear(width, 4 * width)
        self.output = torch.nn.Linear(4 * width, width)
        self.norm2 = torch.nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attention(x, x, x, need_weights=False)[0])
        return self.norm2(x + self.output(torch.nn.functional.gelu(self.intermediate(x))))


class Encoder(torch.nn.Module):
    def __init__(self, vocabulary: int = 1000, width: int = 384, layers: int = 6, classes: int = 4) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocabulary, width)
        self.layers = torch.nn.ModuleList(Layer(width) for _ in range(layers))
        self.head = torch.nn.Linear(width, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.embed(tokens)
        for layer in self.layers:
            hidden = layer(hidden)
        return self.head(hidden.mean(dim=1))


def timed(evaluator: CachedEvaluator, vectors: list[np.ndarray]) -> tuple[float, list[float]]:
    start = time.perf_counter()
    values = [evaluator.loss_of(vector) for vector in vectors]
    return (time.perf_counter() - start) / len(vectors), values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Encoder().eval()
    tokens = torch.randint(0, 1000, (args.samples, args.length))
    loss = DatasetLoss(tokens, torch.randint(0, 4, (args.samples,)), error_rate)
    aleph = Aleph(model).add("layers.5.norm2.bias").add("layers.5.norm2.weight", mode="scale")
    rng = np.random.default_rng(0)
    vectors = [aleph.identity() + rng.normal(0, 0.05, len(aleph)) for _ in range(args.candidates)]
    plain = CachedEvaluator(aleph, loss)
    copying = CachedEvaluator(aleph, loss, cache=None)
    copying.cache.copying = set(copying.cache.boundaries)  # the replay as it was: a copy of everything
    print(
        f"{args.samples} sequences × {args.length} tokens; cached: {plain.cache.describe()}; "
        f"{args.candidates} candidates per repeat, {args.repeats} interleaved repeats; {load()}"
    )
    times: dict[str, list[float]] = {"copies": [], "no copies": []}
    values = {}
    for _ in range(args.repeats):
        for label, evaluator in (("copies", copying), ("no copies", plain)):
            spent, values[label] = timed(evaluator, vectors)
            times[label].append(spent)
    with torch.no_grad():
        reference = []
        for vector in vectors:
            aleph.write(vector)
            reference.append(loss(model))
    aleph.restore()
    for label, runs in times.items():
        print(
            f"{label:10s} median {1e3 * statistics.median(runs):7.2f} ms/eval, best-of {1e3 * min(runs):7.2f}"
        )
    ratios = [a / b for a, b in zip(times["copies"], times["no copies"], strict=True)]
    median, best = median_and_best(ratios)
    copied = copying.cache.nbytes
    print(
        f"replay without copies vs with copies of {human_bytes(copied)}: median {median:.2f}× faster "
        f"(best-of {best:.2f}×); losses identical to uncached passes: "
        f"{values['copies'] == values['no copies'] == reference}; boundaries copied now: "
        f"{sorted(plain.cache.copying) or 'none'}"
    )

    print_table(
        {
            "cache": f"no copies: median {median:.2f}× faster (best-of {best:.2f}×) than copying "
            f"{human_bytes(copied)}, {1e3 * statistics.median(times['no copies']):.1f} ms per evaluation"
        }
    )


if __name__ == "__main__":
    main()
