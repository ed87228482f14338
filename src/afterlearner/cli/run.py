"""``afterlearner run path/to/task.py:factory``: retrofit a task from a file, journaled and resumable."""

from __future__ import annotations

import argparse

from afterlearner.cli.options import add_retrofit_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="retrofit the task returned by a factory in a Python file")
    parser.add_argument("task", help="path/to/task.py:factory (factory defaults to 'task')")
    add_retrofit_options(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from afterlearner.optimizers import DEFAULT_OPTIMIZER
    from afterlearner.report import print_result
    from afterlearner.retrofit import retrofit
    from afterlearner.task import load_task

    task = load_task(args.task)
    result = retrofit(
        task.aleph, task.loss, budget=args.budget or task.budget or 200,
        optimizer=args.optimizer or task.optimizer or DEFAULT_OPTIMIZER, workers=args.workers, runs=args.runs,
        seed=args.seed, store=args.store, test_loss=task.test_loss, n=task.n, progress=not args.quiet,
        name=task.name,
    )
    print_result(result, title=task.name or args.task)
    return 0
