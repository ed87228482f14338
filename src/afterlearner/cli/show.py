"""``afterlearner show FILE [--plot out.png]``: the runs in a store, and their convergence curve."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("show", help="summarise the runs in a store (works while a run writes it)")
    parser.add_argument("store", help="an afterlearner SQLite store")
    parser.add_argument("--plot", default=None, help="write the convergence curve to this PNG file")
    parser.add_argument("--delta", type=float, default=0.05, help="confidence parameter of the bound")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from afterlearner.report import plot_store, print_store
    from afterlearner.store import Store

    with Store.open(args.store, readonly=True) as store:
        print_store(store, delta=args.delta)
        if args.plot:
            plot_store(store, args.plot)
            print(f"convergence plot written to {args.plot}")
    return 0
