"""afterlearner: evolutionary retrofitting of trained models (AfterLearnER).

Choose a few ℵ-parameters of a trained model, write the ℵ-loss you care about, and let a
gradient-free optimizer improve them within a small budget, journaled, resumable and anytime::

    import afterlearner as al
    aleph = al.Aleph(model).add("fc.bias")
    result = al.retrofit(aleph, loss, budget=200, store="run.sqlite", test_loss=test_loss)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below are imported on first use (see __getattr__)
    from afterlearner.bound import generalization_bound
    from afterlearner.errors import (
        AfterlearnerError,
        ConfigError,
        PatchError,
        SpaceError,
        StoreError,
        TaskError,
        TooManyFailures,
    )
    from afterlearner.evaluators.base import Measured
    from afterlearner.guards import Guard
    from afterlearner.losses import DatasetLoss
    from afterlearner.patch import Patch, apply_patch, best_of_store, read_patch, save_patch
    from afterlearner.result import RetrofitResult
    from afterlearner.retrofit import retrofit
    from afterlearner.retrofitter import Candidate, Retrofitter, RunState
    from afterlearner.space import Aleph
    from afterlearner.store import Store
    from afterlearner.task import Task, load_task

#: Where each public name lives. Importing ``afterlearner`` imports none of them (torch and Nevergrad
#: take seconds to import): a name's module is imported when the name is first used, so the
#: command line answers ``--help`` or reads a store without them.
_LOCATIONS = {
    "generalization_bound": "bound",
    **dict.fromkeys(
        [
            "AfterlearnerError",
            "ConfigError",
            "PatchError",
            "SpaceError",
            "StoreError",
            "TaskError",
            "TooManyFailures",
        ],
        "errors",
    ),
    "DatasetLoss": "losses",
    "Guard": "guards",
    "Measured": "evaluators.base",
    **dict.fromkeys(["Patch", "apply_patch", "best_of_store", "read_patch", "save_patch"], "patch"),
    "RetrofitResult": "result",
    "retrofit": "retrofit",
    **dict.fromkeys(["Candidate", "Retrofitter", "RunState"], "retrofitter"),
    "Aleph": "space",
    "Store": "store",
    **dict.fromkeys(["Task", "load_task"], "task"),
}


def __getattr__(name: str) -> Any:
    """A public name, or a submodule (``al.losses``), imported on first use."""
    if name in _LOCATIONS:
        value = getattr(importlib.import_module(f"afterlearner.{_LOCATIONS[name]}"), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"afterlearner.{name}") is not None:
        return importlib.import_module(f"afterlearner.{name}")
    raise AttributeError(f"module 'afterlearner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LOCATIONS})


class _Package(ModuleType):
    """``afterlearner.retrofit`` is the function, as when this file imported it eagerly: importing
    the submodule of the same name does not replace the package's attribute with the module."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and name in _LOCATIONS:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__version__ = "0.1.0"

__all__ = [
    "AfterlearnerError",
    "Aleph",
    "Candidate",
    "ConfigError",
    "DatasetLoss",
    "Guard",
    "Measured",
    "Patch",
    "PatchError",
    "RetrofitResult",
    "Retrofitter",
    "RunState",
    "SpaceError",
    "Store",
    "StoreError",
    "Task",
    "TaskError",
    "TooManyFailures",
    "apply_patch",
    "best_of_store",
    "generalization_bound",
    "load_task",
    "presets",
    "read_patch",
    "retrofit",
    "save_patch",
]
