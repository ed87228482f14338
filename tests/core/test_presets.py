"""Presets: each finds its entries in ordinary and TorchScript modules, writes what it says, restores
bit for bit, and builds the same ℵ-space as the hand-written adds it replaces; the menu lists them."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import afterlearner as al
from afterlearner import presets
from afterlearner.errors import SpaceError
from afterlearner.space import Aleph, TensorEntry

FORMS = ["eager", "script", "load"]
# TorchScript is deprecated in torch 2.13 but is how real models ship (the silero VAD): it is tested here
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")


class Net(nn.Module):
    """A stack of blocks with LayerNorms, a BatchNorm, and a 3-class output layer ``fc``."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 8)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)) for _ in range(3)])
        self.bn = nn.BatchNorm1d(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = torch.relu(block(h))
        return self.fc(self.bn(h))


def _trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random non-trivial values everywhere (norm gains and biases included), in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*model.parameters(), model.bn.running_mean]:
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.5 + 0.1)
    return model.eval()


def _form(model: nn.Module, form: str) -> nn.Module:
    """The model as it is, scripted, or scripted, saved and loaded back."""
    if form == "eager":
        return model
    scripted = torch.jit.script(model)
    if form == "script":
        return scripted
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


def _net(form: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return _form(_trained_like(Net(), seed), form)


X = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))


def _fc_inputs(model: nn.Module) -> torch.Tensor:
    """What the output layer ``fc`` of an eager Net receives for X."""
    seen: list[torch.Tensor] = []
    handle = model.fc.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    with torch.no_grad():
        model(X)
    handle.remove()
    return seen[0]


def _state(model: nn.Module) -> dict[str, bytes]:
    return {name: t.detach().numpy().tobytes() for name, t in model.state_dict().items()}


def _layout(aleph: Aleph) -> list[tuple]:
    """Everything that defines the search: names, modes, shapes, steps, bounds, order."""
    rows = []
    for entry in aleph.entries:
        assert isinstance(entry, TensorEntry)
        rows.append((entry.name, entry.mode, entry.per, entry.shape, entry.step, entry.low, entry.high))
    return rows


@pytest.mark.parametrize("form", FORMS)
def test_classifier_head_finds_the_last_linear_and_writes_offsets_and_factors(form: str) -> None:
    model = _net(form)
    before = _state(model)
    aleph = presets.classifier_head(model)
    assert [(e.name, e.mode, e.per, e.size) for e in aleph.entries] == [
        ("fc.bias", "offset", "element", 3),
        ("fc.weight", "scale", "row", 3),
    ]
    features = _fc_inputs(_net("eager"))  # the same numbers as the scripted forms' (same seed)
    with torch.no_grad():
        trained = model(X)
    offsets, factors = np.array([0.5, -1.0, 2.0]), np.array([2.0, 1.0, 0.5])
    with aleph.applied(np.concatenate([offsets, factors])), torch.no_grad():
        retrofitted = model(X)
    weight, bias = model.fc.weight.detach(), model.fc.bias.detach()
    expected = features @ (weight * torch.tensor(factors, dtype=torch.float32)[:, None]).T + bias
    assert torch.allclose(retrofitted, expected + torch.tensor(offsets, dtype=torch.float32), atol=1e-5)
    assert not torch.allclose(retrofitted, trained)
    assert _state(model) == before  # restored bit for bit


def test_classifier_head_options() -> None:
    model = _net("eager")
    aleph = presets.classifier_head(model, layer="inp", scales="column", low=0.0, high=4.0)
    assert [(e.name, e.per, e.size, e.low, e.high) for e in aleph.entries] == [
        ("inp.bias", "element", 8, None, None),
        ("inp.weight", "column", 4, 0.0, 4.0),
    ]
    assert [e.name for e in presets.classifier_head(model, bias=False).entries] == ["fc.weight"]
    no_bias = nn.Sequential(nn.Linear(4, 2, bias=False))
    assert [e.name for e in presets.classifier_head(no_bias).entries] == ["0.weight"]
    with pytest.raises(SpaceError, match="nothing to search"):
        presets.classifier_head(no_bias, scales=None)
    with pytest.raises(SpaceError, match="no Linear layer"):
        presets.classifier_head(nn.Sequential(nn.ReLU()))
    with pytest.raises(SpaceError, match="closest: fc"):
        presets.classifier_head(model, layer="fc2")
    with pytest.raises(SpaceError, match="needs a torch model or an Aleph"):
        presets.classifier_head("model")  # type: ignore[arg-type]
    with pytest.raises(SpaceError, match="already in the ℵ-space"):
        presets.classifier_head(presets.classifier_head(model))


