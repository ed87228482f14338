"""``afterlearner run`` on a finished store, answered from the store without building the task.

Building a task imports torch and the task's own libraries and trains or loads its model: seconds
to minutes, for an answer the store already holds. So when ``run`` finishes a store it notes there
what it printed and what it was answering: the task file's path and SHA-256, the settings as
resolved from the command line and the task's defaults, and the state of the runs. Asked the same
again, ``run`` reads the note and prints the same table, without importing torch or Nevergrad.

The note is used only when everything it was made from is unchanged: the task file byte for byte,
each setting the command line gives (or the task's default it would fall back on), ``--save`` not
asked (it needs the model), and the runs in the store as they were. Anything else takes the
ordinary path, which builds the task and checks the store against it (and refuses a store made by
another task). What the note cannot see is code the task file imports from elsewhere: a changed
model module behind an unchanged task file is answered from the store.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

#: The key of the note in the store.
NOTE = "cli-run-answer"
#: ``run``'s budget when neither the command line nor the task gives one.
DEFAULT_BUDGET = 200
ALREADY_COMPLETE = ("status", "already complete: read from the store, nothing evaluated")


def task_digest(spec: str) -> str | None:
    """SHA-256 of the task file named by ``spec`` (None when it cannot be read)."""
    from afterlearner.task import split_spec

    try:
        return hashlib.sha256(split_spec(spec)[0].read_bytes()).hexdigest()
    except OSError:
        return None


def runs_state(store: Any) -> list[list[Any]]:
    """What the answer depends on in the store's runs (any change makes the note stale)."""
    return [
        [
            row["run_index"],
            row["status"],
            row["evaluations"],
            row["best_loss"],
            row["test_best"],
            row["wall_time"],
        ]
        for row in store.runs()
    ]


def resolved(
    args: argparse.Namespace, task_budget: int | None, task_optimizer: str | None, default: str
) -> dict:
    """The settings ``run`` would use, from the command line and the task's defaults."""
    return {
        "budget": args.budget if args.budget is not None else (task_budget or DEFAULT_BUDGET),
        "optimizer": args.optimizer or task_optimizer or default,
        "runs": args.runs,
        "seed": args.seed,
    }


def record(args: argparse.Namespace, task: Any, default_optimizer: str, rows: list[tuple[str, str]]) -> None:
    """Note in the store what ``run`` printed for a finished retrofit, and what it answered."""
    from afterlearner.errors import StoreError
    from afterlearner.store import Store
    from afterlearner.task import absolute_spec

    digest = task_digest(args.task)
    if digest is None or args.store is None:
        return
    try:
        with Store.open(args.store) as store:
            store.note(
                NOTE,
                {
                    "task": absolute_spec(args.task),
                    "sha256": digest,
                    "task_budget": task.budget,
                    "task_optimizer": task.optimizer,
                    "default_optimizer": default_optimizer,
                    "settings": resolved(args, task.budget, task.optimizer, default_optimizer),
                    "runs_state": runs_state(store),
                    "title": task.name or args.task,
                    "rows": [list(row) for row in rows if row[0] != "status"],
                },
            )
    except StoreError:
        pass  # a store that cannot take the note (read-only, disk full) is answered the long way


def answer(args: argparse.Namespace) -> tuple[str, list[tuple[str, str]]] | None:
    """The title and rows to print for a finished store whose note still holds, or None."""
    if args.store is None or args.save or not Path(args.store).is_file():
        return None
    from afterlearner.errors import StoreError
    from afterlearner.store import Store
    from afterlearner.task import absolute_spec

    try:
        with Store.open(args.store, readonly=True) as store:
            note = store.noted(NOTE)
            settings = store.settings()
            if note is None or settings is None:
                return None
            wanted = resolved(args, note["task_budget"], note["task_optimizer"], note["default_optimizer"])
            holds = (
                note["task"] == absolute_spec(args.task)
                and note["sha256"] == task_digest(args.task)
                and note["settings"] == wanted
                and args.workers in (None, settings["workers"])
                and store.complete(wanted["budget"], wanted["runs"])
                and note["runs_state"] == runs_state(store)
            )
    except StoreError:
        return None  # the ordinary path says what is wrong with the file
    if not holds:
        return None
    return note["title"], [tuple(row) for row in note["rows"]] + [ALREADY_COMPLETE]
