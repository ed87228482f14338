"""The evaluations of a store as a table, and each run's best candidate by ℵ-scalar name.

Pure functions of a store's ``settings()`` (whose ``space`` is the ℵ-space's signature) and its
``evaluations()``: they work on a store that a run is still writing, and need no model. One row per
evaluation: ``run, index, status, loss, best_so_far, wall_time, error``, then one column per ℵ-scalar
(labelled as :func:`afterlearner.space.labels_of` does) holding the candidate in searched units:
offsets, factors, hyperparameter values. ``best_so_far`` is the running minimum of the successful
losses within the run (missing before its first success).

The functions at the end take the task's :class:`~afterlearner.space.Aleph` as well, to say what a
candidate does to the model's tensors (``afterlearner show --values --task``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from afterlearner.errors import ConfigError, StoreError
from afterlearner.space import labels_of
from afterlearner.store import Evaluation, best_evaluation

#: The columns before the ℵ-scalars, in order.
COLUMNS = ("run", "index", "status", "loss", "best_so_far", "wall_time", "error")


def columns(settings: dict[str, Any]) -> list[str]:
    """The table's header: :data:`COLUMNS`, one ``guard:<name>`` per guard, then one label per ℵ-scalar."""
    return [*COLUMNS, *(f"guard:{name}" for name in _guards(settings)), *labels_of(settings["space"])]


def _guards(settings: dict[str, Any]) -> list[str]:
    return sorted(settings.get("guards") or {})


def best_so_far_per_run(evaluations: Sequence[Evaluation]) -> list[float | None]:
    """For each evaluation, the lowest successful loss of its run up to it (None before the first)."""
    best: dict[int, float] = {}
    running: list[float | None] = []
    for evaluation in evaluations:
        if evaluation.ok and evaluation.loss < best.get(evaluation.run_index, math.inf):  # type: ignore[operator]
            best[evaluation.run_index] = evaluation.loss  # type: ignore[assignment]
        running.append(best.get(evaluation.run_index))
    return running


def best_vectors_so_far(
    evaluations: Sequence[Evaluation], size: int, runs: Sequence[dict[str, Any]] = ()
) -> np.ndarray:
    """For each evaluation, the candidate of the best-so-far loss of its run (NaN before its first success).

    One row per evaluation, ``size`` (the number of ℵ-scalars) columns: what the run would return
    if it stopped there. A run's last row is its journaled ``best_vector`` when ``runs`` has one:
    what it did return (``auto``'s final centroid may be returned over a slightly lower loss).
    """
    rows = np.full((len(evaluations), size), np.nan)
    best: dict[int, Evaluation] = {}
    last: dict[int, int] = {}
    for row, evaluation in enumerate(evaluations):
        current = best.get(evaluation.run_index)
        if evaluation.ok and (current is None or evaluation.loss <= current.loss):  # type: ignore[operator]
            best[evaluation.run_index] = evaluation
        if evaluation.run_index in best:
            rows[row] = best[evaluation.run_index].vector
        last[evaluation.run_index] = row
    for run in runs:
        if run.get("best_vector") is not None and run.get("run_index") in last:
            rows[last[run["run_index"]]] = run["best_vector"]
    return rows


def table(settings: dict[str, Any], evaluations: Sequence[Evaluation]) -> tuple[list[str], list[list[Any]]]:
    """(header, rows): one row per evaluation, in the order given (the store's: by run, then index)."""
    header = columns(settings)
    guards = _guards(settings)
    width = len(header) - len(COLUMNS) - len(guards)
    rows = []
    for evaluation, best in zip(evaluations, best_so_far_per_run(evaluations), strict=True):
        if evaluation.vector.size != width:
            raise StoreError(
                f"evaluation {evaluation.idx} of run {evaluation.run_index} has {evaluation.vector.size} "
                f"values, the store's ℵ-space has {width}"
            )
        base = [
            evaluation.run_index,
            evaluation.idx,
            evaluation.status,
            evaluation.loss,
            best,
            evaluation.wall_time,
            evaluation.error,
        ]
        base += [(evaluation.guards or {}).get(name) for name in guards]
        rows.append(base + evaluation.vector.tolist())  # Python floats: csv writes them exactly (repr)
    return header, rows