def test_a_pointwise_convolution_is_an_output_layer_and_a_wider_one_is_not() -> None:
    model = nn.Sequential(nn.Conv1d(3, 5, 3), nn.ReLU(), nn.Conv1d(5, 2, 1), nn.Conv2d(2, 2, 3))
    aleph = presets.classifier_head(model)
    assert [(e.name, e.per, e.size) for e in aleph.entries] == [
        ("2.bias", "element", 2),
        ("2.weight", "row", 2),
    ]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("per", ["tensor", "channel"])
def test_norm_gains_scale_gains_and_shift_biases_of_matching_layers(form: str, per: str) -> None:
    model = _net(form)
    before = _state(model)
    aleph = presets.norm_gains(model, pattern="blocks.*", per=per)  # type: ignore[arg-type]
    names = [f"blocks.{i}.1.{kind}" for i in range(3) for kind in ("weight", "bias")]
    assert [e.name for e in aleph.entries] == names
    assert len(aleph) == (6 if per == "tensor" else 48)
    vector = aleph.identity().copy()
    vector[0 : (1 if per == "tensor" else 8)] = 2.0  # the first LayerNorm's gain doubled
    gain = dict(model.named_parameters())["blocks.0.1.weight"]
    trained_gain = torch.from_numpy(np.frombuffer(before["blocks.0.1.weight"], dtype=np.float32).copy())
    with aleph.applied(vector), torch.no_grad():
        assert torch.equal(gain, 2.0 * trained_gain)
        assert not torch.equal(model(X), _net(form)(X))
    assert _state(model) == before
    everything = presets.norm_gains(_net(form), per=per)  # type: ignore[arg-type]
    assert [e.name for e in everything.entries] == [*names, "bn.weight", "bn.bias"]


def test_norm_gains_options_and_errors() -> None:
    model = _net("eager")
    assert [e.name for e in presets.norm_gains(model, gains=False).entries] == [
        "blocks.0.1.bias",
        "blocks.1.1.bias",
        "blocks.2.1.bias",
        "bn.bias",
    ]
    assert [e.mode for e in presets.norm_gains(_net("eager"), pattern="bn", biases=False).entries] == [
        "scale"
    ]
    with pytest.raises(SpaceError, match="its normalization layers: blocks.0.1, blocks.1.1"):
        presets.norm_gains(model, pattern="encoder.*")
    with pytest.raises(SpaceError, match="per must be"):
        presets.norm_gains(model, per="row")  # type: ignore[arg-type]
    # norms without affine parameters are not candidates; GroupNorm and RMSNorm are
    plain = nn.Sequential(nn.LayerNorm(4, elementwise_affine=False), nn.GroupNorm(2, 4), nn.RMSNorm(4))
    assert [e.name for e in presets.norm_gains(plain).entries] == ["1.weight", "1.bias", "2.weight"]


@pytest.mark.parametrize("form", FORMS)
def test_output_affine_on_the_last_layer_is_an_affine_map_of_its_output(form: str) -> None:
    model = _net(form)
    before = _state(model)
    aleph = presets.output_affine(model, shift_step=0.2)
    assert [(e.name, e.mode, e.per, e.size, e.step) for e in aleph.entries] == [
        ("fc.weight", "scale", "tensor", 1, 0.1),
        ("fc.bias", "offset", "tensor", 1, 0.2),
    ]
    with torch.no_grad():
        trained = model(X)
        with aleph.applied(np.array([1.5, -0.3])):
            retrofitted = model(X)
    bias = model.fc.bias.detach()
    assert torch.allclose(retrofitted, 1.5 * (trained - bias) + bias - 0.3, atol=1e-5)
    assert _state(model) == before
    per_output = presets.output_affine(_net(form), per="output")
    assert [(e.name, e.per, e.size) for e in per_output.entries] == [
        ("fc.weight", "row", 3),
        ("fc.bias", "element", 3),
    ]


