"""The experiment contract: everything ``afterlearner reproduce`` needs to know about one experiment.

An experiment package states its experiments once, as :class:`Experiment` values in the tuple
``EXPERIMENTS`` of its module ``experiment.py``; its ``task.py`` holds the task factory
(``make_task(reduced=False, ...) -> Task``) those experiments build.
:func:`afterlearner.reproduce.run_experiment` runs any of them the same way.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afterlearner.checks import check_positive_int
from afterlearner.errors import ConfigError
from afterlearner.task import Task

if TYPE_CHECKING:
    from afterlearner.heldout import HeldOut
    from afterlearner.result import RetrofitResult

#: More held-out metrics of a task, measured on the model as trained and again as retrofitted.
ExtraMetrics = Callable[[Task], dict[str, float]]
#: Writes artefacts (sample images, tables) under the output folder after the retrofit; returns their paths.
AfterReproduce = Callable[[Task, "RetrofitResult", Path], list[Path]]
#: More held-out comparisons, each with its interval, measured after the retrofit: label → what the held-out
#: set says of a baseline (``before``: the trained model seen by another judge, a baseline policy...)
#: and of the retrofitted model (``after``). It must leave the retrofitted model in place.
Comparisons = Callable[[Task, "RetrofitResult"], dict[str, "HeldOut"]]


@dataclass(frozen=True)
class Experiment:
    """One re-created experiment: its task, its search settings and how its results are reported.

    ``make_task`` must be a module-level function: worker processes import it from its file and call
    it as ``make_task(reduced=..., **task_options)`` to build their own copy of the task.
    ``workers`` (λ, the candidates asked at a time) is part of the experiment, like the budget: it
    changes the search and the bound. ``processes`` only changes the speed (worker processes that
    evaluate those candidates; 1: in this process).
    ``bound_applies=False`` reports no overfitting bound (the ℵ-loss is not a mean of per-sample
    losses in [0, 1]) and needs a ``bound_note`` saying why; a note beside an applicable bound
    qualifies it (e.g. "indicative only"). ``comparisons`` reports more held-out gains with their
    intervals beside the row (a second judge, a baseline the retrofit must beat).
    """

    name: str
    title: str
    metric: str
    make_task: Callable[..., Task]
    budget: int
    optimizer: str
    task_options: Mapping[str, Any] = field(default_factory=dict)
    workers: int = 1
    processes: int = 1
    bound_applies: bool = True
    bound_note: str = ""
    extra_metrics: ExtraMetrics | None = None
    after_reproduce: AfterReproduce | None = None
    comparisons: Comparisons | None = None

    def __post_init__(self) -> None:
        for setting in ("budget", "workers", "processes"):
            check_positive_int(f"experiment {self.name!r}: {setting}", getattr(self, setting))
        if not self.bound_applies and not self.bound_note:
            raise ConfigError(f"experiment {self.name!r}: say in bound_note why the bound does not apply")
        qualified = getattr(self.make_task, "__qualname__", "")
        if qualified != getattr(self.make_task, "__name__", None) or "<" in qualified:
            raise ConfigError(
                f"experiment {self.name!r}: make_task must be a module-level function (worker processes "
                f"import it), got {self.make_task!r}"
            )

    def task(self, reduced: bool = False) -> Task:
        """The task, with the experiment's budget and optimizer as its recommended defaults."""
        built = self.make_task(reduced=reduced, **self.task_options)
        return dataclasses.replace(built, budget=self.budget, optimizer=self.optimizer)

    def task_spec(self) -> str:
        """``"path/to/task.py:make_task"``: where worker processes find the task factory."""
        return f"{inspect.getfile(self.make_task)}:{self.make_task.__name__}"

    def factory_kwargs(self, reduced: bool) -> dict[str, Any]:
        """The keyword arguments worker processes call the task factory with."""
        return {"reduced": reduced, **self.task_options}
