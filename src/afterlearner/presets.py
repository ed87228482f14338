"""Presets: the usual ℵ-parameter choices, found in a model by its layers, and a menu of them.

Choosing the ℵ-parameters is the one decision the method leaves to the user (docs/tasks.md,
"Choosing the ℵ-parameters"), and the same few choices come back in most retrofits: the output
layer's bias and per-class scales, the gains of normalization layers, a scale and shift of the
output, the decoding knobs of a generator. Each function here finds them in a model and adds them
to an :class:`~afterlearner.space.Aleph` as ordinary entries, with the steps and ranges the search
needs, so everything else in the library (stores, patches, the prefix cache, batching) sees the
same entries as a hand-written ``aleph.add(...)``.

Layers are recognized by their class name, which TorchScript keeps (``original_name``), so the
presets work alike on an ``nn.Module``, on ``torch.jit.script``/``torch.jit.load`` modules and on
converted ones (onnx2torch builds ``nn.Linear``, ``nn.Conv2d``, ``nn.BatchNorm2d``).

Every model preset takes a model (and starts a new ``Aleph(model)``) or an ``Aleph`` (and adds to
it), and returns the ``Aleph``, so presets chain::

    aleph = presets.norm_gains(presets.classifier_head(model), pattern="encoder.*")

:func:`suggest` lists the candidate groups of a model with their sizes, and :func:`describe` prints
them as a menu (``afterlearner suggest FILE.py:factory`` on the command line).
"""

from __future__ import annotations

import difflib
import fnmatch
import operator
import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import fx, nn

from afterlearner.errors import SpaceError
from afterlearner.space import FROZEN_SCRIPT, Aleph, Per, is_frozen_script
from afterlearner.task import Task

__all__ = [
    "GENERATION_KNOBS",
    "Knob",
    "OutputAffine",
    "Suggestion",
    "classifier_head",
    "describe",
    "generation",
    "layer_kind",
    "norm_gains",
    "norm_layers",
    "output_affine",
    "suggest",
]

#: Class names of normalization layers: LayerNorm, BatchNorm1d/2d/3d, GroupNorm, InstanceNorm2d,
#: RMSNorm, and the custom ones of many model zoos (T5LayerNorm, LlamaRMSNorm, OnnxBatchNorm).
_NORM = re.compile(r"Norm(\dd)?$")
#: Class names of layers whose weight is (outputs, inputs, 1, ...): a linear map per output unit.
_AFFINE = {"Linear", "NonDynamicallyQuantizableLinear", "Conv1d", "Conv2d", "Conv3d"}


def layer_kind(module: nn.Module) -> str:
    """The class name of a layer, also for a TorchScript module (which keeps it as ``original_name``)."""
    if isinstance(module, torch.jit.ScriptModule):
        return str(getattr(module, "original_name", type(module).__name__))
    return type(module).__name__


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _own_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters and buffers a module holds itself (not those of its submodules)."""
    tensors = {name: t for name, t in module.named_buffers(recurse=False) if t is not None}
    tensors.update((name, t) for name, t in module.named_parameters(recurse=False) if t is not None)
    return tensors


def _all_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of the model by name (what :meth:`Aleph.add` can address)."""
    return {**dict(model.named_buffers()), **dict(model.named_parameters())}


def _is_affine(module: nn.Module) -> bool:
    """A Linear layer or a pointwise (kernel 1) convolution: one row of weights per output unit."""
    if not (isinstance(module, nn.Linear) or layer_kind(module) in _AFFINE):
        return False
    weight = _own_tensors(module).get("weight")
    return weight is not None and weight.dim() >= 2 and all(k == 1 for k in weight.shape[2:])


def _call_order(model: nn.Module) -> dict[str, int] | None:
    """Where each module is first called in a ``torch.fx`` graph (a converted ONNX model is one flat
    graph whose module names say nothing of the order); None for other modules."""
    if not isinstance(model, fx.GraphModule):
        return None
    order: dict[str, int] = {}
    for index, node in enumerate(model.graph.nodes):
        if node.op == "call_module":
            order.setdefault(str(node.target), index)
    return order


