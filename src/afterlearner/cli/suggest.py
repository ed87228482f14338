"""``afterlearner suggest path/to/file.py:factory``: the menu of ℵ-parameter groups of a model."""

from __future__ import annotations

import argparse
from typing import Any

from afterlearner.errors import TaskError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "suggest",
        help="list the candidate ℵ-parameter groups of a model, with their sizes and why",
        description="Import FILE.py and call its factory (no arguments). The factory may return an "
        "al.Task (its Aleph's model is examined, and its current ℵ-space is printed too), an "
        "al.Aleph, a torch model, or a generation config (its decoding knobs).",
    )
    parser.add_argument("task", help="path/to/file.py:factory (factory defaults to 'task')")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from torch import nn

    from afterlearner import presets
    from afterlearner.space import Aleph
    from afterlearner.task import Task, build_from_spec

    built: Any = build_from_spec(args.task, object)
    chosen: Aleph | None = None
    if isinstance(built, Task):
        chosen, target = built.aleph, built.aleph.model
    elif isinstance(built, Aleph):
        chosen, target = built, built.model
    else:
        target = built
    if target is None and chosen is not None:
        print("this ℵ-space has no torch model: nothing to suggest in a network")
    elif isinstance(target, nn.Module) or presets.suggest(target):
        print(presets.describe(target))
    else:
        raise TaskError(
            f"{args.task} returned {type(built).__name__}: suggest needs an afterlearner Task or Aleph, "
            "a torch model or a generation config"
        )
    if chosen is not None and chosen.entries:
        print()
        print(f"what the factory chose: {chosen.describe()}")
    return 0
