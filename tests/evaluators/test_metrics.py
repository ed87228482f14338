"""The NumPy metrics give scikit-learn's floats on random inputs, and their population forms the
one-by-one floats (so the batched evaluator scores a population exactly as the sequential one)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from afterlearner.errors import ConfigError
from afterlearner.losses import balanced_error, error_rate, f1_loss, threshold_error
from afterlearner.metrics import class_codes


@st.composite
def cases(draw: st.DrawFn) -> tuple[torch.Tensor, np.ndarray]:
    """λ candidates' class scores ``(λ, n, classes)`` and integer targets; the targets' labels are
    class indices, or shifted/spread so that some are never predicted (the general counting path)."""
    size = draw(st.integers(1, 4))
    n = draw(st.integers(1, 40))
    # >8: pairwise sums; one class is refused (a single score per sample: test_losses.py)
    classes = draw(st.one_of(st.integers(2, 6), st.integers(7, 40)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    labels = draw(
        st.sampled_from(
            [np.arange(classes), np.arange(classes) + 2, np.arange(classes) * 1000 - 7, np.array([0, 1])]
        )
    )
    targets = rng.choice(labels[: draw(st.integers(1, len(labels)))], size=n)
    # few distinct scores make ties, and a candidate may predict only some classes
    outputs = torch.from_numpy(rng.integers(0, 3, size=(size, n, classes)).astype(np.float32))
    return outputs, targets


def _quiet(call, *args, **kwargs):  # scikit-learn warns about classes only predicted; the value stands
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


@settings(max_examples=150, deadline=None)
@given(cases())
def test_balanced_error_is_sklearns(case):
    outputs, targets = case
    expected = [
        1.0 - float(_quiet(balanced_accuracy_score, targets, out.argmax(-1).numpy())) for out in outputs
    ]
    assert [balanced_error(out, targets) for out in outputs] == expected
    assert balanced_error.population(outputs, targets) == expected
    assert balanced_error.population(outputs, torch.from_numpy(targets)) == expected


@settings(max_examples=150, deadline=None)
@given(cases(), st.sampled_from(["macro", "micro", "weighted", "binary"]))
def test_f1_loss_is_sklearns(case, average):
    outputs, targets = case
    metric = f1_loss(average)
    for out in outputs:
        predicted = out.argmax(-1).numpy()
        try:
            expected = 1.0 - float(_quiet(f1_score, targets, predicted, average=average, zero_division=0))
        except ValueError:  # binary average on more than two labels, or two without label 1
            with pytest.raises(ConfigError, match="binary"):
                metric(out, targets)
            continue
        assert metric(out, targets) == expected
        assert metric.population(out[None], targets) == [expected]  # type: ignore[attr-defined]
    if average != "binary":
        assert metric.population(outputs, targets) == [metric(out, targets) for out in outputs]  # type: ignore[attr-defined]


@settings(max_examples=100, deadline=None)
@given(cases())
def test_zero_one_metrics_are_one_minus_accuracy(case):
    outputs, targets = case
    for out in outputs:
        expected = 1.0 - accuracy_score(targets, out.argmax(-1).numpy())
        assert error_rate(out, targets) == pytest.approx(expected, abs=1e-15)
        binary = targets % 2 == 1
        decided = out[:, 0].numpy() > 0.5
        assert threshold_error(0.5)(out, binary) == pytest.approx(
            1.0 - accuracy_score(binary, decided), abs=1e-15
        )
    assert error_rate.population(outputs, targets) == [error_rate(out, targets) for out in outputs]
    binary = targets % 2 == 1
    metric = threshold_error(0.5)
    assert metric.population(outputs, binary) == [metric(out, binary) for out in outputs]  # type: ignore[attr-defined]


def test_targets_must_be_class_labels():
    assert class_codes(np.array([0.0, 2.0, 1.0])).tolist() == [0, 2, 1]
    assert class_codes(torch.tensor([[1], [0]]).numpy()).tolist() == [1, 0]
    with pytest.raises(ConfigError, match="integer class labels"):
        class_codes(np.array([0.5, 1.0]))
    with pytest.raises(ConfigError, match="integer class labels"):
        class_codes(np.array(["cat", "dog"]))
    with pytest.raises(ConfigError, match="average must be one of"):
        f1_loss("samples")
    with pytest.raises(ConfigError, match="3 predictions but 2 targets"):
        balanced_error(torch.zeros(3, 2), np.array([0, 1]))


def test_parametrised_metrics_pickle():
    """Metrics travel to worker processes with the loss: the parametrised ones are objects, not closures."""
    outputs, targets = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.2, 0.1]]), np.array([1, 1, 0])
    for metric in (f1_loss("weighted"), threshold_error(0.1)):
        copy = pickle.loads(pickle.dumps(metric))
        assert copy(outputs, targets) == metric(outputs, targets)
        assert copy.__name__ == metric.__name__  # type: ignore[attr-defined]
