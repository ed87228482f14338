"""Frozen-prefix caching: same losses as full passes, boundaries found or checked, memory limits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from outcomes import losses

from afterlearner import Aleph, retrofit
from afterlearner.evaluators import SequentialEvaluator, default_evaluator
from afterlearner.evaluators.batched import BatchedEvaluator
from afterlearner.evaluators.cache import (
    BoundaryError,
    CachedEvaluator,
    CacheWarning,
    PrefixCache,
    parse_bytes,
)
from afterlearner.losses import DatasetLoss, error_rate, f1_loss


class ConvNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(4, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(2),
        )
        self.head = torch.nn.Linear(32, 5)
        self.temperature = 1.0
        self.gain = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu_(torch.flatten(self.features(x * self.gain), 1))  # in place, after the boundary
        return self.head(hidden) / self.temperature


class Residual(torch.nn.Module):
    """A skip connection from the prefix to the head, and a module used twice."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Linear(8, 8)
        self.block = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh())
        self.act = torch.nn.Tanh()
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.act(self.stem(x))
        return self.head(self.act(self.block(stem) + stem))


def candidates(aleph, count=6, scale=0.5, seed=0):
    rng = np.random.default_rng(seed)
    return [aleph.identity()] + [
        aleph.identity() + rng.normal(0, scale, len(aleph)) for _ in range(count - 1)
    ]


@pytest.fixture
def conv():
    torch.manual_seed(0)
    model = ConvNet().eval()
    x = torch.randn(70, 1, 8, 8)
    y = torch.randint(0, 5, (70,))
    return model, DatasetLoss(x, y, f1_loss(), batch_size=32)


def test_cached_losses_equal_full_passes(conv):
    model, loss = conv
    aleph = Aleph(model).add("head.bias").add("head.weight", mode="scale", per="row")
    vectors = candidates(aleph)
    plain = losses(SequentialEvaluator(aleph, loss), vectors)
    cached = CachedEvaluator(aleph, loss)
    assert cached.cache.boundaries == ["features"]
    assert losses(cached, vectors) == plain
    assert len(set(plain)) > 1  # the candidates do change the loss
    # 70 samples × 8 channels × 2 × 2 float32 values
    assert cached.cache.nbytes == 70 * 32 * 4
    assert "features" in cached.cache.describe() and "KiB" in cached.cache.describe()


def test_boundaries_inside_the_network(conv):
    model, loss = conv
    aleph = Aleph(model).add("features.2.bias")
    vectors = candidates(aleph, scale=2.0)
    plain = losses(SequentialEvaluator(aleph, loss), vectors)
    automatic = CachedEvaluator(aleph, loss)
    assert automatic.cache.boundaries == ["features.0", "features.1"]
    assert losses(automatic, vectors) == plain
    assert losses(CachedEvaluator(aleph, loss, boundary="features.1"), vectors) == plain


def test_boundary_with_an_aleph_parameter_before_it_is_refused(conv):
    model, loss = conv
    aleph = Aleph(model).add("features.0.bias")
    with pytest.raises(BoundaryError, match="contains the ℵ-parameter features.0.bias"):
        PrefixCache(aleph, loss, boundary="features")
    with pytest.raises(BoundaryError, match="has the ℵ-parameter features.0.bias before it"):
        PrefixCache(aleph, loss, boundary="features.3")
    with pytest.raises(BoundaryError, match="not a module of the model; closest: features"):
        PrefixCache(aleph, loss, boundary="featurs")
    automatic = PrefixCache(aleph, loss)
    assert not automatic.enabled and "features.0.bias" in automatic.describe()


def test_skip_connections_and_shared_modules():
    torch.manual_seed(1)
    model = Residual().eval()
    loss = DatasetLoss(torch.randn(50, 8), torch.randint(0, 3, (50,)), error_rate, batch_size=20)
    aleph = Aleph(model).add("head.bias")
    vectors = candidates(aleph, scale=1.0)
    cached = CachedEvaluator(aleph, loss)
    assert cached.cache.boundaries == ["stem", "block"]  # act runs twice: never a boundary
    assert losses(cached, vectors) == losses(SequentialEvaluator(aleph, loss), vectors)
    with pytest.raises(BoundaryError, match="runs 2 times"):
        PrefixCache(aleph, loss, boundary="act")


def test_replay_hands_out_the_recorded_outputs_without_copies():
    torch.manual_seed(1)
    model = Residual().eval()
    loss = DatasetLoss(torch.randn(50, 8), torch.randint(0, 3, (50,)), error_rate, batch_size=20)
    aleph = Aleph(model).add("head.bias")
    cached = CachedEvaluator(aleph, loss)
    assert losses(cached, candidates(aleph)) == losses(SequentialEvaluator(aleph, loss), candidates(aleph))
    assert cached.cache.copying == set()  # nothing changed them in place: never copied
    recorded = cached.cache.store["stem"][1][0][0]
    with cached.cache.active():
        cached.cache.batch = 1
        assert model.stem(torch.zeros(1, 8)) is recorded


