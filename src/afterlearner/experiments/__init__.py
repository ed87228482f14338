"""The original AfterLearnER experiments, re-created on small models trained in this repository.

Each experiment is a module in this package exposing:

* ``TITLE``: one line saying what is retrofitted against what metric;
* ``DEFAULT_BUDGET`` and ``DEFAULT_OPTIMIZER``;
* ``make_task(reduced: bool = False) -> afterlearner.Task``: the task (``reduced=True`` is the
  small version the test suite runs).

``afterlearner reproduce NAME`` runs one; ``afterlearner reproduce all`` runs every one and writes
``docs/results.md``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Experiment name → module path. One line per experiment.
REGISTRY: dict[str, str] = {
}


def load(name: str) -> ModuleType:
    """The module of experiment ``name``; unknown names raise ``KeyError`` listing the known ones."""
    if name not in REGISTRY:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(sorted(REGISTRY)) or 'none yet'}")
    return importlib.import_module(REGISTRY[name])