@pytest.mark.parametrize("form", FORMS)
def test_output_affine_on_a_wrapper_scales_and_shifts_any_output(form: str) -> None:
    inner = nn.Sequential(nn.Linear(4, 2), nn.Sigmoid())  # a non-linearity last: no layer to use
    torch.manual_seed(0)
    wrapped = presets.OutputAffine(_form(inner.eval(), form))
    aleph = presets.output_affine(wrapped, shift_step=0.05)
    assert [(e.name, e.mode, e.size, e.step) for e in aleph.entries] == [
        ("scale", "scale", 1, 0.1),
        ("shift", "offset", 1, 0.05),
    ]
    with torch.no_grad():
        plain = inner(X)
        assert torch.equal(wrapped(X), plain)  # the identity is the model itself, bit for bit
        with aleph.applied(np.array([0.5, 0.25])):
            assert torch.allclose(wrapped(X), 0.5 * plain + 0.25)
    per_output = presets.output_affine(presets.OutputAffine(inner, outputs=2), per="output")
    assert len(per_output) == 4
    with pytest.raises(SpaceError, match="OutputAffine"):
        presets.output_affine(nn.Sequential(nn.ReLU()))
    with pytest.raises(SpaceError, match=r"blocks.0 \(Sequential\) has no weight"):
        presets.output_affine(_net("eager"), layer="blocks.0")
    with pytest.raises(SpaceError, match="per must be"):
        presets.output_affine(_net("eager"), per="row")  # type: ignore[arg-type]


def test_generation_adds_the_knobs_that_have_an_effect_and_restores_them() -> None:
    transformers = pytest.importorskip("transformers", reason="the experiments extra is not installed")
    config = transformers.GenerationConfig(do_sample=True, temperature=0.7, num_beams=2)
    aleph = presets.generation(config)
    assert [e.name for e in aleph.entries] == [
        "GenerationConfig.temperature",
        "GenerationConfig.top_p",
        "GenerationConfig.top_k",
        "GenerationConfig.repetition_penalty",
        "GenerationConfig.length_penalty",
        "GenerationConfig.num_beams",
    ]
    temperature, top_k = aleph.entries[0], aleph.entries[2]
    assert (temperature.low, temperature.high, temperature.log) == (0.1, 5.0, True)
    assert top_k.integer and top_k.log and config.top_k == 50  # unset: set to its default first
    vector = aleph.identity().copy()
    assert list(vector) == [0.7, 1.0, 50.0, 1.0, 1.0, 2.0]
    vector[0], vector[2], vector[5] = 1.3, 7.6, 4.2
    with aleph.applied(vector):
        assert (config.temperature, config.top_k, config.num_beams) == (1.3, 8, 4)
    assert (config.temperature, config.top_k, config.num_beams) == (0.7, 50, 2)
    # greedy decoding: the sampling knobs would change nothing, so they are left out, or refused
    greedy = transformers.GenerationConfig()
    assert [e.attribute for e in presets.generation(greedy).entries] == [
        "repetition_penalty",
        "length_penalty",
        "num_beams",
    ]
    assert greedy.temperature is None
    with pytest.raises(SpaceError, match="temperature: used only when sampling"):
        presets.generation(transformers.GenerationConfig(), knobs=["temperature"])


def test_generation_on_a_dict_an_object_and_a_model_holding_a_config() -> None:
    kwargs = {"temperature": 0.05, "top_k": 0, "max_new_tokens": 20}
    aleph = presets.generation(kwargs)
    entry = aleph.entries[0]
    assert [e.name for e in aleph.entries] == ["dict.temperature"]  # top_k = 0 turns it off
    assert entry.low == 0.05  # the range is widened to hold the current value
    holder = nn.Linear(2, 2)
    holder.generation_config = SimpleNamespace(num_beams=3, length_penalty=0.5)  # type: ignore[assignment]
    mixed = presets.generation(holder, aleph=presets.classifier_head(holder))
    assert [e.name for e in mixed.entries] == [
        "bias",
        "weight",
        "SimpleNamespace.length_penalty",
        "SimpleNamespace.num_beams",
    ]
    assert [e.name for e in presets.generation(holder.generation_config, knobs=["num_beams"]).entries] == [
        "SimpleNamespace.num_beams"
    ]
    with pytest.raises(SpaceError, match="unknown decoding knob 'beams'; known: temperature"):
        presets.generation(kwargs, knobs=["beams"])
    with pytest.raises(SpaceError, match="top_k: 0 turns it off"):
        presets.generation(kwargs, knobs=["top_k"])
    with pytest.raises(SpaceError, match="not an attribute"):
        presets.generation(kwargs, knobs=["num_beams"])


