"""The original AfterLearnER experiments, re-created on small models trained in this repository.

Each experiment package has a ``task.py`` (its task factory, ``make_task(reduced=False, ...)``;
``reduced=True`` is the small version the test suite runs) and an ``experiment.py`` stating its
experiments as :class:`~afterlearner.experiments.base.Experiment` values in ``EXPERIMENTS``.
Adding an experiment: write both, and add the package to :data:`PACKAGES`.

``afterlearner reproduce NAME`` runs one (:mod:`afterlearner.reproduce`); ``afterlearner reproduce
all`` runs every one and writes ``docs/results.md``. :mod:`.digits` holds the example models of the
demos (the digit classifier and the digit generator), used by ``image_generator`` too.
"""

from __future__ import annotations

import importlib

from afterlearner.errors import ConfigError
from afterlearner.experiments.base import Experiment

#: The packages whose ``experiment.py`` defines ``EXPERIMENTS``, in the order ``reproduce list`` reads them.
PACKAGES = ("depth", "code_translation", "image_generator", "doom", "ldm", "speech", "vad", "ocr")


def registry() -> dict[str, Experiment]:
    """Every registered experiment by name (imports each package's ``experiment.py``)."""
    found: dict[str, Experiment] = {}
    for package in PACKAGES:
        module = importlib.import_module(f"{__name__}.{package}.experiment")
        for experiment in module.EXPERIMENTS:
            if not isinstance(experiment, Experiment):
                raise ConfigError(f"{module.__name__}.EXPERIMENTS holds {experiment!r}, not an Experiment")
            if experiment.name in found:
                raise ConfigError(f"two experiments are named {experiment.name!r}")
            found[experiment.name] = experiment
    return found


def get(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name raises :class:`ConfigError` listing the known ones."""
    known = registry()
    if name not in known:
        raise ConfigError(f"unknown experiment {name!r}; known: {', '.join(sorted(known)) or 'none yet'}")
    return known[name]
