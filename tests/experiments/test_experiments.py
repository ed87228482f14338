"""Every registered experiment keeps the contract at reduced size: it builds, runs a budget of 4 through
``reproduce``, writes its row, and ``result.restore()`` puts the trained model back bit for bit."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch

from afterlearner import experiments
from afterlearner.experiments.base import Experiment
from afterlearner.reproduce import load_rows, record, run_experiment
from afterlearner.space import Aleph, HyperEntry
from afterlearner.task import Task

#: Experiments whose reduced run here takes several seconds even on an idle 2-core machine (ldm about
#: 16 s with its online curve, each speech one 6-7 s: real synthesis and decoding in worker
#: processes), two to three times that under load. The others take under 4 s each.
SLOW = {"ldm", "speech", "speech-decoding", "speech-synthesis"}
NAMES = sorted(experiments.registry())


def state(aleph: Aleph) -> dict[str, Any]:
    """Everything a retrofit may write: every parameter and buffer of the model, as bytes, and the
    current value of every searched hyperparameter."""
    snapshot: dict[str, Any] = {}
    if aleph.model is not None:
        for name, tensor in [*aleph.model.named_parameters(), *aleph.model.named_buffers()]:
            array = tensor.detach().cpu()
            raw = array.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()
            snapshot[name] = (array.dtype, tuple(array.shape), raw)
    for entry in aleph:
        if isinstance(entry, HyperEntry):
            owner = entry.owner
            value = owner[entry.attribute] if isinstance(owner, Mapping) else getattr(owner, entry.attribute)
            snapshot[entry.name] = (type(value), value)
    return snapshot


def test_the_registry_holds_experiments_by_name() -> None:
    known = experiments.registry()
    assert NAMES and all(isinstance(e, Experiment) and e.name == name for name, e in known.items())
    assert {"depth", "code-translation-ca", "image-generator", "speech-synthesis"} <= set(known)
    with pytest.raises(Exception, match="unknown experiment 'nope'; known: code-translation-bleu"):
        experiments.get("nope")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in NAMES])
def test_experiment_runs_restores_and_writes_its_row(name: str, tmp_path) -> None:
    experiment = experiments.get(name)
    trained: list[tuple[Task, dict[str, Any]]] = []

    def snapshot_then_measure(task: Task) -> dict[str, float]:
        """Called by reproduce on the task as built, before the search (and again after it)."""
        if not trained:
            trained.append((task, state(task.aleph)))
        return experiment.extra_metrics(task) if experiment.extra_metrics else {}

    observed = dataclasses.replace(experiment, extra_metrics=snapshot_then_measure)
    row, result = run_experiment(observed, budget=4, reduced=True, progress=False, out=tmp_path)
    record(row, tmp_path)

    [(task, before)] = trained
    assert result.aleph is task.aleph and result.evaluations == 4
    tried = [e.vector for e in result.history if not np.array_equal(e.vector, task.aleph.identity())]
    assert tried, "the search never left the trained model"
    changed = False
    for vector in tried:  # a retrofit writes candidates into the model: restore must undo any of them
        task.aleph.write(vector)
        changed = changed or state(task.aleph) != before
    assert changed, "no candidate changed the model: the restore check would prove nothing"
    result.restore()
    assert state(task.aleph) == before

    [written] = load_rows(tmp_path)
    assert written == row and row["name"] == name and row["reduced"] is True
    assert row["budget"] == row["evaluations"] == 4 and row["n"] == task.n
    assert row["workers"] == experiment.workers and row["optimizer"] == experiment.optimizer
    assert row["aleph_before"] is not None and row["aleph_after"] <= row["aleph_before"]
    if not experiment.bound_applies:
        assert row["bound"] is None and row["bound_note"] == experiment.bound_note
    assert (tmp_path / row["plot"]).stat().st_size > 1000
    assert all((tmp_path / artefact).exists() for artefact in row["artefacts"])
    assert f"| {name} (reduced) |" in (tmp_path / "results.md").read_text()
