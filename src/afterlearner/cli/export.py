"""``afterlearner export STORE --task FILE.py:factory --out PATH``: a store's best candidate as a patch file.

The patch is a standard safetensors file of the retrofitted ℵ-tensors (see :mod:`afterlearner.patch`)
that ``model.load_state_dict(load_file(PATH), strict=False)`` applies without afterlearner. The task
is built (for its model and ℵ-space) but nothing is evaluated unless ``--verify`` asks for it.
"""

from __future__ import annotations

import argparse
import json
import math
from itertools import zip_longest
from typing import Any

#: ``--verify`` accepts a re-evaluated loss this close to the journaled one (float rounding of a
#: batched or cached evaluation; a changed task or data set moves the loss far more).
VERIFY_RELATIVE_TOLERANCE = 1e-6
#: Tensor names printed before "and N more".
NAMES_SHOWN = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="write a store's best candidate as a safetensors patch (loads without afterlearner)"
    )
    parser.add_argument("store", help="an afterlearner SQLite store (finished, interrupted or killed)")
    parser.add_argument("--task", required=True, help="path/to/task.py:factory the store was made with")
    parser.add_argument("--out", required=True, help="the patch file to write (e.g. retrofit.safetensors)")
    parser.add_argument("--run", type=int, default=None, help="this run's best (default: the best run)")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="re-evaluate the task's ℵ-loss of the candidate once and refuse if it is not the journaled one",
    )
    parser.add_argument("--delta", type=float, default=0.05, help="confidence parameter of the bound")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from afterlearner.errors import ConfigError, StoreError
    from afterlearner.patch import best_of_store, read_patch, save_patch, store_metadata
    from afterlearner.store import Store
    from afterlearner.task import Task

    with Store.open(args.store, readonly=True) as store:
        settings = store.settings()
        if settings is None:
            raise StoreError(f"{args.store} holds no run yet: nothing to export")
        run_index, evaluation = best_of_store(store, args.run)
        metadata = store_metadata(store, run_index, evaluation, args.delta)
    task, aleph = load_exportable(args.task)
    difference = first_space_difference(aleph.signature(), settings["space"])
    if difference is not None:
        raise StoreError(f"{args.store} was made with another ℵ-space than {args.task}: {difference}")
    if args.verify and not isinstance(task, Task):
        raise ConfigError(
            "--verify re-evaluates an ℵ-loss; a feedback session's losses are a person's answers"
        )
    verified = verify(task, evaluation.vector, evaluation.loss) if args.verify else None  # type: ignore[arg-type]
    path = save_patch(aleph, evaluation.vector, args.out, **metadata)
    print(describe(read_patch(path), evaluation.loss, verified))  # type: ignore[arg-type]
    return 0


def load_exportable(spec: str) -> tuple[Any, Any]:
    """The task a store was made with and its ℵ-space: an offline ``Task``, or a feedback task whose
    space is an ``Aleph`` (a plain parameter has no model tensors to write)."""
    from afterlearner.errors import TaskError
    from afterlearner.online.task import FeedbackTask
    from afterlearner.space import Aleph
    from afterlearner.task import Task, build_from_spec

    task = build_from_spec(spec, object)
    if isinstance(task, Task):
        return task, task.aleph
    if isinstance(task, FeedbackTask) and isinstance(task.space, Aleph):
        return task, task.space
    if isinstance(task, FeedbackTask):
        raise TaskError(
            f"{spec} searches a plain parameter, not a model's ℵ-space: there is no patch to write"
        )
    raise TaskError(f"{spec} returned {type(task).__name__}, not an afterlearner.Task or a FeedbackTask")


def first_space_difference(task_space: list[dict[str, Any]], store_space: list[dict[str, Any]]) -> str | None:
    """The first entry where two ℵ-space signatures differ, in words; None when they are the same."""
    task_space = json.loads(json.dumps(task_space))  # as the store keeps it: tuples → lists
    for index, (mine, theirs) in enumerate(zip_longest(task_space, store_space)):
        if mine == theirs:
            continue
        if theirs is None:
            return f"the task has entry {index}, {mine['name']}, which the store does not"
        if mine is None:
            return f"the store has entry {index}, {theirs['name']}, which the task does not"
        if mine.get("name") != theirs.get("name"):
            return f"entry {index} is {mine.get('name')} in the task and {theirs.get('name')} in the store"
        key = next(key for key in sorted({*mine, *theirs}) if mine.get(key) != theirs.get(key))
        return f"{mine['name']}: the task has {key}={mine.get(key)}, the store has {key}={theirs.get(key)}"
    return None


def verify(task: Any, vector: Any, journaled: float) -> float:
    """The task's ℵ-loss of ``vector``, evaluated once; a PatchError unless it is the journaled loss.

    The candidate is written into the model only for this evaluation (under ``torch.no_grad()``);
    the trained values are restored afterwards, whatever happens.
    """
    import torch

    from afterlearner.errors import PatchError
    from afterlearner.evaluators.base import measure

    task.aleph.write(vector)
    try:
        with torch.no_grad():
            outcome = measure(lambda: task.loss(task.aleph.model))
    finally:
        task.aleph.restore()
    if outcome.loss is None:
        raise PatchError(
            f"--verify: the task's ℵ-loss failed on the candidate ({outcome.error}); nothing written"
        )
    if not math.isclose(outcome.loss, journaled, rel_tol=VERIFY_RELATIVE_TOLERANCE, abs_tol=1e-12):
        raise PatchError(
            f"--verify: the task's ℵ-loss of the candidate is now {outcome.loss!r}, the store journaled "
            f"{journaled!r}: the task, its model or its data changed since the run; nothing written"
        )
    return outcome.loss


def describe(patch: Any, loss: float, verified: float | None) -> str:
    """What was written (read back from the file), and the two lines that load it without afterlearner."""
    settings = patch.metadata["settings"]
    names = list(patch.tensors)
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    listed = f" ({', '.join(names[:NAMES_SHOWN])}{more})" if names else ""
    lines = [
        f"wrote {patch.path}: {len(names)} tensor{'s' * (len(names) != 1)}{listed}, ℵ-loss {loss:.6g} "
        f"(run {settings['run']}, evaluation {settings['evaluation']}; {settings['evaluations']} journaled, "
        f"{settings['run_status']})",
    ]
    if patch.hyperparameters:
        values = ", ".join(f"{name}={value!r}" for name, value in patch.hyperparameters.items())
        lines.append(f"hyperparameters: {values} (set them yourself, or al.apply_patch(aleph, path) does)")
    if verified is not None:
        lines.append(f"verified: the task's ℵ-loss of this candidate is {verified:.6g}, as journaled")
    lines += [
        "load it (afterlearner not needed):",
        "    from safetensors.torch import load_file",
        f"    model.load_state_dict(load_file({str(patch.path)!r}), strict=False)",
    ]
    return "\n".join(lines)