def test_a_live_part_that_changes_a_replayed_output_in_place_gets_copies(conv):
    """ConvNet's forward applies ``relu_`` to a view of the cached features: the first cached
    evaluation changes the recording, which is caught, recorded again and copied from then on."""
    model, loss = conv
    aleph = Aleph(model).add("head.bias")
    vectors = candidates(aleph, count=5, scale=1.0)
    plain = losses(SequentialEvaluator(aleph, loss), vectors)
    cached = CachedEvaluator(aleph, loss)
    assert losses(cached, vectors) == plain
    assert cached.cache.copying == {"features"}
    batched = BatchedEvaluator(aleph, loss, cache=PrefixCache(aleph, loss), mode="loop")
    assert losses(batched, vectors) == plain


def test_a_flat_graph_stores_only_the_outputs_read_after_the_cache(conv):
    """A ``torch.fx`` graph (as onnx2torch makes) runs every layer as a top-level module: each one
    before the ℵ-parameters is replayed, but only the last one's output, which the live part reads,
    is stored; the others are stand-ins of their shape, and the losses stay those of full passes."""
    model, loss = conv
    flat = torch.fx.symbolic_trace(model)  # features.0 … features.4 become siblings of head
    aleph = Aleph(flat).add("head.bias").add("head.weight", mode="scale", per="row")
    cached = CachedEvaluator(aleph, loss)
    assert cached.cache.boundaries == ["features.0", "features.1", "features.2", "features.3", "features.4"]
    assert cached.cache.stored == ["features.4"]
    assert cached.cache.nbytes == 70 * 32 * 4  # the pooled features alone, as for the nested model
    assert "features.0, …, features.4 (5 modules)" in cached.cache.describe()
    vectors = candidates(aleph)
    plain = losses(SequentialEvaluator(aleph, loss), vectors)
    assert losses(cached, vectors) == plain and len(set(plain)) > 1
    batched = BatchedEvaluator(aleph, loss, cache=cached.cache, mode="vmap")
    assert losses(batched, vectors) == pytest.approx(plain, abs=1e-12)


def test_memory_limit_falls_back_with_a_warning(conv):
    model, loss = conv
    aleph = Aleph(model).add("head.bias")
    with pytest.warns(CacheWarning, match="over the limit of 1.0 KiB"):
        cache = PrefixCache(aleph, loss, memory_limit="1KiB")
    assert not cache.enabled
    vectors = candidates(aleph)
    assert losses(CachedEvaluator(aleph, loss, cache=cache), vectors) == losses(
        SequentialEvaluator(aleph, loss), vectors
    )
    assert PrefixCache(aleph, loss, memory_limit="1MB").enabled
    assert parse_bytes("2GiB") == 2 * 2**30 and parse_bytes(1e3) == 1000
    with pytest.raises(ValueError, match="memory size"):
        parse_bytes("lots")


def test_hyperparameters(conv):
    model, loss = conv
    on_module = Aleph(model).add("head.bias").hyper(model, "temperature", low=0.1, high=10.0, log=True)
    assert PrefixCache(on_module, loss).boundaries == ["features"]  # read after the features
    assert type(model) is ConvNet  # the probe's class swap is undone
    early = Aleph(model).add("head.bias").hyper(model, "gain", low=0.5, high=2.0)
    assert not PrefixCache(early, loss).enabled
    with pytest.raises(BoundaryError, match="ConvNet.gain before it"):
        PrefixCache(early, loss, boundary="features")
    settings = {"temperature": 1.0}
    elsewhere = Aleph(model).add("head.bias").hyper(settings, "temperature", low=0.1, high=10.0)
    automatic = PrefixCache(elsewhere, loss)
    assert not automatic.enabled and "cannot be watched" in automatic.describe()
    assert PrefixCache(elsewhere, loss, boundary="features").enabled  # a named boundary is trusted
    vectors = candidates(on_module, scale=0.3)
    vectors = [np.concatenate([v[:-1], [abs(v[-1]) + 0.2]]) for v in vectors]
    plain = losses(SequentialEvaluator(on_module, loss), vectors)
    assert losses(CachedEvaluator(on_module, loss), vectors) == plain


def test_default_evaluator_and_retrofit_give_the_same_run(conv):
    model, loss = conv
    aleph = Aleph(model).add("head.bias").add("head.weight", mode="scale", per="row")
    assert isinstance(default_evaluator(aleph, loss, 1), CachedEvaluator)
    assert isinstance(default_evaluator(aleph, loss, 4), BatchedEvaluator)
    assert isinstance(default_evaluator(aleph, lambda m: loss(m), 4), SequentialEvaluator)
    opaque = retrofit(aleph, lambda m: loss(m), budget=24, workers=4, seed=3, progress=False)
    aleph.restore()
    accelerated = retrofit(aleph, loss, budget=24, workers=4, seed=3, progress=False)
    np.testing.assert_array_equal(opaque.best, accelerated.best)
    assert accelerated.losses() == pytest.approx(opaque.losses(), abs=1e-12)


