"""The original AfterLearnER experiments, re-created on small models trained in this repository.

Each experiment is a module in this package exposing:

* ``TITLE``: one line saying what is retrofitted against what metric;
* ``DEFAULT_BUDGET`` and ``DEFAULT_OPTIMIZER``;
* ``make_task(reduced: bool = False) -> afterlearner.Task``: the task (``reduced=True`` is the
  small version the test suite runs).

Optional hooks, used by ``afterlearner reproduce`` (see :mod:`afterlearner.reproduce`):

* ``METRIC``: a short name of the ℵ-loss for the results table (e.g. ``"1 − δ1"``);
* ``BOUND_NOTE``: a sentence printed beside the bound, e.g. when the ℵ-loss is not a mean of
  per-sample losses in [0, 1] and the bound's assumptions do not hold;
* ``BOUND_APPLIES = False``: report no bound at all (the ℵ-loss is not a mean of per-sample
  losses in [0, 1], e.g. a Fréchet distance);
* ``extra_metrics(task) -> dict[str, float]``: more held-out metrics, called with the model as
  trained and again as retrofitted (e.g. δ2, δ3, AbsRel beside δ1);
* ``after_reproduce(task, result, out: Path) -> list[Path]``: write extra artefacts under ``out``
  (e.g. sample images before and after) and return their paths, which ``results.md`` shows.
* ``WORKERS``: λ, the candidates the optimizer asks at a time (default 1); part of the experiment,
  like the budget: it changes the search and the bound;
* ``PROCESSES``: evaluate those candidates in this many worker processes, each building the task once
  with ``make_task(reduced=...)`` (default 1: in the main process). Only the speed depends on it
  (``afterlearner reproduce --processes N`` overrides it).

``afterlearner reproduce NAME`` runs one; ``afterlearner reproduce all`` runs every one and writes
``docs/results.md``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Experiment name → module path. One line per experiment.
REGISTRY: dict[str, str] = {
    "depth": "afterlearner.experiments.depth.task",
    "code-translation-ca": "afterlearner.experiments.code_translation.ca",
    "code-translation-bleu": "afterlearner.experiments.code_translation.bleu",
    "image-generator": "afterlearner.experiments.image_generator.task",
    "doom": "afterlearner.experiments.doom",
    "ldm": "afterlearner.experiments.ldm",
    "speech": "afterlearner.experiments.speech",
    "speech-synthesis": "afterlearner.experiments.speech.synthesis_only",
    "speech-decoding": "afterlearner.experiments.speech.decoding_only",
}


def load(name: str) -> ModuleType:
    """The module of experiment ``name``; unknown names raise ``KeyError`` listing the known ones."""
    if name not in REGISTRY:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(sorted(REGISTRY)) or 'none yet'}")
    return importlib.import_module(REGISTRY[name])
