"""Structured ℵ-losses: a metric of a forward pass over the ℵ-dataset, visible to the library.

An opaque ``loss(model) -> float`` can be anything (a game, a human), so the library can only call
it. A :class:`DatasetLoss` is still such a callable, but it also tells the library what it computes:
the inputs and targets of the ℵ-dataset, the forward function and the metric on (outputs, targets).
Seeing the forward pass lets the evaluators cache the frozen prefix of the network, batch a
population of candidates in one pass and run the metric once per candidate on the outputs.

>>> loss = DatasetLoss(x_aleph, y_aleph, metric=error_rate, batch_size=256)
>>> loss(model)   # the same float the hand-written loss would return
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from afterlearner import metrics
from afterlearner.checks import check_positive_int
from afterlearner.errors import ConfigError

Forward = Callable[[torch.nn.Module, Any], torch.Tensor]
Metric = Callable[[torch.Tensor, Any], float]


def model_forward(model: torch.nn.Module, inputs: Any) -> torch.Tensor:
    """The default forward: the model's own, ``model(inputs)`` (a tuple of inputs is unpacked)."""
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


def _as_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def predictions(outputs: torch.Tensor) -> np.ndarray:
    """Class predictions of classifier outputs: argmax over the last dimension (the first maximum;
    NaN counts as the maximum). NumPy's argmax where it can, the same indices as torch's and several
    times faster on a population's outputs ``(λ, n, classes)``."""
    values = outputs.detach()
    if values.dim() < 2 or values.shape[-1] < 2:
        _not_class_scores(values)
    if values.dtype in (torch.float32, torch.float64):
        return values.cpu().numpy().argmax(axis=-1)
    return values.argmax(dim=-1).cpu().numpy()


def _not_class_scores(outputs: torch.Tensor) -> None:
    """Refuse outputs that are not per-class scores: the argmax of one score per sample would be one
    class for every sample (or one index for the whole set), a silently wrong metric."""
    raise ConfigError(
        "class predictions need per-class scores, shape (samples, classes) with 2 or more classes; got "
        f"outputs of shape {tuple(outputs.shape)}. For one score per sample (a binary classifier's "
        "logit), use the metric al.losses.threshold_error(threshold)"
    )


def _one_candidate(outputs: torch.Tensor) -> torch.Tensor:
    """One candidate's outputs ``(n, classes)`` as a population of one, for the population forms."""
    if outputs.dim() < 2:
        _not_class_scores(outputs)
    return outputs[None]


def error_rate(outputs: torch.Tensor, targets: Any) -> float:
    """Fraction of misclassified samples (1 − accuracy); outputs are per-class scores."""
    return float(np.mean(predictions(outputs) != _as_numpy(targets)))


def _error_rates(outputs: torch.Tensor, targets: Any) -> list[float]:
    """:func:`error_rate` of each candidate's outputs ``(λ, n, classes)`` at once (same floats)."""
    return [float(value) for value in np.mean(predictions(outputs) != _as_numpy(targets)[None], axis=1)]


#: A metric may carry ``population(outputs of λ candidates, targets) -> λ floats``, equal to calling it
#: on each candidate's outputs; the batched evaluator then scores a whole population in one call.
error_rate.population = _error_rates  # type: ignore[attr-defined]
#: A metric that is the mean of 0/1 per-sample losses says so: the bound then takes its kl form.
error_rate.zero_one = True  # type: ignore[attr-defined]


def balanced_error(outputs: torch.Tensor, targets: Any) -> float:
    """1 − balanced accuracy: the mean over classes of the per-class error rate.

    The same float as ``1 - sklearn.metrics.balanced_accuracy_score(targets, predictions)``,
    computed with NumPy counts (:mod:`afterlearner.metrics`) at a small fraction of its cost.
    """
    return _balanced_errors(_one_candidate(outputs), targets)[0]


