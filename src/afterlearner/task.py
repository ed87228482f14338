"""A task: what ``afterlearner run`` retrofits. A task file has a factory function returning one."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from afterlearner.errors import TaskError

if TYPE_CHECKING:  # torch is imported by the task file itself, not to read a spec
    from afterlearner.space import Aleph

T = TypeVar("T")


@dataclass
class Task:
    """The ℵ-space, the ℵ-loss and, optionally, a held-out loss and the ℵ-dataset size ``n``.

    ``budget`` and ``optimizer`` are the task's recommended defaults; the command line overrides them.
    ``guards``: guardrail losses, name → ``(loss, tolerance[, test_loss])`` (:mod:`afterlearner.guards`).
    """

    aleph: Aleph
    loss: Callable[[Any], object]
    test_loss: Callable[[Any], object] | None = None
    name: str | None = None
    n: int | None = None
    budget: int | None = None
    optimizer: str | None = None
    description: str = ""
    guards: dict[str, Any] | None = None


def measured_loss(task: Task) -> Callable[[Any], object]:
    """What an evaluator calls for this task: its loss, with its guard losses measured alongside."""
    if not task.guards:
        return task.loss
    from afterlearner.guards import GuardedLoss, as_guards

    return GuardedLoss(task.loss, as_guards(task.guards))


def split_spec(spec: str) -> tuple[Path, str]:
    """``"path/to/task.py:factory"`` → (path, factory name); the name defaults to ``task``."""
    path, _, factory = spec.rpartition(":") if spec.rpartition(":")[0].endswith(".py") else (spec, "", "task")
    return Path(path), factory or "task"


def absolute_spec(spec: str) -> str:
    """The task spec with an absolute file path, so workers started elsewhere find the same file."""
    path, factory = split_spec(spec)
    return f"{path.resolve()}:{factory}"


def build_from_spec(spec: str, kind: type[T], **kwargs: Any) -> T:
    """Import ``path/to/task.py``, call its factory with ``kwargs`` and check it returned a ``kind``.

    Raises :class:`TaskError` for a missing file, a failing import, a missing factory or a wrong
    return type. A result without a name is named ``file:factory``.
    """
    path, factory_name = split_spec(spec)
    if not path.is_file():
        raise TaskError(f"task file {path} does not exist")
    module_name = f"afterlearner_task_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise TaskError(f"cannot import {path} as a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        raise TaskError(f"importing {path} failed: {user_traceback(error)}") from error
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        names = [name for name, value in vars(module).items() if callable(value) and not name.startswith("_")]
        raise TaskError(f"{path} has no function {factory_name!r}; its callables: {', '.join(names)}")
    try:
        built = factory(**kwargs)
    except Exception as error:
        raise TaskError(f"the task factory {path}:{factory_name} raised {user_traceback(error)}") from error
    if not isinstance(built, kind):
        public = f"{kind.__module__.rsplit('.', 1)[0]}.{kind.__name__}"  # e.g. afterlearner.Task
        raise TaskError(f"{spec} returned {type(built).__name__}, not an {public}")
    if getattr(built, "name", "") is None:
        built.name = f"{path.stem}:{factory_name}"  # type: ignore[attr-defined]
    return built


def user_traceback(error: BaseException) -> str:
    """``Type: message``, then the frames of the user's code (afterlearner's own frames left out)."""
    package = str(Path(__file__).resolve().parent)
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not str(Path(frame.filename).resolve()).startswith(package) and "importlib" not in frame.filename
    ]
    summary = "".join(traceback.format_exception_only(type(error), error)).strip()
    if not frames:
        return summary
    return summary + "\n" + "".join(traceback.format_list(frames)).rstrip()


def load_task(spec: str, **kwargs: Any) -> Task:
    """Import ``path/to/task.py`` and call its factory; raises :class:`TaskError` if anything is off."""
    return build_from_spec(spec, Task, **kwargs)