@pytest.mark.parametrize("where", ["whole", "inside"])
def test_torchscript_modules_are_evaluated_whole_and_said_why(conv, where):
    """A ScriptModule's graph cannot be hooked or replayed: no cache, the reason said, same losses."""
    model, loss = conv
    if where == "whole":
        model = torch.jit.script(model)
    else:  # a scripted part inside a plain module: its ℵ-parameter uses cannot be watched either
        model.features = torch.jit.script(model.features)
    aleph = Aleph(model).add("head.bias").add("features.0.bias")
    vectors = candidates(aleph)
    plain = losses(SequentialEvaluator(aleph, loss), vectors)
    cache = PrefixCache(aleph, loss)
    name = "<model>" if where == "whole" else "features"
    assert not cache.enabled and f"{name} is a TorchScript module" in cache.describe()
    assert losses(CachedEvaluator(aleph, loss, cache=cache), vectors) == plain
    assert "TorchScript" in default_evaluator(aleph, loss, 1).describe()
    with pytest.raises(BoundaryError, match="TorchScript"):
        PrefixCache(aleph, loss, boundary="features")


def guarded_setup(conv):
    """The ℵ-loss (F1), a guard on the same outputs (error rate), one on other data (a cache of its own)
    and an opaque one (called as it is)."""
    model, loss = conv
    inputs = torch.cat(loss.batches)  # the same data, split the same way: equal batches
    same_outputs = DatasetLoss(inputs.clone(), loss.targets, error_rate, batch_size=32)
    torch.manual_seed(1)
    other = DatasetLoss(torch.randn(40, 1, 8, 8), torch.randint(0, 5, (40,)), error_rate)
    guards = {
        "error": (same_outputs, 0.1),
        "other": (other, 0.1),
        "opaque": (lambda m: float(m.head.bias.abs().sum()), 1.0),
    }
    aleph = Aleph(model).add("head.bias").add("head.weight", mode="scale", per="row")
    return aleph, loss, guards


def test_guards_keep_the_cache_and_the_values(conv):
    """With guards, each dataset loss runs after its cached prefix, a guard on the ℵ-loss's outputs is
    scored on its forward pass, and every value equals the uncached guarded loss's, bit for bit."""
    from afterlearner.evaluators.cache import CachedGuardedLoss
    from afterlearner.guards import GuardedLoss, as_guards

    aleph, loss, guards = guarded_setup(conv)
    guarded = GuardedLoss(loss, as_guards(guards))
    evaluator = default_evaluator(aleph, guarded, 4)
    assert isinstance(evaluator.loss, CachedGuardedLoss)
    cached = evaluator.loss
    assert sorted(cached.caches, key=str) == [None, "other"]  # "error" shares the ℵ-loss's pass
    assert [cached.caches[name].boundaries for name in (None, "other")] == [["features"], ["features"]]
    said = evaluator.describe()
    assert "with guards: error scored on the ℵ-loss's forward pass; ℵ-loss: prefix cache: features" in said
    assert "guard other: prefix cache: features" in said
    vectors = candidates(aleph)
    plain = [outcome for _, outcome in SequentialEvaluator(aleph, guarded).evaluate(vectors)]
    fast = [outcome for _, outcome in evaluator.evaluate(vectors)]
    assert [(o.loss, dict(o.guards)) for o in fast] == [(o.loss, dict(o.guards)) for o in plain]
    assert len({o.guards["error"] for o in plain}) > 1 and len({o.guards["other"] for o in plain}) > 1


def test_same_forward_means_equal_batches_and_the_same_forward_function(conv):
    from afterlearner.evaluators.cache import same_forward

    _, loss = conv
    inputs = torch.cat(loss.batches)
    assert same_forward(loss, DatasetLoss(inputs.clone(), loss.targets, error_rate, batch_size=32))
    split_otherwise = DatasetLoss(inputs, loss.targets, error_rate, batch_size=16)
    assert not same_forward(loss, split_otherwise)
    changed = inputs.clone()
    changed[-1, 0, 0, 0] += 1.0
    assert not same_forward(loss, DatasetLoss(changed, loss.targets, error_rate, batch_size=32))
    other_forward = DatasetLoss(inputs, loss.targets, error_rate, batch_size=32, forward=lambda m, x: m(x))
    assert not same_forward(loss, other_forward)


def test_a_guarded_retrofit_is_the_same_with_the_cache(conv):
    aleph, loss, guards = guarded_setup(conv)
    opaque = retrofit(aleph, lambda m: loss(m), budget=20, seed=2, guards=guards, progress=False)
    aleph.restore()
    cached = retrofit(aleph, loss, budget=20, seed=2, guards=guards, progress=False)
    assert [(e.loss, e.status, e.guards) for e in cached.history] == [
        (e.loss, e.status, e.guards) for e in opaque.history
    ]
    np.testing.assert_array_equal(cached.best, opaque.best)