def write_csv(settings: dict[str, Any], evaluations: Sequence[Evaluation], file: str | Path | TextIO) -> None:
    """Write :func:`table` as CSV to a path or an open text stream.

    Missing values (the loss of a failure, best_so_far before a success, no error) are empty cells;
    floats are written in their shortest exact form, so ``float(cell)`` gives back the stored value.
    """
    header, rows = table(settings, evaluations)
    if isinstance(file, str | Path):
        with Path(file).open("w", newline="", encoding="utf-8") as handle:
            _write_rows(handle, header, rows)
    else:
        _write_rows(file, header, rows)


def _write_rows(handle: TextIO, header: list[str], rows: list[list[Any]]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def dataframe(settings: dict[str, Any], evaluations: Sequence[Evaluation]) -> Any:
    """:func:`table` as a pandas DataFrame (a missing loss or best_so_far is NaN), with the values
    ``pandas.read_csv`` reads from :func:`write_csv`'s file.

    pandas is optional: a :class:`ConfigError` says how to install it when it is missing.
    """
    try:
        import pandas as pd
    except ImportError as error:
        raise ConfigError(
            "afterlearner.history.dataframe needs pandas, which is not installed: pip install pandas "
            "(or use afterlearner.history.table / write_csv, which need nothing)"
        ) from error
    header, rows = table(settings, evaluations)
    frame = pd.DataFrame(rows, columns=header)
    return frame.astype({"loss": float, "best_so_far": float, "wall_time": float})


# -- the best candidate of each run, by name -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Best:
    """A run's best candidate: its vector, its ℵ-loss and its index in the run (None if not journaled)."""

    vector: np.ndarray
    loss: float | None
    index: int | None


def best_of_run(run: dict[str, Any], evaluations: Sequence[Evaluation]) -> Best | None:
    """The best candidate of one run: the run's recorded ``best_vector``, else its best journaled evaluation.

    A run that was killed has no ``best_vector`` yet; its evaluations still say what it found. None
    when the run has no successful evaluation.
    """
    if run.get("best_vector") is not None:
        vector = run["best_vector"]
        matches = [e for e in evaluations if e.ok and np.array_equal(e.vector, vector)]
        index = matches[-1].idx if matches else None
        return Best(vector, run.get("best_loss"), index)
    best = best_evaluation(list(evaluations))
    return None if best is None else Best(best.vector, best.loss, best.idx)


def searched_units(signature: list[dict[str, Any]]) -> list[str]:
    """How each ℵ-scalar is searched: ``offset`` (added), ``factor`` (multiplied) or ``value`` (set)."""
    units: list[str] = []
    for entry in signature:
        if entry.get("kind") != "tensor":
            unit = "value"
        else:
            unit = "offset" if entry["mode"] == "offset" else "factor"
        units.extend([unit] * int(entry["size"]))
    return units


def trained_vector(signature: list[dict[str, Any]], first: np.ndarray) -> np.ndarray:
    """The trained model in searched units: 0 for offsets, 1 for factors, and, for hyperparameters,
    their entry in ``first`` (the first evaluation of every run is the trained model)."""
    units = searched_units(signature)
    if first.size != len(units):
        raise StoreError(f"a candidate has {first.size} values, the store's ℵ-space has {len(units)}")
    identity = {"offset": 0.0, "factor": 1.0}
    return np.array([identity.get(unit, value) for unit, value in zip(units, first.tolist(), strict=True)])


@dataclass(frozen=True, slots=True)
class ScalarValue:
    """One ℵ-scalar of a best candidate, in searched units, beside the trained model's."""

    label: str
    searched: str
    trained: float
    best: float

    @property
    def change(self) -> float:
        return self.best - self.trained


def scalar_values(
    settings: dict[str, Any], evaluations: Sequence[Evaluation], best: Best
) -> list[ScalarValue]:
    """Every ℵ-scalar of a run's best candidate by name; ``evaluations`` are that run's, in order."""
    if not evaluations:
        raise StoreError("a run without evaluations has no trained value to compare with")
    signature = settings["space"]
    trained = trained_vector(signature, evaluations[0].vector)
    return [
        ScalarValue(label, unit, trained_value, best_value)
        for label, unit, trained_value, best_value in zip(
            labels_of(signature),
            searched_units(signature),
            trained.tolist(),
            best.vector.tolist(),
            strict=True,
        )
    ]


# -- what the best candidate does to the model (needs the task's ℵ-space) -------------------------


def check_space(aleph: Any, settings: dict[str, Any], where: str = "the store") -> None:
    """Refuse an ℵ-space other than the one the store was made with (names, modes, shapes, ranges)."""
    ours = json.loads(json.dumps(aleph.signature()))  # the store keeps it as JSON: tuples → lists
    theirs = settings["space"]
    if ours == theirs:
        return
    differing = next(
        (f"entry {i}: {a} vs {b}" for i, (a, b) in enumerate(zip(theirs, ours, strict=False)) if a != b),
        f"{len(theirs)} entries vs {len(ours)}",
    )
    raise StoreError(
        f"the task's ℵ-space is not the one {where} was made with ({differing}); "
        f"store: {_entry_names(theirs)}; task: {_entry_names(ours)}"
    )


def _entry_names(signature: list[dict[str, Any]]) -> str:
    return ", ".join(f"{entry['name']}[{entry['size']}]" for entry in signature)


@dataclass(frozen=True, slots=True)
class ModelValue:
    """What one ℵ-scalar changes in the model, trained and retrofitted.

    ``what`` is ``element`` (the tensor element it shifts or scales), ``‖row‖``, ``‖column‖`` or
    ``‖tensor‖`` (the L2 norm of the slice one factor or offset applies to: one number a person can
    compare, rather than every element), or ``value`` (a hyperparameter).
    """

    what: str
    trained: float
    retrofitted: float


def model_values(aleph: Any, vector: np.ndarray) -> list[ModelValue]:
    """One :class:`ModelValue` per ℵ-scalar of ``vector``, computed without touching the model."""
    trained, retrofitted = aleph.values(aleph.identity()), aleph.values(vector)
    values: list[ModelValue] = []
    for entry in aleph.signature():
        name = entry["name"]
        if entry["kind"] != "tensor":
            values.append(ModelValue("value", float(trained[name]), float(retrofitted[name])))
            continue
        what = "element" if entry["per"] == "element" else f"‖{entry['per']}‖"
        before, after = _per_scalar(trained[name], entry["per"]), _per_scalar(retrofitted[name], entry["per"])
        values.extend(ModelValue(what, b, a) for b, a in zip(before.tolist(), after.tolist(), strict=True))
    return values


def _per_scalar(tensor: np.ndarray, per: str) -> np.ndarray:
    """The number each scalar of a tensor entry governs: its element, or the norm of its row/column/tensor."""
    tensor = np.asarray(tensor, dtype=float)
    if per == "element":
        return tensor.ravel()
    if per == "row":
        return np.linalg.norm(tensor.reshape(tensor.shape[0], -1), axis=1)
    if per == "column":
        return np.linalg.norm(np.moveaxis(tensor, 1, 0).reshape(tensor.shape[1], -1), axis=1)
    return np.array([np.linalg.norm(tensor.ravel())])


@dataclass(frozen=True, slots=True)
class TensorChange:
    """A tensor entry of the best candidate as a whole: its norm before and after, and how much moved."""

    name: str
    shape: tuple[int, ...]
    searched: str
    norm_trained: float
    norm_retrofitted: float
    max_change: float
    changed: int
    elements: int


def tensor_changes(aleph: Any, vector: np.ndarray) -> list[TensorChange]:
    """One :class:`TensorChange` per tensor entry of the ℵ-space."""
    trained, retrofitted = aleph.values(aleph.identity()), aleph.values(vector)
    changes = []
    for entry in aleph.signature():
        if entry["kind"] != "tensor":
            continue
        before = np.asarray(trained[entry["name"]], dtype=float)
        after = np.asarray(retrofitted[entry["name"]], dtype=float)
        unit = "offset" if entry["mode"] == "offset" else "factor"
        difference = np.abs(after - before)
        changes.append(
            TensorChange(
                entry["name"],
                tuple(before.shape),
                f"{unit} per {entry['per']}",
                float(np.linalg.norm(before.ravel())),
                float(np.linalg.norm(after.ravel())),
                float(difference.max()) if difference.size else 0.0,
                int(np.count_nonzero(difference)),
                int(before.size),
            )
        )
    return changes