def test_suggest_lists_head_affine_and_norm_groups_the_same_for_every_form() -> None:
    found = presets.suggest(_net("eager"))
    assert [(s.group, s.size, s.call) for s in found] == [
        ("classifier head", 6, "presets.classifier_head(model)"),
        ("output affine", 2, "presets.output_affine(model, shift_step=...)"),
        ("normalization gains", 6, 'presets.norm_gains(model, pattern="blocks.*.1")'),
        ("normalization gains", 2, 'presets.norm_gains(model, pattern="bn")'),
    ]
    assert found[0].where == "fc (Linear, 8 → 3)"
    assert "3 layers, LayerNorm; per channel: 48 scalars" in found[2].where
    text = presets.describe(_net("eager"))
    assert text == presets.describe(_net("script")) == presets.describe(_net("load"))
    assert text.startswith("ℵ-parameter candidates for Net (")
    # every suggested call builds an Aleph of the size it announces
    for item in found:
        call = item.call.replace("shift_step=...", "shift_step=0.1")
        aleph = eval(call, {"presets": presets, "model": _net("eager")})  # noqa: S307 - our own strings
        assert len(aleph) == item.size
    wrapped = presets.suggest(presets.OutputAffine(_net("eager")))
    assert ("output affine", "the model's own scale and shift (OutputAffine)") in [
        (s.group, s.where) for s in wrapped
    ]
    assert "none found" in presets.describe(nn.Sequential(nn.ReLU()))
    task = al.Task(aleph=presets.classifier_head(_net("eager")), loss=lambda _: 0.0)
    assert presets.describe(task) == text  # a Task's (or an Aleph's) model is examined


def test_suggest_lists_the_knobs_of_a_model_s_generation_config() -> None:
    model = nn.Linear(2, 2)
    model.generation_config = {"do_sample": False, "temperature": 0.7, "num_beams": 4}  # type: ignore[assignment]
    knobs = [s for s in presets.suggest(model) if s.group == "decoding knob"]
    assert [s.where for s in knobs] == ["num_beams = 4, searched in [1, 8]"]
    assert knobs[0].call == 'presets.generation(model, knobs=["num_beams"])'
    assert len(eval(knobs[0].call, {"presets": presets, "model": model})) == 1  # noqa: S307
    assert (
        presets.suggest(model.generation_config)[0].call == 'presets.generation(config, knobs=["num_beams"])'
    )