def _affine_layers(model: nn.Module) -> list[str]:
    """Linear layers and pointwise convolutions, in the order they run where the graph says so
    (``torch.fx``), else in registration order (``model.named_modules()``)."""
    layers = [name for name, module in model.named_modules() if _is_affine(module)]
    order = _call_order(model)
    if order is not None:
        layers = sorted((name for name in layers if name in order), key=order.__getitem__)
    return layers


@dataclass(frozen=True)
class _Head:
    """An output layer: its weight (outputs along ``outputs``: ``"row"``, or ``"column"`` for the
    (inputs, outputs) constant of a matmul) and its bias, by tensor name."""

    weight: str
    bias: str | None
    outputs: Literal["row", "column"]
    label: str
    layer: str | None  # the module's name, None for a graph constant


def _module_head(model: nn.Module, name: str) -> _Head:
    module = _module(model, name)
    own = _own_tensors(module)
    if "weight" not in own:
        raise SpaceError(f"{name or 'the model'} ({layer_kind(module)}) has no weight")
    weight = own["weight"]
    kernel = " 1×1" if weight.dim() > 2 else ""
    shape = f" {weight.shape[1]} → {weight.shape[0]}" if weight.dim() >= 2 else ""
    return _Head(
        _join(name, "weight"),
        _join(name, "bias") if "bias" in own else None,
        "row",
        f"{name} ({layer_kind(module)}{kernel},{shape})",
        name,
    )


def _is_op(model: fx.GraphModule, node: fx.Node, functions: tuple[Any, ...], kind: str) -> bool:
    """Whether a graph node computes one of ``functions`` (a call, a method, or a module whose class
    name contains ``kind``, such as onnx2torch's ``OnnxMatMul``, or that applies the function)."""
    if node.op == "call_function":
        return node.target in functions
    if node.op == "call_method":
        return node.target in {getattr(f, "__name__", "") for f in functions}
    if node.op == "call_module":
        module = model.get_submodule(str(node.target))
        return kind in layer_kind(module) or getattr(module, "math_op_function", None) in functions
    return False


def _constant_head(model: nn.Module, after: str | None) -> _Head | None:
    """In a ``torch.fx`` graph, the last ``x @ W (+ b)`` whose ``W`` is a tensor of the model read by
    the graph (how onnx2torch converts a MatMul with an initializer), if it runs after the module
    ``after`` (the last affine module)."""
    if not isinstance(model, fx.GraphModule):
        return None
    nodes = list(model.graph.nodes)
    order = _call_order(model) or {}
    start = order[after] + 1 if after is not None else 0
    tensors = _all_tensors(model)

    def constant(node: Any) -> torch.Tensor | None:
        ok = isinstance(node, fx.Node) and node.op == "get_attr" and str(node.target) in tensors
        return tensors[str(node.target)] if ok else None

    for node in reversed(nodes[start:]):
        if not _is_op(model, node, (torch.matmul, operator.matmul), "MatMul") or len(node.args) < 2:
            continue
        weight = constant(node.args[1])
        if weight is None or weight.dim() != 2 or not torch.is_floating_point(weight):
            return None  # the last matmul multiplies by something else: no constant head to name
        bias = None
        for user in node.users:
            if _is_op(model, user, (torch.add, operator.add), "Add"):
                for arg in user.args:
                    value = constant(arg)
                    if value is not None and tuple(value.shape) == (weight.shape[1],):
                        bias = str(arg.target)
        name = str(node.args[1].target)
        where = node.target if node.op == "call_module" else node.name
        label = f"{name} (weight of the MatMul {where}, {weight.shape[0]} → {weight.shape[1]})"
        return _Head(name, bias, "column", label, None)
    return None


def _output_layers(model: nn.Module) -> list[_Head]:
    """The candidate output layers, the default (the one that runs last) last.

    The last affine layer, with the layers at the same place in sibling sub-models (a model holding
    a 16 kHz and an 8 kHz network has one output layer each); in a ``torch.fx`` graph, a matmul
    by a constant tensor after it instead (a converted ONNX model's final MatMul + Add).
    """
    layers = _affine_layers(model)
    constant = _constant_head(model, layers[-1] if layers else None)
    if constant is not None:
        return [constant]
    if not layers:
        return []
    last = layers[-1]
    if "." not in last:
        return [_module_head(model, last)]
    place = last.split(".", 1)[1]
    return [_module_head(model, name) for name in layers if "." in name and name.split(".", 1)[1] == place]


