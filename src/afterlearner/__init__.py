"""afterlearner: evolutionary retrofitting of trained models (AfterLearnER).

Choose a few ℵ-parameters of a trained model, write the ℵ-loss you care about, and let a
gradient-free optimizer improve them within a small budget, journaled, resumable and anytime::

    import afterlearner as al
    aleph = al.Aleph(model).add("fc.bias")
    result = al.retrofit(aleph, loss, budget=200, store="run.sqlite", test_loss=test_loss)
"""

import afterlearner.presets as presets
from afterlearner import _compat  # noqa: F401  (NGOpt with numpy >= 2.4)
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