def test_silero_vad_torchscript_model_shows_both_output_layers() -> None:
    silero_vad = pytest.importorskip("silero_vad", reason="silero-vad is not installed")
    model = silero_vad.load_silero_vad()  # the TorchScript file shipped inside the package
    before = _state(model)
    heads = [s for s in presets.suggest(model) if s.group == "classifier head"]
    assert [s.where for s in heads] == [
        "_model.decoder.decoder.2 (Conv1d 1×1, 128 → 1)",
        "_model_8k.decoder.decoder.2 (Conv1d 1×1, 128 → 1)",
    ]
    aleph = presets.classifier_head(model, layer="_model.decoder.decoder.2")
    audio = torch.randn(512, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        trained = model(audio, 16000).clone()
        model.reset_states()
        with aleph.applied(np.array([3.0, 1.0])):  # a large offset on the speech logit
            raised = model(audio, 16000).clone()
        model.reset_states()
    assert float(raised) > float(trained)
    assert _state(model) == before


@pytest.mark.parametrize("workers", [1, 4])
def test_retrofit_of_a_torchscript_module_matches_the_eager_one(workers: int, tmp_path) -> None:
    targets = torch.randint(0, 3, (len(X),), generator=torch.Generator().manual_seed(2))
    histories = []
    for form in FORMS:
        model = _net(form)
        before = _state(model)
        aleph = presets.norm_gains(presets.classifier_head(model), pattern="bn")
        result = al.retrofit(aleph, al.DatasetLoss(X, targets), budget=24, workers=workers, seed=3)
        histories.append([e.loss for e in result.history])
        assert result.best_loss < result.initial_loss
        with torch.no_grad():
            retrofitted = model(X)
        patch = result.save(tmp_path / f"{form}-{workers}.safetensors")
        result.restore()
        assert _state(model) == before
        fresh = _net(form)  # the patch file loads into a freshly built (or loaded) TorchScript module too
        al.apply_patch(fresh, patch)
        with torch.no_grad():
            assert torch.equal(fresh(X), retrofitted)
    assert histories[0] == histories[1] == histories[2]


def test_aleph_describe_says_what_is_searched() -> None:
    model = _net("eager")
    owner = SimpleNamespace(temperature=0.5, beams=2)
    aleph = presets.classifier_head(model).hyper(owner, "temperature", low=0.1, high=2.0, log=True)
    aleph.hyper(owner, "beams", low=1, high=8)
    lines = aleph.describe().splitlines()
    assert lines[0] == "ℵ-space: 8 ℵ-scalars in 4 entries"
    assert lines[1].split()[:5] == ["fc.bias", "3", "offsets", "per", "element"]
    assert lines[2].split() == ["fc.weight", "3", "factors", "per", "row", "(step", "0.1)"]
    assert "value, log scale, starts at 0.5 (in [0.1, 2.0])" in lines[3]
    assert "integer, starts at 2 (in [1, 8])" in lines[4]


def test_the_presets_build_the_same_spaces_as_the_hand_written_adds() -> None:
    """The demo, the examples and the depth experiment use the presets: their ℵ-spaces are unchanged."""
    from afterlearner.experiments.depth.model import Calibrated, load_depth_net
    from afterlearner.experiments.depth.task import DepthData, depth_task
    from afterlearner.experiments.digits.task import DigitNet

    digits = DigitNet()
    assert _layout(presets.classifier_head(digits)) == _layout(
        Aleph(digits).add("fc.bias").add("fc.weight", mode="scale", per="row")
    )
    screener = nn.Module()
    screener.head = nn.Linear(16, 1)
    assert _layout(presets.classifier_head(screener, scales="column", low=0.0, high=4.0)) == _layout(
        Aleph(screener).add("head.bias").add("head.weight", mode="scale", per="column", low=0.0, high=4.0)
    )
    assert _layout(presets.output_affine(screener, shift_step=0.1)) == _layout(
        Aleph(screener).add("head.weight", mode="scale").add("head.bias", step=0.1)
    )
    depth = Calibrated(load_depth_net(), output="log")
    data = DepthData(np.zeros((1, 3, 8, 8), np.float32), np.ones((1, 8, 8), np.float32))
    built = depth_task(depth, data, data, [("head.weight", "scale", "column")]).aleph
    hand = Aleph(depth).add("scale", mode="scale", step=0.05).add("shift", step=0.05)
    assert _layout(built) == _layout(hand.add("model.head.weight", mode="scale", per="column"))
    assert built.signature() == hand.signature()


def test_suggest_command_prints_the_menu_for_a_model_a_task_or_a_config(capsys) -> None:
    from paths import TASKS

    from afterlearner.cli import main

    factories = TASKS / "suggest_factories.py"
    assert main(["suggest", f"{factories}:model"]) == 0
    menu = capsys.readouterr().out
    assert menu.splitlines()[0] == "ℵ-parameter candidates for Tagger (143 parameters)"
    assert "10  classifier head: out (Linear, 6 → 5)" in menu
    assert "4  normalization gains: blocks.*.1 (2 layers, LayerNorm; per channel: 24 scalars)" in menu
    assert main(["suggest", f"{factories}:scripted"]) == 0
    assert capsys.readouterr().out == menu  # a TorchScript module gets the same menu
    assert main(["suggest", f"{factories}:config"]) == 0
    assert "temperature = 0.8, searched in [0.1, 5], log" in capsys.readouterr().out
    assert main(["suggest", str(TASKS / "quadratic_task.py")]) == 0  # a Task: its choice is shown too
    shown = capsys.readouterr().out
    assert "8  classifier head: fc (Linear, 3 → 4)" in shown
    assert "what the factory chose: ℵ-space: 8 ℵ-scalars in 2 entries" in shown
    assert main(["suggest", f"{factories}:other"]) == 2
    assert "returned str: suggest needs" in capsys.readouterr().err


class Encoder(nn.Module):
    """BERT's naming: ``layer.N.attention.output.norm`` and ``layer.N.output.norm`` in every layer."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.ModuleList()
        for _ in range(2):
            block = nn.Module()
            block.attention = nn.Module()
            block.attention.output = nn.Module()
            block.attention.output.norm = nn.LayerNorm(4)
            block.output = nn.Module()
            block.output.norm = nn.LayerNorm(4)
            self.layer.append(block)


def test_a_suggested_norm_pattern_matches_its_group_only() -> None:
    model = Encoder()
    found = {s.where.split(" ")[0]: s for s in presets.suggest(model)}
    assert list(found) == ["layer.*.attention.output.norm", "layer.*.output.norm"]
    # "layer.*.output.norm" would also match the attention norms (``*`` crosses dots)
    assert (
        found["layer.*.output.norm"].call == 'presets.norm_gains(model, pattern="layer.*[0-9].output.norm")'
    )
    for item in found.values():
        aleph = eval(item.call, {"presets": presets, "model": Encoder()})  # noqa: S307 - our own strings
        assert len(aleph) == item.size == 4
    both = presets.norm_gains(Encoder(), pattern=["layer.0.output.norm", "layer.1.attention.*"])
    assert [e.name for e in both.entries] == [
        "layer.0.output.norm.weight",
        "layer.0.output.norm.bias",
        "layer.1.attention.output.norm.weight",
        "layer.1.attention.output.norm.bias",
    ]


def test_a_frozen_torchscript_module_is_refused_with_the_reason() -> None:
    frozen = torch.jit.freeze(torch.jit.script(nn.Sequential(nn.Linear(3, 2)).eval()))
    with pytest.raises(SpaceError, match="frozen .torch.jit.freeze"):
        presets.classifier_head(frozen)
    with pytest.raises(SpaceError, match="'0.bias': this TorchScript module has no parameters or buffers"):
        Aleph(frozen).add("0.bias")
    assert "none: this TorchScript module has no parameters" in presets.describe(frozen)


def test_a_preset_adds_all_of_its_entries_or_none() -> None:
    model = _net("eager")
    aleph = Aleph(model).add("fc.weight", mode="scale")
    with pytest.raises(SpaceError, match="fc.weight is already in the ℵ-space"):
        presets.classifier_head(aleph)  # fc.bias would be added first, then fc.weight is refused
    assert [e.name for e in aleph.entries] == ["fc.weight"]
    aleph.add("bn.bias")
    with pytest.raises(SpaceError, match="bn.bias is already"):
        presets.norm_gains(aleph)
    assert [e.name for e in aleph.entries] == ["fc.weight", "bn.bias"]
    config = SimpleNamespace(repetition_penalty=None, num_beams=2)
    knobs = Aleph().hyper(config, "num_beams", low=1, high=4)
    with pytest.raises(SpaceError, match="num_beams is already"):
        presets.generation(config, aleph=knobs)
    assert config.repetition_penalty is None and len(knobs) == 1  # the unset knob is unset again


class ConstantHead(nn.Module):
    """Like a converted ONNX model: a Linear, then a final ``x @ W + b`` with W and b as buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 6)
        self.register_buffer("w", torch.randn(6, 3, generator=torch.Generator().manual_seed(4)))
        self.register_buffer("b", torch.randn(3, generator=torch.Generator().manual_seed(5)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.proj(x)) @ self.w + self.b


def test_in_an_fx_graph_the_output_layer_is_the_last_to_run_or_a_matmul_by_a_constant() -> None:
    traced = torch.fx.symbolic_trace(ConstantHead().eval())
    aleph = presets.classifier_head(traced)
    # W is (inputs, outputs): one factor per output unit is one per column
    assert [(e.name, e.mode, e.per, e.size) for e in aleph.entries] == [
        ("b", "offset", "element", 3),
        ("w", "scale", "column", 3),
    ]
    with torch.no_grad():
        trained = traced(X)
        with aleph.applied(np.array([0.0, 0.0, 0.0, 2.0, 1.0, 1.0])):
            doubled = traced(X)
    assert torch.allclose(doubled[:, 0] - traced.b[0], 2.0 * (trained[:, 0] - traced.b[0]), atol=1e-5)
    assert torch.equal(doubled[:, 1:], trained[:, 1:])
    affine = presets.output_affine(torch.fx.symbolic_trace(ConstantHead()), per="output")
    assert [(e.name, e.per) for e in affine.entries] == [("w", "column"), ("b", "element")]
    [head] = [s for s in presets.suggest(traced) if s.group == "classifier head"]
    assert (head.where, head.size) == ("w (weight of the MatMul matmul, 6 → 3)", 6)

    # modules are ordered as the graph calls them, not as they were registered
    class Reversed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.out = nn.Linear(5, 2)
            self.inp = nn.Linear(3, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.inp(x))

    assert [e.name for e in presets.classifier_head(Reversed()).entries] == ["inp.bias", "inp.weight"]
    graph = torch.fx.symbolic_trace(Reversed())
    assert [e.name for e in presets.classifier_head(graph).entries] == ["out.bias", "out.weight"]
