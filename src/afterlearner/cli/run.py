"""``afterlearner run path/to/task.py:factory``: retrofit a task from a file, journaled and resumable."""

from __future__ import annotations

import argparse
import sys
import time

from afterlearner.cli.options import add_parallel_options, add_retrofit_options, add_run_control_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="retrofit the task returned by a factory in a Python file")
    parser.add_argument("task", help="path/to/task.py:factory (factory defaults to 'task')")
    add_retrofit_options(parser)
    add_parallel_options(parser)
    add_run_control_options(parser)
    parser.set_defaults(handler=handle, workers=None)  # λ defaults to the parallel slots (1 without any)


def say(message: str) -> None:
    """What the command is doing, on stderr (stdout keeps the result table)."""
    print(message, file=sys.stderr, flush=True)


def handle(args: argparse.Namespace) -> int:
    from afterlearner.cli import finished
    from afterlearner.formatting import print_rows

    stored = finished.answer(args)  # a finished store whose task file is unchanged: no task to build
    if stored is not None:
        say(f"{args.store} is already complete: nothing to evaluate; the figures are the original run's")
        title, rows = stored
        print_rows(rows, title)
        return 0

    from afterlearner.evaluators import describe, make_evaluator
    from afterlearner.losses import DatasetLoss
    from afterlearner.optimizers import DEFAULT_OPTIMIZER
    from afterlearner.report import print_result, result_rows
    from afterlearner.retrofit import retrofit
    from afterlearner.store import Store
    from afterlearner.task import absolute_spec, load_task, measured_loss

    say(f"building the task {args.task} ...")
    started = time.perf_counter()
    task = load_task(args.task)
    say(f"built {task.name} in {time.perf_counter() - started:.1f} s: {task.aleph}")
    budget = args.budget if args.budget is not None else (task.budget or 200)
    optimizer = args.optimizer or task.optimizer or DEFAULT_OPTIMIZER
    complete, slots = False, 1
    if args.store is not None and _exists(args.store):
        with Store.open(args.store, readonly=True) as store:
            settings = store.settings()
            complete = settings is not None and store.complete(budget, args.runs)
            slots = settings["workers"] if complete else 1  # λ as the run had it, without starting workers
    evaluator, workers = None, args.workers or slots
    if complete:
        say(f"{args.store} is already complete: nothing to evaluate; the figures are the original run's")
    else:
        if args.processes is not None:
            say(f"starting {args.processes} worker processes (each builds the task once) ...")
        elif args.dask is not None:
            say(
                f"starting {'a local Dask cluster' if args.dask.startswith('local:') else 'Dask workers'} ..."
            )
        elif isinstance(task.loss, DatasetLoss):
            say("choosing the evaluator (probing the forward pass for a frozen prefix to cache) ...")
        evaluator, workers = make_evaluator(
            task.aleph,
            measured_loss(task),
            workers=args.workers,
            processes=args.processes,
            dask=args.dask,
            spec=args.task,
            timeout=args.timeout,
            pin=args.pin,
        )
        say(f"evaluator: {describe(evaluator)}")
        source = (
            "--workers" if args.workers is not None else ("the parallel slots" if workers > 1 else "default")
        )
        say(
            f"λ = {workers} ({source}), optimizer {optimizer}, budget {budget}, runs {args.runs}, "
            f"seed {args.seed}"
        )
    result = retrofit(
        task.aleph,
        task.loss,
        budget=budget,
        optimizer=optimizer,
        workers=workers,
        runs=args.runs,
        seed=args.seed,
        store=args.store,
        test_loss=task.test_loss,
        n=task.n,
        progress=not args.quiet,
        name=task.name,
        evaluator=evaluator,
        time_limit=args.time_limit,
        target=args.target,
        task_file=absolute_spec(args.task),
        guards=task.guards,
    )
    print_result(result, title=task.name or args.task)
    if args.store is not None and result.status == "finished" and not result.interrupted:
        finished.record(args, task, DEFAULT_OPTIMIZER, result_rows(result))
    if result.best_loss is None and result.evaluations:
        failure = next((e.error for e in reversed(result.history) if e.error), "")
        say(f"every evaluation failed; the model keeps its trained values. The last error: {failure}")
        return 1
    if args.save:
        path = result.save(args.save)
        print(f"retrofit written to {path}; load it without afterlearner:")
        print("    from safetensors.torch import load_file")
        print(f"    model.load_state_dict(load_file({str(path)!r}), strict=False)")
    return 0


def _exists(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_file() and Path(path).stat().st_size > 0