def _default_head(model: nn.Module, hint: str = "") -> _Head:
    heads = _output_layers(model)
    if not heads:
        raise SpaceError(
            f"{layer_kind(model)} has no Linear layer or pointwise convolution: name the output layer "
            f"with layer=...{hint}"
        )
    return heads[-1]


def _module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        close = difflib.get_close_matches(name, list(modules), n=5, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise SpaceError(f"{layer_kind(model)} has no submodule {name!r}{hint}")
    return modules[name]


def _aleph_of(target: nn.Module | Aleph) -> tuple[Aleph, nn.Module]:
    """The Aleph to add to (a new one for a model) and its model."""
    if isinstance(target, Aleph):
        if target.model is None:
            raise SpaceError("this Aleph has no model: create it as Aleph(model) to use a model preset")
        return target, target.model
    if isinstance(target, nn.Module):
        if is_frozen_script(target):
            raise SpaceError(FROZEN_SCRIPT)
        return Aleph(target), target
    raise SpaceError(f"a preset needs a torch model or an Aleph, got {type(target).__name__}")


@contextmanager
def _all_or_nothing(aleph: Aleph) -> Iterator[None]:
    """A preset adds all of its entries or, when one is refused, none (the Aleph is left as it was)."""
    count = len(aleph.entries)
    try:
        yield
    except BaseException:
        del aleph.entries[count:]
        raise


def _shift_per(tensor: torch.Tensor, per_output: bool) -> Per:
    """One shift for the whole tensor, except that a one-element tensor is searched as its element."""
    return "element" if per_output or tensor.numel() == 1 else "tensor"


# -- the output layer ---------------------------------------------------------------------------
def classifier_head(
    target: nn.Module | Aleph,
    layer: str | None = None,
    bias: bool = True,
    scales: Per | None = "row",
    low: float | None = None,
    high: float | None = None,
) -> Aleph:
    """The output layer's bias (offsets) and one factor per output unit (per class) on its weights.

    The right choice when the trained model ranks well but decides badly for the metric: a
    classifier trained on imbalanced classes judged on balanced error, a detector judged on recall
    at a precision, a threshold moved by a new deployment. The offsets move each class's score, the
    factors stretch it; the features are untouched, so it needs little data (2 × classes scalars).

    ``layer`` names the output layer; by default it is the last ``Linear`` (or pointwise
    convolution) in ``model.named_modules()`` order, which is the output layer of most classifiers
    (in a ``torch.fx`` graph, such as a converted ONNX model: the last to run, or a final matmul by
    a constant weight, ``x @ W + b``, whose factors are then per column of ``W``).
    ``scales``: ``"row"`` (one factor per class), ``"column"`` (one per input feature: re-weights
    the features, which changes the ranking of the samples too), ``"tensor"`` (one factor, a
    temperature on the scores) or ``None`` (offsets only); ``low``/``high`` bound the factors.
    The bias is searched as offsets (``bias=False`` leaves it out; a layer without one gets none).
    """
    aleph, model = _aleph_of(target)
    head = _default_head(model) if layer is None else _module_head(model, layer)
    if not (bias and head.bias) and scales is None:
        raise SpaceError(f"{head.label}: no bias and scales=None: nothing to search")
    with _all_or_nothing(aleph):
        if bias and head.bias:
            aleph.add(head.bias)
        if scales is not None:
            aleph.add(head.weight, mode="scale", per=_oriented(scales, head), low=low, high=high)
    return aleph


def _oriented(per: Per, head: _Head) -> Per:
    """``"row"`` means per output unit and ``"column"`` per input, whatever the weight's layout."""
    if head.outputs == "column" and per in ("row", "column"):
        return "column" if per == "row" else "row"
    return per


def output_affine(
    target: nn.Module | Aleph,
    layer: str | None = None,
    per: Literal["tensor", "output"] = "tensor",
    scale_step: float | None = None,
    shift_step: float | None = None,
) -> Aleph:
    """A scale and a shift of the model's output: 2 scalars (or 2 per output with ``per="output"``).

    The right choice when the output is a quantity judged by a threshold or a ratio and is off by a
    systematic factor or level: calibration of a regressor ("within ±15%"), depth from a new camera
    (δ1), a score whose level moved. It is the smallest ℵ-space that can express such a correction.

    Where it goes, in this order:

    * a module holding its own ``scale`` and ``shift`` tensors (an :class:`OutputAffine` wrapper,
      or any model that applies ``scale · y + shift`` itself): those are searched;
    * otherwise the last affine layer (or ``layer=``): a factor on its weights and an offset on its
      bias, so the output becomes ``s · Wx + b + t``, an affine map of the layer's output
      (``s · y + t'`` with ``t' = t + (1 − s) · b``). This is exact when the model's output is
      an affine function of that layer's (a regression head, logits); when a non-linearity follows
      (a sigmoid, a clamp), wrap the model in :class:`OutputAffine` instead.

    Factors start at 1 with step ``scale_step`` (default 0.1); the shift starts at 0 with step
    ``shift_step``, which should be given in output units (e.g. a tenth of the targets' spread):
    by default it is half the bias's root-mean-square, or 0.01 for a zero shift.
    """
    if per not in ("tensor", "output"):
        raise SpaceError(f"per must be 'tensor' or 'output', got {per!r}")
    aleph, model = _aleph_of(target)
    wrap = "wrap the model in presets.OutputAffine(model)"
    holder = model if layer is None else _module(model, layer)
    own = _own_tensors(holder)
    if "scale" in own and "shift" in own:
        prefix = "" if layer is None else layer
        scale, shift, outputs = _join(prefix, "scale"), _join(prefix, "shift"), own["scale"]
        scale_per: Per = ("row" if outputs.dim() else "element") if per == "output" else "tensor"
        shift_tensor = own["shift"]
    else:
        head = _default_head(model, f", or {wrap}") if layer is None else _module_head(model, layer)
        if head.bias is None:
            raise SpaceError(f"{head.label} has no bias to shift the output with: {wrap}")
        scale, shift = head.weight, head.bias
        scale_per = _oriented("row", head) if per == "output" else "tensor"
        shift_tensor = _all_tensors(model)[shift]
    with _all_or_nothing(aleph):
        aleph.add(scale, mode="scale", per=scale_per, step=scale_step)
        aleph.add(shift, per=_shift_per(shift_tensor, per == "output"), step=shift_step)
    return aleph


class OutputAffine(nn.Module):
    """``scale · model(...) + shift``: an output scale and shift for a model that has no place for one.

    Wrap a model whose output is not an affine function of its last layer (a sigmoid or a clamp at
    the end, a TorchScript module that cannot be edited) and call :func:`output_affine` on the
    wrapper. ``outputs=None`` gives one scale and one shift; ``outputs=k`` gives one per entry of
    the output's last dimension. At scale 1 and shift 0 the wrapper returns the model's output
    unchanged (``y · 1 + 0``). The wrapped model is ``wrapper.model``, so its parameters are named
    ``model.<name>`` in the wrapper's Aleph.
    """

    def __init__(
        self, model: nn.Module, scale: float = 1.0, shift: float = 0.0, outputs: int | None = None
    ) -> None:
        super().__init__()
        self.model = model
        shape = () if outputs is None else (outputs,)
        self.scale = nn.Parameter(torch.full(shape, float(scale)), requires_grad=False)
        self.shift = nn.Parameter(torch.full(shape, float(shift)), requires_grad=False)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.model(*args, **kwargs) * self.scale + self.shift


# -- normalization layers -----------------------------------------------------------------------
def norm_layers(model: nn.Module, pattern: str | Sequence[str] = "*") -> list[str]:
    """Names of the normalization layers with a gain or a bias whose name matches ``pattern``.

    ``pattern`` is a glob on module names (``*`` matches dots too, as in :meth:`Aleph.add`) or a
    list of globs (a layer matching any of them).
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    return [
        name
        for name, module in model.named_modules()
        if _NORM.search(layer_kind(module))
        and any(fnmatch.fnmatchcase(name, glob) for glob in patterns)
        and ({"weight", "bias"} & set(_own_tensors(module)))
    ]


def norm_gains(
    target: nn.Module | Aleph,
    pattern: str | Sequence[str] = "*",
    per: Literal["tensor", "channel"] = "tensor",
    gains: bool = True,
    biases: bool = True,
) -> Aleph:
    """The gains (as factors) and biases (as offsets) of the normalization layers matching ``pattern``.

    The right choice when the inputs' statistics moved (a new sensor, noise, another domain) and
    the layers deep in the network should pass on more or less of what they see, while the learned
    features stay: LayerNorm, BatchNorm, GroupNorm, InstanceNorm and RMSNorm layers (by class
    name, also in TorchScript and converted modules). ``pattern`` is a glob on module names
    (``"encoder.*"``, ``"blocks.*.norm1"``; ``*`` matches dots too) or a list of globs.

    ``per="tensor"``: one factor and one offset per layer (2 scalars a layer: the safest with a
    small ℵ-set); ``per="channel"``: one per channel (2 × channels a layer). ``gains=False`` or
    ``biases=False`` leave either out.
    """
    if per not in ("tensor", "channel"):
        raise SpaceError(f"per must be 'tensor' or 'channel', got {per!r}")
    aleph, model = _aleph_of(target)
    names = norm_layers(model, pattern)
    if not names:
        found = norm_layers(model)
        hint = f"; its normalization layers: {', '.join(found[:8])}" if found else ""
        raise SpaceError(f"no normalization layer of {layer_kind(model)} matches {pattern!r}{hint}")
    each: Per = "tensor" if per == "tensor" else "element"
    with _all_or_nothing(aleph):
        for name in names:
            own = _own_tensors(_module(model, name))
            if gains and "weight" in own:
                aleph.add(_join(name, "weight"), mode="scale", per=each)
            if biases and "bias" in own:
                aleph.add(_join(name, "bias"), per=each)
    return aleph


# -- decoding knobs -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Knob:
    """A decoding knob: its default when unset, its search range, and when it has an effect."""

    attribute: str
    default: float
    low: float
    high: float
    log: bool
    integer: bool
    sampling: bool  # only used when sampling (do_sample)
    reason: str


#: The decoding knobs :func:`generation` searches, with the defaults Hugging Face uses when unset.
GENERATION_KNOBS: tuple[Knob, ...] = (
    Knob("temperature", 1.0, 0.1, 5.0, True, False, True, "sharpens (< 1) or flattens (> 1) sampling"),
    Knob("top_p", 1.0, 0.05, 1.0, False, False, True, "samples from the most probable mass p only"),
    Knob("top_k", 50, 1, 500, True, True, True, "samples from the k most probable tokens only"),
    Knob("repetition_penalty", 1.0, 0.5, 2.0, True, False, False, "> 1 discourages repeating tokens"),
    Knob("length_penalty", 1.0, -2.0, 3.0, False, False, False, "beam scores: > 0 favours longer outputs"),
    Knob("num_beams", 1, 1, 8, False, True, False, "beam width: more beams search further, cost more"),
)
_KNOBS = {knob.attribute: knob for knob in GENERATION_KNOBS}


def _config_of(source: Any) -> Any:
    """A model's ``generation_config``, or the object itself."""
    if not isinstance(source, Mapping) and getattr(source, "generation_config", None) is not None:
        return source.generation_config
    return source


def _lookup(owner: Any, attribute: str) -> tuple[bool, Any]:
    if isinstance(owner, Mapping):
        return attribute in owner, owner.get(attribute)
    return hasattr(owner, attribute), getattr(owner, attribute, None)


def _knob_state(owner: Any, knob: Knob) -> tuple[float | None, str]:
    """The knob's starting value, or None and why it is left out."""
    has, value = _lookup(owner, knob.attribute)
    if not has:
        return None, "not an attribute of this object"
    if knob.sampling:
        has_sample, do_sample = _lookup(owner, "do_sample")
        if has_sample and not do_sample:
            return None, "used only when sampling, and do_sample is not set"
    if value is None:
        return float(knob.default), "unset: starts at its default"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"{value!r} is not a number"
    if knob.log and value <= 0:
        return None, f"{value} turns it off"
    return float(value), ""


def generation(
    config: Any,
    aleph: Aleph | None = None,
    knobs: Iterable[str] | None = None,
) -> Aleph:
    """The decoding knobs of a generator: temperature, top-p, top-k, repetition and length penalties, beams.

    The right choice when a generative model (a translator, a captioner, a language model) is good
    but its outputs are judged on a metric decoding was not tuned for (BLEU, word error rate, unit
    tests passed): the knobs change what is generated without touching a weight, and cost nothing
    to restore. ``config`` is a Hugging Face ``GenerationConfig``, a model holding one
    (``model.generation_config``), a dict of generation keyword arguments, or any object with such
    attributes; only the knobs it has are searched (:data:`GENERATION_KNOBS` lists them with their
    ranges). Temperature, top-k and the repetition penalty are searched on a log scale, top-k and
    the number of beams as integers.

    By default every knob that has an effect is added: the sampling ones (temperature, top-p,
    top-k) only when ``do_sample`` is set (or the object has no ``do_sample``). A knob left unset
    (``None``: "the library's default") is first set to that default, which is what generation
    uses for it, so the search starts from the model as it decodes. ``knobs=[...]`` chooses the
    knobs by name and refuses one that would have no effect. ``aleph`` adds them to an existing
    ``Aleph`` (one with the model's tensors, say); by default a new ``Aleph()`` without a model.
    """
    owner = _config_of(config)
    aleph = Aleph() if aleph is None else aleph
    chosen = GENERATION_KNOBS if knobs is None else [_knob_named(name) for name in knobs]
    plan: list[tuple[Knob, float]] = []
    for knob in chosen:
        value, why = _knob_state(owner, knob)
        if value is None:
            if knobs is None:
                continue
            raise SpaceError(f"{knob.attribute}: {why}")
        plan.append((knob, value))
    unset = [knob for knob, _ in plan if _lookup(owner, knob.attribute)[1] is None]
    try:
        with _all_or_nothing(aleph):
            for knob, value in plan:
                if knob in unset:
                    _put(owner, knob.attribute, int(value) if knob.integer else value)
                aleph.hyper(
                    owner,
                    knob.attribute,
                    low=min(knob.low, value),
                    high=max(knob.high, value),
                    log=knob.log,
                    integer=knob.integer,
                )
    except BaseException:
        for knob in unset:  # the object is left as it was, unset knobs included
            _put(owner, knob.attribute, None)
        raise
    return aleph


def _put(owner: Any, attribute: str, value: Any) -> None:
    if isinstance(owner, MutableMapping):
        owner[attribute] = value
    else:
        setattr(owner, attribute, value)


def _knob_named(name: str) -> Knob:
    if name not in _KNOBS:
        raise SpaceError(f"unknown decoding knob {name!r}; known: {', '.join(_KNOBS)}")
    return _KNOBS[name]


# -- the menu -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Suggestion:
    """One candidate group of ℵ-parameters: where it is, how many ℵ-scalars, how to add it, and why."""

    group: str
    where: str
    size: int
    call: str
    reason: str


def _group_of(name: str) -> str:
    """``blocks.3.norm1`` → ``blocks.*.norm1``: layers repeated in a stack form one group.

    Only indices followed by more of the name are replaced: ``features.4`` (a layer of a
    Sequential) stays a group of its own, ``blocks.0.1`` becomes ``blocks.*.1``.
    """
    return re.sub(r"(?:(?<=\.)|^)\d+(?=\.)", "*", name)


def _model_suggestions(model: nn.Module) -> list[Suggestion]:
    found: list[Suggestion] = []
    heads = _output_layers(model)
    tensors = _all_tensors(model)
    for head in heads:
        weight = tensors[head.weight]
        outputs = weight.shape[0 if head.outputs == "row" else 1]
        option = "" if head is heads[-1] else f', layer="{head.layer}"'
        found.append(
            Suggestion(
                "classifier head",
                head.label,
                (tensors[head.bias].numel() if head.bias else 0) + outputs,
                f"presets.classifier_head(model{option})",
                "moves each class's score: the trade-off between classes (imbalance, class-weighted metrics)",
            )
        )
    own_root = _own_tensors(model)
    if "scale" in own_root and "shift" in own_root:
        found.append(
            Suggestion(
                "output affine",
                f"the model's own scale and shift ({layer_kind(model)})",
                2,
                "presets.output_affine(model, shift_step=...)",
                "a global scale and shift of the output: calibration, regression, depth",
            )
        )
    else:
        for head in heads:
            if head.bias is None:
                continue
            option = "" if head is heads[-1] else f', layer="{head.layer}"'
            found.append(
                Suggestion(
                    "output affine",
                    f"{head.layer or head.weight}: a factor on its weights, an offset on its bias",
                    2,
                    f"presets.output_affine(model{option}, shift_step=...)",
                    "a global scale and shift of the output: calibration, regression, depth",
                )
            )
    groups: dict[str, list[str]] = {}
    for name in norm_layers(model):
        groups.setdefault(_group_of(name), []).append(name)
    for group, names in groups.items():
        tensors = [
            t for n in names for t in _own_tensors(_module(model, n)).items() if t[0] in ("weight", "bias")
        ]
        channels = sum(t.numel() for _, t in tensors)
        kinds = sorted({layer_kind(_module(model, n)) for n in names})
        count = f"{len(names)} layers" if len(names) > 1 else "1 layer"
        found.append(
            Suggestion(
                "normalization gains",
                f"{group} ({count}, {'/'.join(kinds)}; per channel: {channels} scalars)",
                len(tensors),
                f"presets.norm_gains(model, pattern={_exact_pattern(model, group, names)})",
                "rescales what these layers pass on: inputs whose statistics moved (new sensor, noise)",
            )
        )
    return found


def _exact_pattern(model: nn.Module, group: str, names: list[str]) -> str:
    """A pattern matching exactly the group's layers, as Python source: the group's glob, the glob
    with each index required to end in a digit (``*`` crosses dots: ``layer.*.output.norm`` also
    matches ``layer.0.attention.output.norm``), or else the list of names."""
    for glob in (group, group.replace("*", "*[0-9]")):
        if norm_layers(model, glob) == names:
            return f'"{glob}"'
    return repr(names)


def _generation_suggestions(config: Any, source: str) -> list[Suggestion]:
    found = []
    for knob in GENERATION_KNOBS:
        value, why = _knob_state(config, knob)
        if value is None:
            continue
        scale = ", log" if knob.log else ""
        start = f"{value:g}" + (f" ({why})" if why else "")
        found.append(
            Suggestion(
                "decoding knob",
                f"{knob.attribute} = {start}, searched in [{knob.low:g}, {knob.high:g}]{scale}",
                1,
                f'presets.generation({source}, knobs=["{knob.attribute}"])',
                knob.reason,
            )
        )
    return found


def suggest(target: Any) -> list[Suggestion]:
    """The candidate ℵ-parameter groups of a model (or an Aleph's or a Task's, or a generation config).

    For a torch model: its classifier head (the last affine layer), an output scale and shift,
    each group of normalization layers (layers repeated in a stack, ``blocks.*.norm1``, form one
    group), and the decoding knobs of its ``generation_config`` if it has one. For a generation
    config (or a dict of generation arguments): its knobs. Nothing is added or changed.
    """
    model = _model_of(target)
    found: list[Suggestion] = []
    if isinstance(model, nn.Module):
        found.extend(_model_suggestions(model))
    config = _config_of(model) if model is not None else None
    if config is not None and not isinstance(config, nn.Module):
        found.extend(_generation_suggestions(config, "model" if config is not model else "config"))
    return found


def _model_of(target: Any) -> Any:
    """What to examine: an Aleph's or a Task's model, or the target itself."""
    if isinstance(target, Task):
        target = target.aleph
    return target.model if isinstance(target, Aleph) else target


def describe(target: Any) -> str:
    """:func:`suggest` as a menu for people: one block per group, its size, the call, and why.

    Deterministic (the same model gives the same text), so it can be kept in a file and compared.
    """
    model = _model_of(target)
    found = suggest(target)
    if isinstance(model, nn.Module):
        total = sum(p.numel() for p in model.parameters())
        title = f"ℵ-parameter candidates for {layer_kind(model)} ({total:,} parameters)"
    else:
        title = f"ℵ-parameter candidates for {type(model).__name__}"
    if isinstance(model, nn.Module) and is_frozen_script(model):
        return f"{title}\n  none: {FROZEN_SCRIPT}"
    if not found:
        return (
            f"{title}\n  none found: choose tensors by name with aleph.add(...), knobs with aleph.hyper(...)"
        )
    width = max(len(str(s.size)) for s in found)
    lines = [title, ""]
    for item in found:
        lines.append(f"  {item.size:>{width}}  {item.group}: {item.where}")
        pad = " " * (width + 4)
        lines.append(f"{pad}{item.call}")
        lines.append(f"{pad}{item.reason}")
    lines.append("")
    lines.append(
        "sizes are in ℵ-scalars; with a few hundred ℵ-samples, a few to a few dozen is the usual range"
    )
    return "\n".join(lines)
