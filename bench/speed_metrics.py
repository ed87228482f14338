"""The built-in metrics (NumPy counts) against the scikit-learn calls they replace, on the digits demo.

Each metric is timed on the digits demo's ℵ-set (its targets; the outputs of a freshly initialised
demo network, so every class is predicted somewhere) against the scikit-learn call on the same
predictions, ``1 - balanced_accuracy_score`` and so on: the metric's time includes taking the argmax
of the outputs, scikit-learn's does not. Repeats are interleaved (metric, scikit-learn, metric, ...);
printed: the median time per call of each, the ratio of the medians, the best-of ratio, and whether
the values are identical. The population form is timed on λ = 16 candidates' outputs, per candidate.

    .venv/bin/python bench/speed_metrics.py [--repeats 15] [--calls 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from issue17 import load, print_table
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from afterlearner.experiments.digits.task import DigitNet, make_data
from afterlearner.losses import balanced_error, error_rate, f1_loss, threshold_error


def per_call(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--population", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # scikit-learn's warnings about classes never predicted
    data = make_data(0)
    torch.manual_seed(0)
    net = DigitNet().eval()
    with torch.no_grad():
        outputs = net(data.x_aleph)
        population = torch.stack([net(data.x_aleph + 0.05 * k) for k in range(args.population)])
    targets = np.asarray(data.y_aleph)
    predicted = outputs.argmax(-1).numpy()
    binary, decided = targets % 2 == 1, outputs[:, 0].numpy() > 0.0
    two = outputs[:, :2]
    f1 = {average: f1_loss(average) for average in ("macro", "micro", "weighted", "binary")}
    threshold = threshold_error(0.0)
    cases: dict[str, tuple[Callable, Callable, Callable]] = {
        "balanced_error": (
            lambda: balanced_error(outputs, targets),
            lambda: 1.0 - float(balanced_accuracy_score(targets, predicted)),
            lambda: balanced_error.population(population, targets),
        ),
        **{
            f"f1_loss({average!r})": (
                lambda m=f1[average]: m(outputs, targets),
                lambda a=average: 1.0 - float(f1_score(targets, predicted, average=a, zero_division=0)),
                lambda m=f1[average]: m.population(population, targets),
            )
            for average in ("macro", "micro", "weighted")
        },
        "f1_loss('binary')": (
            lambda m=f1["binary"]: m(two, binary),
            lambda: 1.0 - float(f1_score(binary, two.argmax(-1).numpy(), average="binary", zero_division=0)),
            lambda m=f1["binary"]: m.population(population[:, :, :2], binary),
        ),
        "error_rate": (
            lambda: error_rate(outputs, targets),
            lambda: 1.0 - float(accuracy_score(targets, predicted)),
            lambda: error_rate.population(population, targets),
        ),
        "threshold_error(0.0)": (
            lambda: threshold(outputs, binary),
            lambda: 1.0 - float(accuracy_score(binary, decided)),
            lambda: threshold.population(population, binary),
        ),
    }
    print(
        f"digits demo ℵ-set: n={len(targets)}, {outputs.shape[1]} classes; "
        f"median of {args.repeats} interleaved repeats of {args.calls} calls; "
        f"population λ={args.population}; {load()}"
    )
    print(
        f"{'metric':22s} {'NumPy µs':>9s} {'sklearn µs':>11s} {'ratio':>7s} {'best-of':>8s} "
        f"{'population µs/cand':>19s}  identical"
    )
    ratios = []
    for name, (ours, theirs, batch) in cases.items():
        mine, sk, pop = [], [], []
        for _ in range(args.repeats):
            mine.append(per_call(ours, args.calls))
            sk.append(per_call(theirs, args.calls))
            pop.append(per_call(batch, max(1, args.calls // args.population)) / args.population)
        ratio = statistics.median(sk) / statistics.median(mine)
        best = max(s / m for s, m in zip(sk, mine, strict=True))
        ratios.append((name, ratio))
        same = ours() == theirs()
        exact = "yes" if same else f"no (differ by {abs(ours() - theirs()):.1e})"
        print(
            f"{name:22s} {1e6 * statistics.median(mine):9.1f} {1e6 * statistics.median(sk):11.1f} "
            f"{ratio:6.1f}× {best:7.1f}× {1e6 * statistics.median(pop):19.1f}  {exact}"
        )
    low = min(ratios, key=lambda item: item[1])
    print_table(
        {
            "metrics": f"{low[1]:.0f}× to {max(r for _, r in ratios):.0f}× faster "
            f"(median; the least: {low[0]}); "
            "balanced error and F1 bit-identical, zero-one rates equal to 1 − accuracy within one rounding; "
            "every metric has a population form"
        }
    )


if __name__ == "__main__":
    main()
