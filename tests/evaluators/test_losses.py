"""DatasetLoss: the structured ℵ-loss gives the same floats as the hand-written loss it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score

from afterlearner.errors import ConfigError
from afterlearner.losses import DatasetLoss, balanced_error, error_rate, f1_loss, threshold_error


@pytest.fixture
def data() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    x = torch.randn(101, 6)
    y = torch.randint(0, 3, (101,))
    return model, x, y


def test_error_rate_matches_hand_written(data):
    model, x, y = data
    expected = float(np.mean((model(x).argmax(1) != y).numpy()))
    for batch_size in (None, 1, 7, 100, 1000):
        assert DatasetLoss(x, y, error_rate, batch_size=batch_size)(model) == pytest.approx(
            expected, abs=1e-12
        )


def test_sklearn_metrics_match(data):
    model, x, y = data
    predicted = model(x).argmax(1).numpy()
    assert DatasetLoss(x, y.numpy(), f1_loss("macro"), batch_size=10)(model) == pytest.approx(
        1 - f1_score(y.numpy(), predicted, average="macro")
    )
    assert DatasetLoss(x, y, balanced_error)(model) == pytest.approx(
        1 - balanced_accuracy_score(y, predicted)
    )


def test_dataloader_and_custom_forward(data):
    model, x, y = data
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    assert DatasetLoss(loader, metric=error_rate)(model) == DatasetLoss(x, y, error_rate)(model)

    def forward(m: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return m(inputs)[:, :1] - m(inputs)[:, 1:2]

    binary = (y == 0).numpy()
    scores = forward(model, x).detach()[:, 0].numpy()
    loss = DatasetLoss(x, binary, threshold_error(0.0), forward=forward, batch_size=25)
    assert loss(model) == pytest.approx(np.mean((scores > 0) != binary))
    assert loss.n == 101 and len(loss.batches) == 5


def test_tuple_inputs(data):
    _, x, y = data

    class Two(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a - b

    loss = DatasetLoss((x[:, :3], x[:, 3:]), y, error_rate, batch_size=40)
    assert loss(Two()) == pytest.approx(np.mean(((x[:, :3] - x[:, 3:]).argmax(1) != y).numpy()))


def test_bad_inputs_are_refused(data):
    model, x, y = data
    with pytest.raises(ConfigError, match="needs targets"):
        DatasetLoss(x)
    with pytest.raises(ConfigError, match="101 inputs but 100 targets"):
        DatasetLoss(x, y[:100])
    with pytest.raises(ConfigError, match="batch_size"):
        DatasetLoss(x, y, batch_size=0)
    with pytest.raises(ConfigError, match="metric must be callable"):
        DatasetLoss(x, y, metric="accuracy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="returned tuple"):
        DatasetLoss(x, y, forward=lambda m, inputs: (m(inputs),))(model)


def test_class_metrics_refuse_one_score_per_sample(data):
    """A binary classifier's single logit is not per-class scores: the argmax of a 1-D output (or of a
    single column) would be one index for every sample, a silently wrong error rate. Refused, with the
    metric to use instead; the threshold metric takes it."""
    _, x, y = data
    binary = (y > 0).numpy()
    for outputs in (torch.randn(101), torch.randn(101, 1)):
        for metric in (error_rate, balanced_error, f1_loss("macro")):
            with pytest.raises(ConfigError, match=r"per-class scores.*threshold_error"):
                metric(outputs, binary)
    logit = torch.randn(101)
    assert threshold_error(0.0)(logit, binary) == float(np.mean((logit > 0).numpy() != binary))


def test_population_metric_equals_per_candidate():
    torch.manual_seed(2)
    outputs, targets = torch.randn(7, 53, 4), torch.randint(0, 4, (53,))
    assert error_rate.population(outputs, targets) == [error_rate(o, targets) for o in outputs]
