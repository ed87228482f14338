"""``afterlearner reproduce NAME|all``: re-run an original experiment and update the results table."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce", help="re-run a re-created original experiment (or all) and update docs/results.md"
    )
    parser.add_argument("name", help="an experiment name, 'all', or 'list' to list them")
    parser.add_argument("--budget", type=int, default=None, help="evaluations (default: the experiment's)")
    parser.add_argument("--seed", type=int, default=0, help="optimizer seed (default 0)")
    parser.add_argument("--reduced", action="store_true", help="the small version the test suite runs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="worker processes that evaluate candidates (default: the experiment's; no effect on results)",
    )
    parser.add_argument(
        "--out", default="docs", help="folder of results.json, results.md and results/ (default docs)"
    )
    parser.add_argument(
        "--forget",
        action="store_true",
        help="remove NAME's row (and its plot) from the results instead of running it: for an "
        "experiment renamed or removed",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from rich.console import Console

    from afterlearner import experiments
    from afterlearner.errors import ConfigError
    from afterlearner.formatting import fmt
    from afterlearner.reproduce import record, run_experiment

    console = Console()
    if args.forget:
        from afterlearner.reproduce import forget

        if args.name in ("all", "list"):
            raise ConfigError("--forget takes the name of one row of the results table")
        rows = forget(args.name, args.out)
        console.print(f"{args.name}: row removed; {len(rows)} left in {args.out}/results.md")
        return 0
    known = experiments.registry()
    if args.name == "list":
        for name in sorted(known):
            console.print(f"{name}: {known[name].title}")
        return 0
    if args.name == "all":
        names = sorted(known)
        if not names:
            raise ConfigError("no experiment is registered (see afterlearner.experiments.PACKAGES)")
    elif args.name in known:
        names = [args.name]
    else:
        listed = ", ".join(sorted(known)) or "none yet"
        raise ConfigError(f"unknown experiment {args.name!r}; known: {listed} (or 'all', 'list')")
    failed = []
    for name in names:
        if not args.quiet:
            console.print(f"[bold]{name}[/bold]")
        try:
            row, _ = run_experiment(
                known[name],
                budget=args.budget,
                seed=args.seed,
                reduced=args.reduced,
                progress=not args.quiet,
                out=args.out,
                processes=args.processes,
            )
        except Exception as error:  # noqa: BLE001 - 'all' goes on with the other experiments
            if len(names) == 1:
                raise
            failed.append(name)
            print(f"afterlearner: {name} failed: {type(error).__name__}: {error}", file=sys.stderr)
            continue
        record(row, args.out)
        console.print(
            f"{name}: {row['metric']} ℵ {fmt(row['aleph_before'])} → {fmt(row['aleph_after'])}, held-out "
            f"{fmt(row['test_before'])} → {fmt(row['test_after'])} (gain {row['verdict']}), "
            f"{row['evaluations']} evaluations, {row['wall_time']:.0f} s"
        )
    console.print(f"results: {args.out}/results.md")
    if failed:
        print(f"afterlearner: failed experiments: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
