"""``afterlearner run path/to/task.py:factory``: retrofit a task from a file, journaled and resumable."""

from __future__ import annotations

import argparse
from typing import Any

from afterlearner.cli.options import add_parallel_options, add_retrofit_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="retrofit the task returned by a factory in a Python file")
    parser.add_argument("task", help="path/to/task.py:factory (factory defaults to 'task')")
    add_retrofit_options(parser)
    add_parallel_options(parser)
    parser.set_defaults(handler=handle, workers=None)  # λ defaults to the parallel slots (1 without any)


def handle(args: argparse.Namespace) -> int:
    from afterlearner.optimizers import DEFAULT_OPTIMIZER
    from afterlearner.report import print_result
    from afterlearner.retrofit import retrofit
    from afterlearner.task import load_task

    task = load_task(args.task)
    evaluator, slots = make_evaluator(args, task)
    workers = args.workers if args.workers is not None else slots
    result = retrofit(
        task.aleph,
        task.loss,
        budget=args.budget if args.budget is not None else (task.budget or 200),
        optimizer=args.optimizer or task.optimizer or DEFAULT_OPTIMIZER,
        workers=workers,
        runs=args.runs,
        seed=args.seed,
        store=args.store,
        test_loss=task.test_loss,
        n=task.n,
        progress=not args.quiet,
        name=task.name,
        evaluator=evaluator,
    )
    print_result(result, title=task.name or args.task)
    return 0


def make_evaluator(args: argparse.Namespace, task: Any) -> tuple[Any, int]:
    """The evaluator ``--processes``/``--dask`` ask for (None: in this process) and its parallel slots."""
    from afterlearner.errors import ConfigError

    if args.processes is not None:
        from afterlearner.evaluators.processes import ProcessEvaluator

        if args.processes < 1:
            raise ConfigError(f"--processes must be >= 1, got {args.processes}")
        evaluator = ProcessEvaluator(args.task, args.processes, timeout=args.timeout, aleph=task.aleph)
        return evaluator, args.processes
    if args.dask is not None:
        from afterlearner.evaluators.dask import DaskEvaluator

        local = args.dask.startswith("local:")
        if local and not args.dask[6:].isdigit():
            raise ConfigError(f"--dask local:N needs a number of workers, got {args.dask!r}")
        evaluator = DaskEvaluator(
            args.task,
            None if local else args.dask,
            timeout=args.timeout,
            aleph=task.aleph,
            n_workers=int(args.dask[6:]) if local else 2,
        )
        return evaluator, evaluator.slots()
    if args.timeout is not None:
        raise ConfigError("--timeout applies to --processes or --dask evaluation")
    return None, 1
