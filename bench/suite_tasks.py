"""The retrofit tasks of the optimizer suite (``bench/suite.py``): each builds an ``al.Task`` with an ℵ-set
and a disjoint held-out set, once per suite run.

Where a task comes from outside this file, it comes through one small function, so that a move of
the code it uses is a one-line fix: :func:`demo_module` (the digits demo), :func:`experiment_task`
(the re-created experiments, at their reduced size) and :func:`example` (the task files in
``examples/``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from sklearn.datasets import load_wine
from sklearn.metrics import f1_score

import afterlearner as al

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def demo_module() -> ModuleType:
    """The digits demo (``make_data``, ``train``, ``make_task``, ``balanced_error``)."""
    return importlib.import_module("afterlearner.experiments.digits.task")


def experiment_task(name: str) -> al.Task:
    """An experiment of :mod:`afterlearner.experiments` at its reduced size (the one its tests run)."""
    from afterlearner import experiments

    return experiments.get(name).task(reduced=True)


def example(name: str) -> ModuleType:
    """``examples/<name>.py`` as a module (imported once)."""
    module_name = f"afterlearner_suite_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class SuiteTask:
    """A task of the suite: how to build it, and what kind of retrofit it is."""

    name: str
    kind: str  # one line: what is retrofitted against what
    classifier: bool
    build: Callable[[], al.Task]


# -- tasks built here --------------------------------------------------------------------------------------
def digits_many() -> al.Task:
    """The demo's setting (another split and training seed) with 2100 ℵ-scalars: every weight and bias of
    the hidden layer as offsets, the head's bias and row scales, for balanced error."""
    demo = demo_module()
    data = demo.make_data(1)
    model = demo.train(data, 1)
    aleph = (
        al.Aleph(model)
        .add("hidden.0.weight")
        .add("hidden.0.bias")
        .add("fc.bias")
        .add("fc.weight", mode="scale", per="row")
    )
    return al.Task(
        aleph=aleph,
        loss=lambda m: demo.balanced_error_of(m, data.x_aleph, data.y_aleph),
        test_loss=lambda m: demo.balanced_error_of(m, data.x_test, data.y_test),
        name="digits-2100",
        n=len(data.y_aleph),
    )


def digits_head() -> al.Task:
    """The demo's setting (another split and training seed) with every weight of the head as an offset and
    its bias (330 ℵ-scalars), for balanced error."""
    demo = demo_module()
    data = demo.make_data(2)
    model = demo.train(data, 2)
    aleph = al.Aleph(model).add("fc.weight").add("fc.bias")
    return al.Task(
        aleph=aleph,
        loss=lambda m: demo.balanced_error_of(m, data.x_aleph, data.y_aleph),
        test_loss=lambda m: demo.balanced_error_of(m, data.x_test, data.y_test),
        name="digits-330",
        n=len(data.y_aleph),
    )


