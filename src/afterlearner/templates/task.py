"""An afterlearner task file, written by ``afterlearner init``. It runs as it is:

    afterlearner run THIS_FILE.py:task --store run.sqlite
    afterlearner show run.sqlite --plot curve.png

``afterlearner run`` imports this file, calls ``task()`` and retrofits what it returns. Here the
factory builds a toy problem of its own (generated data, a small classifier trained in about a
second) so that every part is shown working; replace ``make_data`` and ``train`` with loading your
data and your trained model, then adapt the ℵ-parameters and the loss.

The toy problem: three classes, the third rare in the training data, so the trained classifier
under-predicts it; what counts is the balanced error (every class weighs the same), measured on a
balanced ℵ-set and checked on a disjoint balanced held-out set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import afterlearner as al

FEATURES, CLASSES = 8, 3
#: Training samples per class: the third class is rare where the model was trained.
TRAIN_COUNTS = (600, 150, 30)
#: ℵ-set and held-out samples per class: balanced, like the data the model is judged on.
ALEPH_PER_CLASS, HELD_OUT_PER_CLASS = 100, 100


class Classifier(torch.nn.Module):
    """An MLP: ``body`` computes features, ``head`` scores the classes.

    ``logit_adjustment`` is a plain float attribute, not a parameter: the forward pass subtracts
    ``logit_adjustment × log(training class frequency)`` from the scores (0 = as trained; 1 = the
    correction that exactly undoes the training prior for a perfectly calibrated model).
    """

    def __init__(self, class_frequencies: np.ndarray, hidden: int = 32) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(FEATURES, hidden), torch.nn.ReLU())
        self.head = torch.nn.Linear(hidden, CLASSES)
        self.register_buffer("log_prior", torch.log(torch.as_tensor(class_frequencies, dtype=torch.float32)))
        self.logit_adjustment = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)) - self.logit_adjustment * self.log_prior


@dataclass
class Data:
    """Three disjoint sets: training, the ℵ-set the retrofit is tuned on, and a held-out set."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_aleph: torch.Tensor
    y_aleph: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def make_data(seed: int = 0) -> Data:
    """Gaussian classes around random centres; every sample is drawn independently."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.2, size=(CLASSES, FEATURES))

    def draw(counts: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        labels = np.repeat(np.arange(CLASSES), counts)
        x = centres[labels] + rng.normal(size=(len(labels), FEATURES))
        return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(labels)

    return Data(
        *draw(TRAIN_COUNTS), *draw((ALEPH_PER_CLASS,) * CLASSES), *draw((HELD_OUT_PER_CLASS,) * CLASSES)
    )


def train(data: Data, seed: int = 0, epochs: int = 200) -> Classifier:
    """Ordinary cross-entropy training, full batch.

    The factory may be called in several processes (``afterlearner run --processes N`` or ``--dask``:
    each worker calls ``task()`` once) and they must all build the same model, bit for bit: fix
    every seed, and train on one thread, because a float reduction split across threads can round
    differently (workers run with one thread, the main process with several).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        frequencies = np.bincount(data.y_train.numpy(), minlength=CLASSES) / len(data.y_train)
        model = Classifier(frequencies)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(epochs):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(data.x_train), data.y_train).backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def task() -> al.Task:
    """The factory ``afterlearner run THIS_FILE.py:task`` calls (any name works: ``FILE.py:name``)."""
    data = make_data()
    model = train(data)

    # The ℵ-parameters: a few numbers of the trained model where the metric you care about and the
    # training loss disagree. Everything else stays frozen. Fewer scalars leave less room to overfit
    # the ℵ-set (the bound does not grow with their number, but the risk does not vanish).
    aleph = al.Aleph(model)
    # mode="offset" (the default) searches values added to the trained ones, one per element
    # (per="element"); its step is half the tensor's root-mean-square. A bias offset moves the
    # decision boundaries between classes.
    aleph.add("head.bias")
    # mode="scale" searches factors multiplied into the trained values, one per tensor by default;
    # per="row" gives one factor per output unit (per="column": one per input unit). The step is
    # 0.1; low= and high= bound the factors. A glob such as "blocks.*.norm.weight" matches several.
    aleph.add("head.weight", mode="scale", per="row", low=0.25, high=4.0)
    # aleph.hyper searches a number that is not a tensor: an attribute of any object (a temperature,
    # a threshold, a beam width) or an item of a dict (aleph.hyper(settings, "key", ...)). It starts
    # at the current value, so the search starts at the model as trained.
    aleph.hyper(model, "logit_adjustment", low=0.0, high=2.0)

    # The ℵ-loss, lower is better. A DatasetLoss is metric(forward pass over the inputs, targets): the
    # library sees the forward pass, so it computes the frozen prefix (``body``, which holds no
    # ℵ-parameter) once and runs only the rest per candidate. When every ℵ-parameter is a tensor
    # (no aleph.hyper), --workers λ > 1 also lets it evaluate λ candidates in one vmap-ed pass.
    # al.losses has error_rate, balanced_error, f1_loss(average), threshold_error(threshold); any
    # function metric(outputs, targets) -> float works.
    loss = al.DatasetLoss(data.x_aleph, data.y_aleph, metric=al.losses.balanced_error)
    # An opaque loss is any function of the model, loss(model) -> float, for what is not a metric of
    # one forward pass (a game, a generated program run in a sandbox, a person's choice). It is
    # called under torch.no_grad() with the candidate written into the model. The same ℵ-loss,
    # opaque, would be:
    #
    #     def loss(model: torch.nn.Module) -> float:
    #         predicted = model(data.x_aleph).argmax(dim=1).numpy()
    #         return 1.0 - sklearn.metrics.balanced_accuracy_score(data.y_aleph.numpy(), predicted)

    return al.Task(
        aleph=aleph,
        loss=loss,
        # Evaluated on the trained and on the retrofitted model only, never during the search: the
        # check that the gain on the ℵ-set holds on data the search never saw. Keep it disjoint.
        test_loss=al.DatasetLoss(data.x_test, data.y_test, metric=al.losses.balanced_error),
        # Shown by `run` and `show` and kept in the store; None names the task after the file
        # and the factory, "FILE:task".
        name=None,
        # The number of ℵ-samples: the overfitting bound shrinks as 1/sqrt(n). It assumes a loss that
        # is a mean of per-sample losses in [0, 1] over n i.i.d. samples (balanced error is a mean
        # over classes, so here the bound is indicative). None: no bound is reported.
        n=len(data.y_aleph),
        # Evaluations per run, the trained model's included; --budget overrides it. The bound grows
        # with it, so spend what the loss needs, not more.
        budget=100,
        # A Nevergrad optimizer name (`afterlearner optimizers` lists them and says whether the bound
        # applies); None: "auto", the default (chosen on held-out data, docs/optimizers.md).
        # --optimizer overrides it.
        optimizer=None,
        # One line saying what this task is, for people reading the file (`run` does not print it).
        description="toy three-class classifier trained on an imbalanced split, retrofitted for "
        "balanced error",
    )
