"""``afterlearner optimizers``: every optimizer name, and whether the overfitting bound applies to it."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("optimizers", help="list optimizer names and their comparison class")
    parser.add_argument("--comparison-based", action="store_true", help="only those the bound applies to")
    parser.add_argument("--contains", default="", help="only names containing this text (case-insensitive)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from afterlearner import optimizers

    described = {
        "parent": "comparison-based: each evaluation vs the current best (2 outcomes)",
        "parent-and-best": "comparison-based: each child vs its parent and the best (3 outcomes)",
        "particle": "comparison-based: each position vs its own best and the swarm's (4 outcomes)",
        "ranking": "comparison-based: ranking of evaluated points",
        "fixed": "comparison-based: proposals independent of the losses",
        None: "uses loss values: no bound",
    }
    for name in optimizers.available():
        info = optimizers.get(name)
        if args.comparison_based and not info.comparison_based:
            continue
        if args.contains.lower() not in name.lower():
            continue
        alias = f" (alias of {info.name})" if info.name != name else ""
        default = " [default]" if name == optimizers.DEFAULT_OPTIMIZER else ""
        print(f"{name}{alias}{default}: {described[info.outcome_class]}")
    return 0