def _balanced_errors(outputs: torch.Tensor, targets: Any) -> list[float]:
    """:func:`balanced_error` of each candidate's outputs ``(λ, n, classes)`` at once (same floats)."""
    return metrics.balanced_errors(
        metrics.counts(predictions(outputs), metrics.class_codes(_as_numpy(targets)))
    )


balanced_error.population = _balanced_errors  # type: ignore[attr-defined]


class F1Loss:
    """The metric ``1 − F1`` of class predictions, scikit-learn's ``f1_score(average=..., zero_division=0)``
    computed with NumPy counts; ``population`` scores λ candidates' outputs at once (same floats)."""

    zero_one = False

    def __init__(self, average: str = "macro") -> None:
        if average not in metrics.AVERAGES:
            raise ConfigError(f"average must be one of {metrics.AVERAGES}, got {average!r}")
        self.average = average
        self.__name__ = f"f1_loss_{average}"

    def __call__(self, outputs: torch.Tensor, targets: Any) -> float:
        return self.population(_one_candidate(outputs), targets)[0]

    def population(self, outputs: torch.Tensor, targets: Any) -> list[float]:
        """The metric of each candidate's outputs ``(λ, n, classes)``."""
        table = metrics.counts(predictions(outputs), metrics.class_codes(_as_numpy(targets)))
        return metrics.f1_errors(table, self.average)

    def __repr__(self) -> str:
        return f"f1_loss({self.average!r})"


def f1_loss(average: str = "macro") -> Metric:
    """A metric computing 1 − F1 (scikit-learn's ``f1_score`` with this ``average``) on class predictions.

    ``average``: ``"macro"``, ``"micro"``, ``"weighted"`` or ``"binary"`` (label 1 of binary targets).
    """
    return F1Loss(average)


class ThresholdError:
    """For one-score binary outputs: the fraction of samples where ``score > threshold`` ≠ target."""

    zero_one = True

    def __init__(self, threshold: float = 0.0) -> None:
        self.threshold = threshold
        self.__name__ = f"threshold_error_{threshold}"

    def __call__(self, outputs: torch.Tensor, targets: Any) -> float:
        return self.population(outputs[None], targets)[0]

    def population(self, outputs: torch.Tensor, targets: Any) -> list[float]:
        """The metric of each candidate's outputs ``(λ, n, ...)`` (the first score of each sample)."""
        decided = (
            (outputs.reshape(len(outputs), outputs.shape[1], -1)[:, :, 0] > self.threshold).cpu().numpy()
        )
        return metrics.zero_one_errors(decided, _as_numpy(targets).astype(bool))

    def __repr__(self) -> str:
        return f"threshold_error({self.threshold!r})"


def threshold_error(threshold: float = 0.0) -> Metric:
    """A metric for one-score binary outputs: fraction of samples where ``score > threshold`` ≠ target."""
    return ThresholdError(threshold)


def is_zero_one(loss: Any) -> bool:
    """Whether a loss is the mean of 0/1 per-sample losses (a DatasetLoss whose metric says so)."""
    return bool(getattr(getattr(loss, "metric", None), "zero_one", False))


def _split(inputs: Any, batch_size: int | None) -> list[Any]:
    """Batches of a tensor or of a tuple of tensors sharing their first dimension."""
    tensors = inputs if isinstance(inputs, tuple) else (inputs,)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ConfigError(
            "DatasetLoss inputs must be a tensor, a tuple of tensors, or a DataLoader of (x, y)"
        )
    count = len(tensors[0])
    if any(len(t) != count for t in tensors):
        raise ConfigError(f"the input tensors have different lengths: {[len(t) for t in tensors]}")
    if count == 0:
        raise ConfigError("the ℵ-dataset is empty")
    size = count if batch_size is None else batch_size
    check_positive_int("batch_size", size)
    chunks = [tuple(t[i : i + size] for t in tensors) for i in range(0, count, size)]
    return [chunk if isinstance(inputs, tuple) else chunk[0] for chunk in chunks]


