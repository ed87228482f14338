"""The ℵ-space: every mode round-trips, restores bit for bit, and bad definitions fail early."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import afterlearner as al
from afterlearner.errors import SpaceError

MODES = [
    ("offset", "element"),
    ("offset", "row"),
    ("offset", "column"),
    ("offset", "tensor"),
    ("scale", "element"),
    ("scale", "row"),
    ("scale", "column"),
    ("scale", "tensor"),
]


def _bits(tensor: torch.Tensor) -> bytes:
    return tensor.detach().numpy().tobytes()


def _model(seed: int) -> torch.nn.Linear:
    torch.manual_seed(seed)
    layer = torch.nn.Linear(5, 3)
    with torch.no_grad():
        layer.weight[0, 0] = -0.0  # negative zero must survive a round trip too
    return layer


def _expected(original: torch.Tensor, mode: str, per: str, values: np.ndarray) -> torch.Tensor:
    v = torch.tensor(values, dtype=original.dtype)
    if per == "row":
        v = v.view(-1, *([1] * (original.dim() - 1)))
    elif per == "column":
        v = v.view(1, -1, *([1] * (original.dim() - 2)))
    elif per == "tensor":
        v = v.view(())
    else:
        v = v.view(original.shape)
    return original + v if mode == "offset" else original * v


@pytest.mark.parametrize(("mode", "per"), MODES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_mode_round_trips(mode: str, per: str, data: st.DataObject) -> None:
    layer = _model(data.draw(st.integers(0, 1000)))
    original = layer.weight.detach().clone()
    aleph = al.Aleph(layer).add("weight", mode=mode, per=per)
    size = len(aleph)
    assert size == {"element": 15, "row": 3, "column": 5, "tensor": 1}[per]
    vector = data.draw(arrays(np.float64, size, elements=st.floats(-3, 3, allow_nan=False, width=32)))
    # vector <-> Nevergrad value
    assert np.array_equal(aleph.to_vector(aleph.to_value(vector)), vector)
    # write puts exactly the expected values in the model, computed from the trained values
    aleph.write(vector)
    torch.testing.assert_close(layer.weight.detach(), _expected(original, mode, per, vector), rtol=0, atol=0)
    aleph.write(vector)  # writing twice does not compound
    torch.testing.assert_close(layer.weight.detach(), _expected(original, mode, per, vector), rtol=0, atol=0)
    aleph.restore()
    assert _bits(layer.weight) == _bits(original)
    aleph.write(aleph.identity())
    assert _bits(layer.weight) == _bits(original)


@settings(max_examples=25, deadline=None)
@given(value=st.floats(0.1, 10.0), low=st.floats(0.01, 0.09), high=st.floats(11, 100))
def test_hyperparameter_round_trip(value: float, low: float, high: float) -> None:
    owner = SimpleNamespace(temperature=value, beams=4)
    aleph = al.Aleph().hyper(owner, "temperature", low=low, high=high, log=True).hyper(owner, "beams", 1, 8)
    assert len(aleph) == 2
    assert aleph.identity().tolist() == [value, 4.0]
    aleph.write(np.array([2.5, 6.4]))
    assert owner.temperature == 2.5 and owner.beams == 6 and isinstance(owner.beams, int)
    aleph.restore()
    assert owner.temperature == value and owner.beams == 4
    param = aleph.parametrization()
    assert np.allclose(aleph.to_vector(param.value), [value, 4.0])


def test_hyperparameter_of_a_dict() -> None:
    config = {"length_penalty": 1.0}
    aleph = al.Aleph().hyper(config, "length_penalty", low=0.0, high=2.0, name="length_penalty")
    aleph.write(np.array([1.5]))
    assert config["length_penalty"] == 1.5
    aleph.restore()
    assert config["length_penalty"] == 1.0


def test_glob_matches_one_factor_per_tensor() -> None:
    model = torch.nn.Sequential(*(torch.nn.LayerNorm(4) for _ in range(3)))
    aleph = al.Aleph(model).add("*.weight", mode="scale")
    assert len(aleph) == 3
    assert [entry.name for entry in aleph] == ["0.weight", "1.weight", "2.weight"]


def test_default_steps_follow_the_tensor_magnitude(tiny_net) -> None:
    with torch.no_grad():
        tiny_net.fc.bias.copy_(torch.tensor([3.0, -3.0, 3.0, -3.0]))
        tiny_net.body.bias.zero_()
    aleph = al.Aleph(tiny_net).add("fc.bias").add("body.bias").add("fc.weight", mode="scale")
    steps = [entry.step for entry in aleph]
    assert steps[0] == pytest.approx(0.5 * 3.0)
    assert steps[1] == pytest.approx(0.01)  # all zeros: the absolute fallback
    assert steps[2] == pytest.approx(0.1)


def test_labels_name_every_scalar(tiny_net) -> None:
    aleph = al.Aleph(tiny_net).add("fc.bias").add("fc.weight", mode="scale")
    assert aleph.labels() == ["fc.bias[0]", "fc.bias[1]", "fc.bias[2]", "fc.bias[3]", "fc.weight"]


def test_labels_say_which_element_row_or_column() -> None:
    layer = _model(0)
    aleph = al.Aleph(layer).add("weight", mode="scale", per="row")
    assert aleph.labels() == ["weight[0,:]", "weight[1,:]", "weight[2,:]"]
    aleph = al.Aleph(layer).add("weight", mode="offset", per="column")
    assert aleph.labels()[:2] == ["weight[:,0]", "weight[:,1]"]
    aleph = al.Aleph(layer).add("weight")
    assert aleph.labels()[:6] == [
        "weight[0,0]",
        "weight[0,1]",
        "weight[0,2]",
        "weight[0,3]",
        "weight[0,4]",
        "weight[1,0]",
    ]
    assert len(aleph.labels()) == len(aleph)


@pytest.mark.parametrize(("mode", "per"), MODES)
def test_values_and_tensors_equal_what_write_puts_in_the_model(mode: str, per: str) -> None:
    layer = _model(1)
    aleph = al.Aleph(layer).add("weight", mode=mode, per=per)
    owner = SimpleNamespace(temperature=2.0)
    aleph.hyper(owner, "temperature", low=0.5, high=4.0, name="temperature")
    vector = aleph.identity() + np.random.default_rng(0).normal(size=len(aleph)) * 0.1
    before = _bits(layer.weight)
    values, tensors = aleph.values(vector), aleph.tensors(vector)
    assert _bits(layer.weight) == before  # values() and tensors() leave the model alone
    aleph.write(vector)
    assert _bits(tensors["weight"]) == _bits(layer.weight)
    assert values["weight"].tobytes() == _bits(layer.weight)
    assert values["temperature"] == owner.temperature
    assert set(tensors) == {"weight"}
    aleph.restore()
    assert _bits(aleph.tensors(aleph.identity())["weight"]) == before


# -- bad input: clear errors before any evaluation --------------------------------------------------
def test_unknown_name_suggests_close_names(tiny_net) -> None:
    with pytest.raises(SpaceError, match="matches no parameter.*fc.bias"):
        al.Aleph(tiny_net).add("fc.bais")


def test_parameter_matched_twice(tiny_net) -> None:
    aleph = al.Aleph(tiny_net).add("fc.bias")
    with pytest.raises(SpaceError, match="already in the ℵ-space"):
        aleph.add("fc.*")


def test_integer_and_boolean_tensors_are_refused() -> None:
    model = torch.nn.Module()
    model.register_buffer("counts", torch.zeros(3, dtype=torch.long))
    model.register_buffer("mask", torch.zeros(3, dtype=torch.bool))
    with pytest.raises(SpaceError, match="dtype torch.int64"):
        al.Aleph(model).add("counts")
    with pytest.raises(SpaceError, match="dtype torch.bool"):
        al.Aleph(model).add("mask")


def test_empty_space_is_refused(quadratic_loss, tiny_net) -> None:
    with pytest.raises(SpaceError, match="empty"):
        al.retrofit(al.Aleph(tiny_net), quadratic_loss, budget=5, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attribute": "nope"}, "has no attribute 'nope'; numeric ones: temperature"),
        ({"attribute": "temprature"}, "has no attribute 'temprature'; closest: temperature"),
        ({"attribute": "name"}, "only int or float"),
        ({"attribute": "flag"}, "only int or float"),
        ({"attribute": "temperature", "low": 2.0, "high": 1.0}, "low must be < high"),
        ({"attribute": "temperature", "low": 0.0, "high": 2.0, "log": True}, "must be positive"),
        ({"attribute": "temperature", "low": -1.0, "high": 2.0, "log": True}, "must be positive"),
        ({"attribute": "temperature", "low": 2.0, "high": 3.0}, "outside"),
    ],
)
def test_bad_hyperparameters(kwargs: dict, message: str) -> None:
    owner = SimpleNamespace(temperature=1.0, name="x", flag=True)
    attribute = kwargs.pop("attribute")
    with pytest.raises(SpaceError, match=message):
        al.Aleph().hyper(owner, attribute, **kwargs)


def test_bad_mode_and_per(tiny_net) -> None:
    with pytest.raises(SpaceError, match="mode must be"):
        al.Aleph(tiny_net).add("fc.bias", mode="shift")  # type: ignore[arg-type]
    with pytest.raises(SpaceError, match="per='column' needs at least 2"):
        al.Aleph(tiny_net).add("fc.bias", per="column")


def test_candidate_of_the_wrong_size(tiny_net) -> None:
    aleph = al.Aleph(tiny_net).add("fc.bias")
    with pytest.raises(SpaceError, match="has 3 values, the ℵ-space has 4"):
        aleph.write(np.zeros(3))
    assert math.isclose(len(aleph), 4)


def test_applied_puts_back_what_the_model_held_even_on_error() -> None:
    layer = _model(2)
    aleph = al.Aleph(layer).add("bias")
    trained = _bits(layer.bias)
    first = aleph.identity() + 0.5
    with aleph.applied(first):
        assert _bits(layer.bias) != trained
    assert _bits(layer.bias) == trained and aleph.current is None
    aleph.write(first)
    written = _bits(layer.bias)
    with pytest.raises(RuntimeError), aleph.applied(aleph.identity() - 0.25):
        raise RuntimeError("the loss crashed")
    assert _bits(layer.bias) == written and np.array_equal(aleph.current, first)
