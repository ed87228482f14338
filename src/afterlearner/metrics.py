"""NumPy implementations of the built-in classification metrics, for one candidate or a population.

The ℵ-loss is evaluated thousands of times, so its metric must cost little next to the forward
pass. scikit-learn's metrics validate and re-derive the label set on every call (about a
millisecond each); the counts they rest on are a few ``bincount`` calls. Here each metric is
computed from three count tables — per class: true positives, predicted, true — built for a whole
population at once (the predictions of λ candidates, shape ``(λ, n)``), then finished per candidate
with the same NumPy operations scikit-learn performs, so the floats are identical to
``1 - balanced_accuracy_score(...)`` and ``1 - f1_score(..., zero_division=0)`` (property-tested in
``tests/evaluators/test_metrics.py``). One candidate is a population of one: both forms share the
code, so the batched evaluator's population scores equal the one-by-one scores.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from afterlearner.errors import ConfigError

#: The ``average`` settings of :func:`f1_errors` (scikit-learn's, less the multilabel ``samples``).
AVERAGES = ("macro", "micro", "weighted", "binary")


class Counts(NamedTuple):
    """Per-class counts of a population's predictions: ``tp`` and ``predicted`` are ``(λ, classes)``,
    ``true`` is ``(classes,)`` (the targets are shared). Classes are the sorted labels."""

    tp: np.ndarray
    predicted: np.ndarray
    true: np.ndarray
    labels: np.ndarray


def class_codes(targets: Any) -> np.ndarray:
    """The targets as a 1-D integer array of class labels (what the count tables index).

    Integer and boolean targets are taken as they are; floats must hold whole numbers (as
    scikit-learn's classification metrics require).
    """
    truth = np.asarray(targets)
    if truth.ndim != 1:
        truth = truth.reshape(len(truth)) if truth.size == len(truth) else truth
    if truth.ndim != 1:
        raise ConfigError(f"classification targets must be one label per sample, got shape {truth.shape}")
    if truth.dtype.kind in "biu":
        return truth.astype(np.int64, copy=False)
    if truth.dtype.kind == "f" and np.all(np.isfinite(truth)) and np.all(truth == np.round(truth)):
        return truth.astype(np.int64)
    raise ConfigError(f"classification targets must be integer class labels, got dtype {truth.dtype}")


def counts(predicted: np.ndarray, truth: np.ndarray) -> Counts:
    """Count tables of λ candidates' integer predictions ``(λ, n)`` against integer ``truth`` ``(n,)``."""
    predicted = np.asarray(predicted)
    if predicted.ndim == 1:
        predicted = predicted[None]
    size, n = predicted.shape
    if len(truth) != n:
        raise ConfigError(f"{n} predictions but {len(truth)} targets")
    if n == 0:
        raise ConfigError("no samples to score")
    low = min(int(truth.min()), int(predicted.min()))
    high = max(int(truth.max()), int(predicted.max()))
    if low >= 0 and high < 4 * n + 64:  # labels are (small) class indices: count them directly
        labels = np.arange(high + 1)
        true_codes, pred_codes = truth, predicted
    else:  # arbitrary integers: count their ranks among the labels present
        labels = np.unique(np.concatenate([truth, predicted.ravel()]))
        true_codes = np.searchsorted(labels, truth)
        pred_codes = np.searchsorted(labels, predicted)
    classes = len(labels)
    offsets = (np.arange(size) * classes)[:, None]
    flat_pred = (pred_codes + offsets).ravel()
    hits = (pred_codes == true_codes[None]).ravel()
    tp = np.bincount(flat_pred[hits], minlength=size * classes).reshape(size, classes)
    predicted_counts = np.bincount(flat_pred, minlength=size * classes).reshape(size, classes)
    true_counts = np.bincount(true_codes, minlength=classes)
    return Counts(tp, predicted_counts, true_counts, labels)


def balanced_errors(table: Counts) -> list[float]:
    """1 − balanced accuracy of each candidate: one minus the mean recall over the classes present in
    the targets (classes only predicted are left out, as scikit-learn does after its warning)."""
    present = table.true > 0
    recall = table.tp[:, present] / table.true[present]
    return [1.0 - float(value) for value in np.mean(recall, axis=1)]


def f1_errors(table: Counts, average: str = "macro") -> list[float]:
    """1 − F1 of each candidate, ``f1_score(..., average=average, zero_division=0)``'s arithmetic.

    ``macro``: the mean over the labels present in the targets or the predictions; ``weighted``: the
    mean weighted by each label's true count; ``micro``: pooled counts; ``binary``: label 1 of binary
    targets (an error, as in scikit-learn, when more than two labels occur).
    """
    if average not in AVERAGES:
        raise ConfigError(f"average must be one of {AVERAGES}, got {average!r}")
    if average == "micro":
        tp, predicted = table.tp.sum(axis=1), table.predicted.sum(axis=1)
        true = np.full(len(tp), table.true.sum())
        return [1.0 - float(value) for value in _f_scores(tp, predicted, true)]
    if average == "binary":
        return [_binary_f1_error(table, row) for row in range(len(table.tp))]
    # macro and weighted average over the labels in the targets or in each candidate's predictions:
    # the candidates sharing a label set are finished together
    present = (table.true[None] + table.predicted) > 0
    losses = np.empty(len(present))
    todo = np.ones(len(present), dtype=bool)
    while todo.any():
        labels = present[np.argmax(todo)]
        rows = todo & (present == labels[None]).all(axis=1)
        todo &= ~rows
        f_score = _f_scores(table.tp[rows][:, labels], table.predicted[rows][:, labels], table.true[labels])
        if average == "weighted":
            weights = table.true[labels].astype(np.float64)
            losses[rows] = 1.0 - np.sum(f_score * weights, axis=1) / np.sum(weights)
        else:
            losses[rows] = 1.0 - np.mean(f_score, axis=1)
    return [float(value) for value in losses]


def _binary_f1_error(table: Counts, row: int) -> float:
    """1 − F1 of label 1 for one candidate; refused, as by scikit-learn, beyond binary labels."""
    labels = table.labels[(table.true + table.predicted[row]) > 0]
    if len(labels) > 2:
        raise ConfigError(f"average='binary' needs at most two labels, got {len(labels)}")
    if len(labels) == 2 and 1 not in labels:
        raise ConfigError(f"average='binary' scores label 1, which is not among {labels.tolist()}")
    where = np.flatnonzero(table.labels == 1)
    if not len(where):
        return 1.0  # label 1 occurs nowhere: F1 is 0 by zero_division=0
    tp, predicted, true = table.tp[row, where], table.predicted[row, where], table.true[where]
    return 1.0 - float(_f_scores(tp, predicted, true)[0])


def _f_scores(tp: np.ndarray, predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """F1 = 2·tp / (true + predicted), elementwise, 0 where both are 0; scikit-learn's operations."""
    return _divide(2.0 * tp.astype(np.float64), 1.0 * true.astype(np.float64) + predicted.astype(np.float64))


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with 0 where the denominator is 0 (``zero_division=0``)."""
    mask = denominator == 0
    safe = denominator.copy()
    safe[mask] = 1
    result = numerator / safe
    result[mask] = 0.0
    return result


def zero_one_errors(decided: np.ndarray, truth: np.ndarray) -> list[float]:
    """Fraction of samples where each candidate's decision ``(λ, n)`` differs from ``truth`` ``(n,)``."""
    decided = np.asarray(decided)
    if decided.ndim == 1:
        decided = decided[None]
    return [float(value) for value in np.mean(decided != np.asarray(truth)[None], axis=1)]