def _materialize(loader: Iterable[Any]) -> tuple[list[Any], Any]:
    """Read a DataLoader (or any iterable of ``(x, y)`` pairs) once, in order: inputs and all targets."""
    batches, targets = [], []
    for item in loader:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ConfigError("a DataLoader given to DatasetLoss must yield (inputs, targets) pairs")
        x, y = item
        batches.append(tuple(x) if isinstance(x, list) else x)
        targets.append(y)
    if not batches:
        raise ConfigError("the DataLoader yielded no batch")
    if all(isinstance(y, torch.Tensor) for y in targets):
        return batches, torch.cat(targets)
    return batches, np.concatenate([_as_numpy(y) for y in targets])


def _length(batch: Any) -> int:
    return len(batch[0]) if isinstance(batch, tuple) else len(batch)


class DatasetLoss:
    """``metric(forward(model, inputs), targets)`` over the ℵ-dataset, evaluated in batches.

    ``inputs``: a tensor (or tuple of tensors) of the ℵ-dataset with ``targets`` beside it, or a
    DataLoader yielding ``(inputs, targets)`` (read once, in order, at construction: a shuffling
    loader is frozen into one order). ``forward(model, inputs)`` defaults to ``model(inputs)``.
    ``metric(outputs, targets) -> float`` sees the outputs of all batches concatenated along the
    first dimension. ``batch_size`` splits tensor inputs (default: one batch).

    Calling it, ``loss(model)``, computes exactly that under ``torch.no_grad()``, so it works
    everywhere an opaque loss does; the evaluators use its parts to go faster.
    """

    def __init__(
        self,
        inputs: torch.Tensor | tuple[torch.Tensor, ...] | Iterable[Any],
        targets: Any = None,
        metric: Metric = error_rate,
        forward: Forward | None = None,
        batch_size: int | None = None,
    ) -> None:
        if not callable(metric):
            raise ConfigError(
                f"metric must be callable as metric(outputs, targets), got {type(metric).__name__}"
            )
        if forward is not None and not callable(forward):
            raise ConfigError(
                f"forward must be callable as forward(model, inputs), got {type(forward).__name__}"
            )
        if isinstance(inputs, (torch.Tensor, tuple)):
            if targets is None:
                raise ConfigError("DatasetLoss needs targets beside tensor inputs")
            self.batches = _split(inputs, batch_size)
            self.targets = targets
        else:
            if targets is not None:
                raise ConfigError("a DataLoader brings its own targets: do not pass targets too")
            if batch_size is not None:
                raise ConfigError("batch_size applies to tensor inputs; a DataLoader has its own")
            self.batches, self.targets = _materialize(inputs)
        self.metric = metric
        self.forward = forward or model_forward
        self.n = sum(_length(batch) for batch in self.batches)
        if len(self.targets) != self.n:
            raise ConfigError(f"{self.n} inputs but {len(self.targets)} targets")

    def outputs(self, model: torch.nn.Module, batch_indices: Sequence[int] | None = None) -> torch.Tensor:
        """The forward pass over all batches, concatenated (call under ``torch.no_grad()``)."""
        indices = range(len(self.batches)) if batch_indices is None else batch_indices
        return concat([self.run_batch(model, i) for i in indices])

    def run_batch(self, model: torch.nn.Module, index: int) -> torch.Tensor:
        """The forward pass of one batch."""
        out = self.forward(model, self.batches[index])
        if not isinstance(out, torch.Tensor):
            raise ConfigError(
                f"the forward function returned {type(out).__name__}; DatasetLoss needs a tensor"
            )
        return out

    def score(self, outputs: torch.Tensor) -> float:
        """The metric of concatenated outputs."""
        return self.metric(outputs, self.targets)

    def __call__(self, model: torch.nn.Module) -> float:
        with torch.no_grad():
            return self.score(self.outputs(model))

    def __repr__(self) -> str:
        name = getattr(self.metric, "__name__", type(self.metric).__name__)
        return f"DatasetLoss(n={self.n}, batches={len(self.batches)}, metric={name})"


def concat(outputs: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """Concatenate per-batch outputs (a single batch is returned as is)."""
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=dim)
