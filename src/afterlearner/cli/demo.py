"""``afterlearner demo``: retrofit a digit classifier for balanced error, with held-out check and plot."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="retrofit a digit classifier trained on imbalanced data for balanced error"
    )
    parser.add_argument("--budget", type=int, default=200, help="evaluations (default 200)")
    parser.add_argument(
        "--optimizer", default=None, help="a Nevergrad optimizer name (default: the library's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of data split, training and search")
    parser.add_argument("--store", default=None, help="SQLite journal; an existing one is resumed")
    parser.add_argument("--plot", default="afterlearner-demo.png", help="convergence plot (PNG)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import time

    from afterlearner.experiments.digits.task import make_task
    from afterlearner.optimizers import DEFAULT_OPTIMIZER
    from afterlearner.report import plot_convergence, print_result, returned_position
    from afterlearner.retrofit import retrofit

    started = time.perf_counter()
    task = make_task(args.seed)
    print(
        f"trained the digit classifier on an imbalanced split in {time.perf_counter() - started:.1f} s; "
        f"retrofitting {len(task.aleph)} ℵ-scalars ({task.aleph}) on n={task.n} balanced digits"
    )
    result = retrofit(
        task.aleph,
        task.loss,
        budget=args.budget,
        optimizer=args.optimizer or DEFAULT_OPTIMIZER,
        seed=args.seed,
        store=args.store,
        test_loss=task.test_loss,
        n=task.n,
        progress=not args.quiet,
        name=task.name,
    )
    print_result(result, title="afterlearner demo: balanced error rate of a digit classifier")
    path = plot_convergence(
        {result.optimizer: result.losses()},
        args.plot,
        title=f"{task.name}: balanced error on the ℵ-set",
        held_out={result.optimizer: (result.test_initial, result.test_best)},
        returned={result.optimizer: position} if (position := returned_position(result)) else None,
    )
    print(f"convergence plot written to {path}")
    return 0
