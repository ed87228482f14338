"""Prefix caching and population batching against plain evaluation, on a convolutional classifier.

Same candidates, same losses (checked), timed side by side in one run:
  * uncached sequential: every candidate runs the whole network (what a hand-written loss does);
  * cached sequential:  the convolutional features are computed once, each candidate runs the head;
  * cached + batched:   the λ candidates of a population run the head in one vmap-ed pass;
  * batched, uncached:  vmap alone (the frozen features are computed once per population);
  * with a guard (macro-F1 on the same images): the guarded loss called whole, two full passes per
    candidate (what guards cost before), against what ``default_evaluator`` makes of it (one cached
    pass scored twice).
Torch uses one thread, so the machine's other load disturbs the ratios less; the fast timings are
repeated, interleaved, and the best of each kept (the uncached one is timed on one population and
scaled, it takes seconds per population).

    .venv/bin/python bench/speed_cache_batch.py [--population 16] [--populations 4]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from speed_conv import build

from afterlearner.evaluators import SequentialEvaluator, default_evaluator
from afterlearner.evaluators.batched import BatchedEvaluator
from afterlearner.evaluators.cache import CachedEvaluator, PrefixCache
from afterlearner.guards import GuardedLoss, as_guards
from afterlearner.losses import DatasetLoss, f1_loss


def timed(evaluator, populations, value=lambda outcome: outcome.loss):
    """Seconds to evaluate the populations, and ``value`` of every outcome in candidate order."""
    start = time.perf_counter()
    values = [
        value(o)
        for population in populations
        for _, o in sorted(evaluator.evaluate(population), key=lambda p: p[0])
    ]
    return time.perf_counter() - start, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=16, help="λ, candidates per population")
    parser.add_argument("--populations", type=int, default=8, help="populations timed per evaluator")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats of the fast timings")
    parser.add_argument(
        "--pooled", type=int, default=1, help="head input is 64·pooled² features (1: small head)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    setup = build(pooled=args.pooled)
    aleph, loss = setup.aleph, setup.loss
    rng = np.random.default_rng(0)
    populations = [
        [aleph.identity() + rng.normal(0, 0.3, len(aleph)) for _ in range(args.population)]
        for _ in range(args.populations)
    ]
    print(
        f"load average before: {os.getloadavg()[0]:.2f} (2 cores); ℵ-dataset: {loss.n} images 32×32, "
        f"{len(aleph)} ℵ-scalars in the head, λ={args.population}"
    )
    start = time.perf_counter()
    cache = PrefixCache(aleph, loss)
    build_time = time.perf_counter() - start
    print(f"{cache.describe()}, built in {build_time:.2f} s")
    uncached_time, reference = timed(SequentialEvaluator(aleph, loss), populations[:1])  # slow: 1 population
    uncached_time *= len(populations)
    vmap_only_time, vmap_only = timed(BatchedEvaluator(aleph, loss, cache=None, mode="vmap"), populations[:1])
    vmap_only_time *= len(populations)
    cached_evaluator = CachedEvaluator(aleph, loss, cache=cache)
    batched_evaluator = BatchedEvaluator(aleph, loss, cache=cache, mode="vmap")
    cached_times, batched_times = [], []
    for _ in range(args.repeats):  # interleaved, best of: the machine's other load only ever slows down
        cached_seconds, cached = timed(cached_evaluator, populations)
        batched_seconds, batched = timed(batched_evaluator, populations)
        cached_times.append(cached_seconds)
        batched_times.append(batched_seconds)
    cached_time, batched_time = min(cached_times), min(batched_times)
    auto = BatchedEvaluator(aleph, loss, cache=cache)
    timed(auto, populations[:1])
    count = args.population * args.populations
    assert cached[: args.population] == reference, "cached losses differ from full passes"
    assert np.allclose(batched[: args.population], reference), "batched losses differ from full passes"
    assert np.allclose(vmap_only, reference), "vmap losses differ from full passes"
    print(
        f"per evaluation: uncached {1e3 * uncached_time / count:.1f} ms, "
        f"cached {1e3 * cached_time / count:.2f} ms, cached+batched {1e3 * batched_time / count:.2f} ms, "
        f"batched uncached {1e3 * vmap_only_time / count:.1f} ms"
    )
    print(f"caching:  cached vs uncached (sequential)            {uncached_time / cached_time:7.1f}x")
    print(
        f"batching: cached+batched vs cached sequential (λ={args.population})  "
        f"{cached_time / batched_time:7.1f}x"
    )
    print(f"both:     cached+batched vs uncached sequential      {uncached_time / batched_time:7.1f}x")
    print(f"vmap alone: batched uncached vs uncached sequential  {uncached_time / vmap_only_time:7.1f}x")
    print(f"mode='auto' measured {auto.timings} and chose {auto.choice}")
    guarded_ratio(setup, populations, args.repeats)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def guarded_ratio(setup, populations, repeats: int) -> None:
    """A guard on the same images: the guarded loss called whole against the default evaluator's."""
    aleph, loss = setup.aleph, setup.loss
    guard = DatasetLoss(setup.x_aleph, setup.y_aleph, f1_loss("macro"), batch_size=len(loss.batches[0]))
    guarded = GuardedLoss(loss, as_guards({"macro-F1": (guard, 0.01)}))
    whole = SequentialEvaluator(aleph, guarded)
    fast = default_evaluator(aleph, guarded, 1)
    both = lambda outcome: (outcome.loss, dict(outcome.guards or {}))  # noqa: E731
    whole_time, reference = timed(whole, populations[:1], both)  # slow: 1 population, scaled
    whole_time *= len(populations)
    fast_times = []
    for _ in range(repeats):
        seconds, values = timed(fast, populations, both)
        fast_times.append(seconds)
    assert values[: len(reference)] == reference, "the guarded losses differ"
    count = sum(len(population) for population in populations)
    print(f"with a guard: {fast.describe()}")
    whole_ms, fast_ms = 1e3 * whole_time / count, 1e3 * min(fast_times) / count
    print(
        f"guarded: whole {whole_ms:.1f} ms, default evaluator {fast_ms:.2f} ms per evaluation (best of "
        f"{repeats}): {whole_time / min(fast_times):.1f}x, losses and guard losses identical"
    )


if __name__ == "__main__":
    main()
