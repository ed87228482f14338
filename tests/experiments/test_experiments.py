"""Every registered experiment keeps the contract at reduced size: it builds, runs a budget of 4 through
``reproduce``, writes its row, and ``result.restore()`` puts the trained model back bit for bit; its
held-out loss shows its parts (per-sample losses or outputs over items) without changing its value,
and the held-out gain comes with an interval."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Mapping
from typing import Any

import jiwer
import numpy as np
import pytest
import torch

from afterlearner import experiments, heldout
from afterlearner.experiments.base import Experiment
from afterlearner.experiments.ocr import model as ocr_model
from afterlearner.experiments.ocr.metric import ctc_greedy
from afterlearner.experiments.speech.pipeline import word_error_rate
from afterlearner.reproduce import load_rows, record, run_experiment
from afterlearner.space import Aleph, HyperEntry
from afterlearner.task import Task

#: Experiments whose reduced run here takes several seconds even on an idle 2-core machine (ldm about
#: 16 s with its online curve, each speech one 6-7 s: real synthesis and decoding in worker
#: processes), two to three times that under load. The others take under 4 s each.
#: The vad ones (5-20 s) start two worker processes that each load the VAD and make their clips.
SLOW = {
    "ldm",
    "speech",
    "speech-decoding",
    "speech-network",
    "vad",
    "vad-threshold",
    "ocr",
    "ocr-final-norm",
}
#: Experiments on real pretrained weights from an extra: skipped, with the reason, where it is not installed.
MISSING = {name: ocr_model.available() for name in ("ocr", "ocr-final-norm")}
NAMES = sorted(experiments.registry())

#: The held-out loss as one float, computed the way each experiment's code computed it before its loss
#: showed its parts.
OLD_HELD_OUT: dict[str, Any] = {
    "depth": lambda task: 1.0 - task.test_loss.metrics(task.aleph.model)["delta1"],
    "depth-guarded": lambda task: 1.0 - task.test_loss.metrics(task.aleph.model)["delta1"],
    "code-translation-ca": lambda task: 1.0 - task.test_loss.metrics()["computational accuracy"],
    "code-translation-ca-guarded": lambda task: 1.0 - task.test_loss.metrics()["computational accuracy"],
    "code-translation-bleu": lambda task: 1.0 - task.test_loss.metrics()["BLEU"] / 100.0,
    "image-generator": lambda task: task.test_loss.metrics(task.aleph.model)["frechet distance"],
    "doom": lambda task: -float(task.test_loss.kills(task.aleph.model).mean()),
    "doom-no-temperature": lambda task: -float(task.test_loss.kills(task.aleph.model).mean()),
    "ldm": lambda task: float(np.mean(task.test_loss(task.aleph.model))),
    **dict.fromkeys(
        ("speech", "speech-decoding", "speech-network"),
        lambda task: word_error_rate(task.test_loss.targets, task.test_loss.transcripts(task.aleph.model)),
    ),
    **dict.fromkeys(
        ("vad", "vad-threshold"),
        lambda task: 1.0 - task.test_loss.metrics(task.aleph.model)["mean clip F1"],
    ),
    **dict.fromkeys(
        ("ocr", "ocr-final-norm"),
        lambda task: jiwer.cer(
            list(task.test_loss.targets),
            ctc_greedy(
                torch.cat([task.aleph.model(b).argmax(-1) for b in task.test_loss.batches]),
                task.test_loss.metric.charset,
            ),
        ),
    ),
}
#: The form of the held-out loss's parts: per-sample losses, or outputs over items (None: one number).
PARTS = {
    "depth": "per_sample",  # 1 − δ1 per scene
    "depth-guarded": "per_sample",
    "code-translation-ca": "per_sample",  # 0/1 per program
    "code-translation-ca-guarded": "per_sample",
    "doom": "per_sample",  # − kills per episode
    "doom-no-temperature": "per_sample",
    "code-translation-bleu": "outputs",  # BLEU statistics per program
    "image-generator": "outputs",  # judge features per generated sample
    "speech": "outputs",  # transcript per sentence
    "speech-decoding": "outputs",
    "speech-network": "outputs",
    "ldm": "per_sample",  # one image scored by each of 10 referees
    "vad": "per_sample",  # 1 − frame F1 per clip
    "vad-threshold": "per_sample",
    "ocr": "outputs",  # CTC outputs per text line
    "ocr-final-norm": "outputs",
}
#: Experiments whose model ships in an optional package: skipped, saying so, when it is not installed.
NEEDS = {"vad": "silero_vad", "vad-threshold": "silero_vad"}


def marks(name: str) -> list[pytest.MarkDecorator]:
    found = [pytest.mark.slow] if name in SLOW else []
    if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
        found.append(
            pytest.mark.skip(
                reason=f"{NEEDS[name]} is not installed (pip install 'afterlearner[realmodels]')"
            )
        )
    return found


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
    assert {"depth", "code-translation-ca", "image-generator", "speech-network"} <= set(known)
    with pytest.raises(Exception, match="unknown experiment 'nope'; known: code-translation-bleu"):
        experiments.get("nope")


@pytest.mark.parametrize("name", [pytest.param(n, marks=marks(n)) for n in NAMES])
def test_experiment_runs_restores_and_writes_its_row(name: str, tmp_path) -> None:
    if MISSING.get(name):
        pytest.skip(MISSING[name])
    experiment = experiments.get(name)
    trained: list[tuple[Task, dict[str, Any]]] = []
    held_out: list[tuple[float, int]] = []

    def snapshot_then_measure(task: Task) -> dict[str, float]:
        """Called by reproduce on the task as built, before the search (and again after it)."""
        if not trained:
            trained.append((task, state(task.aleph)))
            held_out.append(check_held_out_parts(name, task))
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

    # the held-out loss the search reports is the one observed before it, and its gain has an interval
    [(trained_held_out, items)] = held_out
    assert result.test_initial == trained_held_out == row["test_before"]
    gain = result.test_gain
    assert gain is not None and row["test_gain"] == gain.as_dict()
    if PARTS[name] is None:
        assert gain.low is None and gain.high is None and gain.p_value is None
    else:
        assert gain.low is not None and gain.high is not None and gain.low <= gain.value <= gain.high
        assert gain.n == items
        assert f"{gain.value:.4g} [{gain.low:.4g}, {gain.high:.4g}]" in (tmp_path / "results.md").read_text()


def check_held_out_parts(name: str, task: Task) -> tuple[float, int]:
    """``heldout.observe`` of the trained model shows the parts of the held-out loss in the experiment's
    form and gives the value the old code computed; returns that value and the number of items."""
    evidence = heldout.observe(task.test_loss, task.aleph.model)
    old = float(OLD_HELD_OUT[name](task))
    if PARTS[name] == "per_sample":
        assert evidence.outputs is None and evidence.per_sample is not None
        assert evidence.per_sample.ndim == 1 and evidence.per_sample.size > 1
        # the old code took 1 − mean(...), the parts' mean is mean(1 − ...): equal but for the last bit
        assert abs(evidence.loss - old) <= 2 * np.spacing(abs(old))
        return evidence.loss, evidence.per_sample.size
    if PARTS[name] == "outputs":
        assert evidence.per_sample is None and evidence.outputs is not None
        assert len(evidence.outputs) == len(task.test_loss.targets) > 1
        assert evidence.loss == old == task.test_loss.metric(evidence.outputs, task.test_loss.targets)
        return evidence.loss, len(evidence.outputs)
    assert evidence.per_sample is None and evidence.outputs is None and evidence.loss == old
    return evidence.loss, 1


def test_every_experiment_states_the_form_of_its_held_out_parts() -> None:
    """A new experiment says here how its held-out loss shows its parts, and how it was one float."""
    assert set(PARTS) == set(OLD_HELD_OUT) == set(NAMES)
