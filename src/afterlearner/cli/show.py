"""``afterlearner show FILE``: the runs in a store, their convergence, their evaluations and best values.

Everything is read in one read transaction of a read-only connection, so a store that a run is
writing meanwhile is shown as one consistent snapshot.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: ``--csv`` without a file (or with ``-``) writes the CSV to standard output.
STDOUT = "-"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("show", help="summarise the runs in a store (works while a run writes it)")
    parser.add_argument("store", help="an afterlearner SQLite store")
    parser.add_argument("--plot", default=None, help="write the convergence curve to this PNG file")
    parser.add_argument(
        "--csv",
        nargs="?",
        const=STDOUT,
        default=None,
        metavar="FILE",
        help="write every evaluation (status, loss, best so far, each ℵ-scalar by name) as CSV to FILE, "
        "or alone on standard output without FILE (put it after the store: show STORE --csv)",
    )
    parser.add_argument(
        "--values",
        action="store_true",
        help="print each run's best candidate by ℵ-scalar name: trained value, best value, change",
    )
    parser.add_argument(
        "--task",
        default=None,
        metavar="FILE.py:factory",
        help="with --values: build the task to show the model's tensors too (same ℵ-space as the store)",
    )
    parser.add_argument(
        "--plot-params",
        default=None,
        metavar="FILE",
        help="write each ℵ-entry's values over the evaluations to this PNG file",
    )
    parser.add_argument("--delta", type=float, default=0.05, help="confidence parameter of the bound")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from afterlearner import report
    from afterlearner.errors import ConfigError
    from afterlearner.store import Store

    csv_on_stdout = args.csv == STDOUT
    if csv_on_stdout and args.values:
        raise ConfigError(
            "--csv without a FILE writes the CSV alone on standard output: give it a FILE for --values"
        )
    if args.task and not args.values:
        raise ConfigError("--task is used by --values: add --values")
    say = _to_stderr if csv_on_stdout else print  # with the CSV on stdout, nothing else goes there
    with Store.open(args.store, readonly=True) as store, _snapshot(store):
        if not csv_on_stdout:
            report.print_store(store, delta=args.delta)
        if args.csv or args.values or args.plot_params:
            _show_evaluations(args, store, say)
        if args.plot:
            report.plot_store(store, args.plot)
            say(f"convergence plot written to {args.plot}")
    return 0


def _show_evaluations(args: argparse.Namespace, store: Any, say: Callable[[str], None]) -> None:
    """--csv, --values and --plot-params: what needs the store's ℵ-space and every evaluation."""
    from afterlearner import history, report
    from afterlearner.errors import StoreError
    from afterlearner.task import load_task

    settings = store.settings()
    if settings is None:
        raise StoreError(f"{store.path} has no run yet: no evaluations to show")
    aleph = load_task(args.task).aleph if args.task else None
    if aleph is not None:
        history.check_space(aleph, settings, str(store.path))
    evaluations, runs = store.evaluations(), store.runs()
    if args.csv == STDOUT:
        with _reader_may_stop():
            history.write_csv(settings, evaluations, sys.stdout)
    elif args.csv:
        history.write_csv(settings, evaluations, args.csv)
        say(f"{len(evaluations)} evaluations written to {args.csv}")
    if args.values:
        with _reader_may_stop():
            print("\n".join(report.values_lines(settings, runs, evaluations, aleph)), flush=True)
    if args.plot_params:
        title = report.store_title(store, settings)
        report.plot_params(settings, evaluations, args.plot_params, runs=runs, title=title)
        say(f"ℵ-parameter plot written to {args.plot_params}")


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


@contextmanager
def _reader_may_stop() -> Iterator[None]:
    """Standard output piped into ``head`` or ``less`` may close early: that is not an error."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit


@contextmanager
def _snapshot(store: Any) -> Iterator[None]:
    """One read transaction: every query sees the store as it was when the first one ran."""
    store.connection.execute("BEGIN")
    try:
        yield
    finally:
        store.connection.rollback()
