"""Population-batched evaluation (torch.func vmap): what is particular to it.

Its losses against the sequential evaluator (vmap and loop, with and without the prefix cache) are
checked by the conformance suite, tests/evaluators/test_conformance.py; here: the stacked ℵ-tensors,
the automatic choice between vmap and a loop, and the fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from outcomes import losses

from afterlearner import Aleph
from afterlearner.errors import ConfigError
from afterlearner.evaluators import SequentialEvaluator
from afterlearner.evaluators.batched import BatchedEvaluator, BatchWarning
from afterlearner.evaluators.cache import PrefixCache
from afterlearner.losses import DatasetLoss


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Linear(10, 24), torch.nn.ReLU())
        self.norm = torch.nn.LayerNorm(24)
        self.fc = torch.nn.Linear(24, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(self.features(x)))


def mean_margin(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """A continuous metric, so tiny differences between paths would show."""
    return float(torch.nn.functional.cross_entropy(outputs, targets))


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = Net().eval()
    x, y = torch.randn(90, 10), torch.randint(0, 4, (90,))
    aleph = (
        Aleph(model)
        .add("fc.bias")
        .add("fc.weight", mode="scale", per="row")
        .add("norm.weight", mode="scale", per="tensor")
        .add("features.0.weight", mode="scale", per="column")
        .add("norm.bias")
    )
    rng = np.random.default_rng(1)
    vectors = [aleph.identity()] + [aleph.identity() + rng.normal(0, 0.2, len(aleph)) for _ in range(7)]
    return model, aleph, DatasetLoss(x, y, mean_margin, batch_size=40), vectors


def test_stacked_tensors_are_what_write_produces(setup):
    model, aleph, _, vectors = setup
    chunks = np.split(np.stack(vectors), np.cumsum([e.size for e in aleph.entries])[:-1], axis=1)
    for entry, chunk in zip(aleph.entries, chunks, strict=True):
        stacked = entry.retrofitted_population(chunk)
        for k, vector in enumerate(vectors):
            aleph.write(vector)
            assert torch.equal(stacked[k], entry.tensor.detach())
    aleph.restore()


def test_auto_measures_both_paths_and_keeps_one(setup):
    _, aleph, loss, vectors = setup
    evaluator = BatchedEvaluator(aleph, loss, cache=PrefixCache(aleph, loss))
    first = losses(evaluator, vectors)
    assert first == losses(SequentialEvaluator(aleph, loss), vectors)  # the measured batch returns the loop's
    assert set(evaluator.timings) == {"loop", "vmap"} and evaluator.choice in ("loop", "vmap")
    again = losses(evaluator, vectors[::-1])
    assert again == pytest.approx(first[::-1], rel=1e-5)


def test_unbatchable_model_falls_back_to_the_loop():
    class DataDependent(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.fc(x)
            return out if float(out.sum()) > -1e9 else -out  # .item() on a batched tensor: vmap refuses

    torch.manual_seed(0)
    model = DataDependent()
    aleph = Aleph(model).add("fc.bias")
    loss = DatasetLoss(torch.randn(20, 3), torch.randint(0, 2, (20,)))
    vectors = [aleph.identity() + d for d in (0.0, 0.5, -0.5)]
    evaluator = BatchedEvaluator(aleph, loss)
    with pytest.warns(BatchWarning, match="vmap failed"):
        result = losses(evaluator, vectors)
    assert evaluator.choice == "loop" and result == losses(SequentialEvaluator(aleph, loss), vectors)
    with pytest.raises(ConfigError, match="vmap cannot evaluate"):
        list(BatchedEvaluator(aleph, loss, mode="vmap").evaluate(vectors))


def test_hyperparameters_use_the_loop(setup):
    model, _, loss, vectors = setup
    model.temperature = 1.0
    aleph = Aleph(model).add("fc.bias").hyper(model.norm, "eps", low=1e-6, high=1e-2, log=True)
    assert BatchedEvaluator(aleph, loss).choice == "loop"
    with pytest.raises(ConfigError, match="cannot batch hyperparameters"):
        BatchedEvaluator(aleph, loss, mode="vmap")
    with pytest.raises(ConfigError, match="needs a DatasetLoss"):
        BatchedEvaluator(aleph, lambda m: 0.0)  # type: ignore[arg-type]


def test_a_torchscript_module_is_batched_with_its_own_parameter_names(setup):
    """``functional_call`` swaps a ScriptModule's parameters too: vmap and the loop give the sequential
    losses on the scripted copy of the model (same names, no prefix cache)."""
    model, _, loss, _ = setup
    scripted = torch.jit.script(model)
    aleph = Aleph(scripted).add("fc.bias").add("features.0.weight", mode="scale", per="column")
    rng = np.random.default_rng(2)
    vectors = [aleph.identity()] + [aleph.identity() + rng.normal(0, 0.3, len(aleph)) for _ in range(4)]
    sequential = losses(SequentialEvaluator(aleph, loss), vectors)
    assert len(set(sequential)) == len(vectors)  # every candidate changes the loss
    assert losses(BatchedEvaluator(aleph, loss, mode="loop"), vectors) == sequential
    assert losses(BatchedEvaluator(aleph, loss, mode="vmap"), vectors) == pytest.approx(sequential, rel=1e-5)
