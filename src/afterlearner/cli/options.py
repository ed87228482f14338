"""Command-line options shared by the subcommands that run a retrofit."""

from __future__ import annotations

import argparse


def port(text: str) -> int:
    """An argparse type: a TCP port number, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, not {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, not {value}")
    return value


def add_retrofit_options(parser: argparse.ArgumentParser, budget: int | None = None) -> None:
    parser.add_argument(
        "--budget", type=int, default=budget, help="evaluations per run (default: the task's)"
    )
    parser.add_argument("--optimizer", default=None, help="a Nevergrad optimizer name (default: the task's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="candidates asked at a time, λ (default 1)")
    parser.add_argument("--runs", type=int, default=1, help="independent runs, best kept (default 1)")
    parser.add_argument("--store", default=None, help="SQLite journal; an existing one is resumed")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parallel_options(parser: argparse.ArgumentParser) -> None:
    """Where candidates are evaluated: worker processes here, or a Dask cluster (needs a task spec)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--processes",
        type=int,
        default=None,
        metavar="N",
        help="evaluate in N worker processes, each building the task once (λ defaults to N)",
    )
    group.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="evaluate on a Dask cluster: scheduler address such as tcp://host:8786, or 'local:N' "
        "for a local cluster of N workers (λ defaults to its worker threads)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --processes/--dask: an evaluation taking longer is failed (its worker killed)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="with --processes: pin each worker to a core of its own (holds up better while other "
        "programs keep a core busy; not for two pinned runs on one machine)",
    )


def add_run_control_options(parser: argparse.ArgumentParser) -> None:
    """When to stop before the budget, and where to write the retrofit."""
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop the search after this many seconds, with the best so far (run again to continue)",
    )
    parser.add_argument(
        "--target", type=float, default=None, metavar="LOSS", help="stop once the ℵ-loss reaches LOSS"
    )
    parser.add_argument(
        "--save",
        default=None,
        metavar="PATCH.safetensors",
        help="write the retrofit as a safetensors patch (loads with load_state_dict, no afterlearner needed)",
    )