def _f1_error(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """1 − F1 of the positive class (malignant), the decision being ``logit > 0``."""
    flagged = model(x) > 0
    positive = y > 0.5
    true_positives = int((flagged & positive).sum())
    wrong = int((flagged & ~positive).sum()) + int((~flagged & positive).sum())
    return 1.0 - 2 * true_positives / (2 * true_positives + wrong) if true_positives else 1.0


def breast_cancer_f1() -> al.Task:
    """The screener of ``examples/recall_at_precision.py`` (trained on too few malignant samples),
    retrofitted for the F1 of the malignant class: output bias and hidden-unit factors (17)."""
    screening = example("recall_at_precision")
    split = screening.make_split(0)
    model = screening.train(split)
    aleph = al.Aleph(model).add("head.bias").add("head.weight", mode="scale", per="column")
    return al.Task(
        aleph=aleph,
        loss=lambda m: _f1_error(m, split.x_aleph, split.y_aleph),
        test_loss=lambda m: _f1_error(m, split.x_test, split.y_test),
        name="breast-cancer-f1",
        n=len(split.y_aleph),
    )


class WineNet(torch.nn.Module):
    """13 features → 16 hidden units → 3 cultivars."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(13, 16), torch.nn.ReLU())
        self.head = torch.nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


#: Wine: per class, this many samples in the ℵ-set and in the held-out set; training keeps KEEP of the rest.
WINE_ALEPH, WINE_HELD_OUT = 15, 15
WINE_KEEP = (1.0, 0.4, 0.2)


def wine_macro_f1(head: str = "factors") -> al.Task:
    """An MLP on scikit-learn's wine trained with the third cultivar under-represented (a fifth of its
    pool kept), retrofitted for macro-F1 on balanced ℵ and held-out sets (15 per class each): the output
    bias and, with ``head="factors"``, one factor per hidden unit (19 scalars), with ``head="weights"``
    every weight of the output layer as an offset (51 scalars)."""
    wine = load_wine()
    x, y = wine.data.astype(np.float32), wine.target
    rng = np.random.default_rng(0)
    train, aleph_part, test = [], [], []
    for label, keep in enumerate(WINE_KEEP):
        members = rng.permutation(np.flatnonzero(y == label))
        aleph_part.extend(members[:WINE_ALEPH])
        test.extend(members[WINE_ALEPH : WINE_ALEPH + WINE_HELD_OUT])
        pool = members[WINE_ALEPH + WINE_HELD_OUT :]
        train.extend(pool[: max(2, round(keep * len(pool)))])
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    x = (x - mean) / std
    tensors = [(torch.from_numpy(x[part]), y[part]) for part in map(np.array, (train, aleph_part, test))]
    (x_train, y_train), (x_aleph, y_aleph), (x_test, y_test) = tensors
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = WineNet()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        targets = torch.from_numpy(y_train).long()
        for _ in range(200):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x_train), targets).backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()

    def macro_f1_error(m: torch.nn.Module, x_set: torch.Tensor, y_set: np.ndarray) -> float:
        predicted = m(x_set).argmax(dim=1).numpy()
        return 1.0 - float(f1_score(y_set, predicted, average="macro", zero_division=0))

    aleph = al.Aleph(model).add("head.bias")
    if head == "factors":
        aleph.add("head.weight", mode="scale", per="column")
    else:
        aleph.add("head.weight")
    return al.Task(
        aleph=aleph,
        loss=lambda m: macro_f1_error(m, x_aleph, y_aleph),
        test_loss=lambda m: macro_f1_error(m, x_test, y_test),
        name="wine-macro-f1" if head == "factors" else "wine-head-51",
        n=len(y_aleph),
    )


TASKS: list[SuiteTask] = [
    SuiteTask(
        "digits-demo",
        "the demo: imbalanced digits MLP, head bias + row scales (20) for balanced error",
        True,
        lambda: demo_module().make_task(0),
    ),
    SuiteTask(
        "digits-2100",
        "imbalanced digits MLP, hidden layer offsets + head (2100) for balanced error",
        True,
        digits_many,
    ),
    SuiteTask(
        "digits-330",
        "imbalanced digits MLP, every head weight and bias as offsets (330) for balanced error",
        True,
        digits_head,
    ),
    SuiteTask(
        "breast-cancer-f1",
        "screener trained on few malignant samples, head bias + column scales (17) for F1",
        True,
        breast_cancer_f1,
    ),
    SuiteTask(
        "breast-cancer-recall@p",
        "examples/recall_at_precision.py: bounded column scales + bias (17), recall at precision ≥ 0.9",
        True,
        lambda: example("recall_at_precision").task(),
    ),
    SuiteTask(
        "wine-macro-f1",
        "wine MLP trained with a rare cultivar, head bias + column scales (19) for macro-F1",
        True,
        wine_macro_f1,
    ),
    SuiteTask(
        "wine-head-51",
        "the wine MLP, every head weight and bias as offsets (51) for macro-F1",
        True,
        lambda: wine_macro_f1("weights"),
    ),
    SuiteTask(
        "digits-pipeline-hyper",
        "examples/sklearn_threshold.py: 11 prediction-time hyperparameters only, for macro-F1",
        True,
        lambda: example("sklearn_threshold").task(),
    ),
    SuiteTask(
        "trip-duration-band",
        "examples/regression_calibration.py: output scale + shift (2) for the ±15% band criterion",
        False,
        lambda: example("regression_calibration").task(),
    ),
    SuiteTask(
        "depth-delta1",
        "depth experiment, reduced: output scale/shift + last conv (19) for 1 − δ1",
        False,
        lambda: experiment_task("depth"),
    ),
    SuiteTask(
        "image-generator-fd",
        "image-generator experiment, reduced: latent ψ, μ + layer scales (12) for a Fréchet distance",
        False,
        lambda: experiment_task("image-generator"),
    ),
]
