"""The real pretrained recognizer: PP-OCRv4's text-line model, read from the rapidocr wheel, as torch.

``rapidocr-onnxruntime`` 1.4.4 (Apache-2.0) ships PaddleOCR's ``ch_PP-OCRv4_rec_infer.onnx``: an
SVTR-LCNet text-line recognizer (a PP-LCNetV3 convolutional backbone, two small transformer blocks,
a linear CTC head over 6,625 classes: blank, 6,623 characters, space) trained by PaddleOCR on
Chinese and Latin text. Its character list is the ONNX metadata entry ``character``. Only the file is
used: rapidocr's own code (which needs OpenCV) is never imported.

:func:`load_recognizer` converts the graph with ``onnx2torch`` into a ``torch.fx.GraphModule`` and
returns that module as it is. Two things of this file need a touch before onnx2torch takes it, and
neither changes a number: its weights are ``Constant`` nodes (onnx2torch reads weights only from
initializers), and ONNX shape inference loses the rank behind a dynamic ``Reshape``, which
onnx2torch needs to pick the BatchNorm class (the rank is the producing Conv's weight rank).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from afterlearner.errors import ConfigError

#: The wheel that ships the weights, and the file inside it.
DISTRIBUTION = "rapidocr-onnxruntime"
MODEL_FILE = "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"
#: The input height the recognizer was trained for; lines are resized to it (PaddleOCR's rec_image_shape).
HEIGHT = 48
INSTALL_HINT = (
    "the OCR experiment needs the 'realmodels' extra: pip install -e '.[realmodels]' and "
    "pip install --no-deps onnx2torch==1.5.15 rapidocr-onnxruntime==1.4.4 (as the Makefile does)"
)


class MissingModel(ConfigError):
    """A package the OCR experiment needs is not installed (the message says how to install it)."""


@dataclass
class Recognizer:
    """The converted network and what turns its outputs into text."""

    module: torch.nn.Module
    charset: list[str]
    version: str

    @property
    def blank(self) -> int:
        """The CTC blank's class index (PaddleOCR puts it first)."""
        return 0


def model_path() -> Path:
    """The ONNX file inside the installed wheel (found through the wheel's metadata, not by importing it)."""
    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError as error:
        raise MissingModel(f"{DISTRIBUTION} is not installed; {INSTALL_HINT}") from error
    path = Path(str(distribution.locate_file(MODEL_FILE)))
    if not path.is_file():
        raise MissingModel(f"{DISTRIBUTION} {distribution.version} has no {MODEL_FILE}")
    return path


def available() -> str | None:
    """None when everything the experiment needs is installed, else why not (for skips and errors)."""
    for module in ("onnx", "onnx2torch"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed; {INSTALL_HINT}"
    try:
        model_path()
    except MissingModel as error:
        return str(error)
    return None


def _import_onnx2torch() -> Any:
    """Import onnx2torch, which imports torchvision for its NMS and RoIAlign converters only.

    There is no CPU build of torchvision for this torch, and neither operator is in the recognizer,
    so when torchvision is absent an empty stand-in is put in its place for the import alone (and
    taken out right after, so nothing else sees it); the two converters then fail if ever used.
    """
    if "onnx2torch" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        import onnx2torch

        return onnx2torch
    stand_in = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("torchvision is not installed")

    ops.roi_align = ops.nms = ops.box_convert = missing  # type: ignore[attr-defined]
    stand_in.ops = ops  # type: ignore[attr-defined]
    sys.modules.update({"torchvision": stand_in, "torchvision.ops": ops})
    try:
        import onnx2torch
    finally:
        for name in ("torchvision", "torchvision.ops"):
            if sys.modules.get(name) in (stand_in, ops):
                del sys.modules[name]
    return onnx2torch


def _prepared(path: Path) -> Any:
    """The ONNX graph with its constant weights as initializers and the BatchNorm inputs' rank stated."""
    import onnx

    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    kept = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    inferred = onnx.shape_inference.infer_shapes(graph_model)
    known = {v.name for v in inferred.graph.value_info if v.type.tensor_type.HasField("shape")}
    initializers = {tensor.name: tensor for tensor in inferred.graph.initializer}
    producers = {output: node for node in inferred.graph.node for output in node.output}
    for node in inferred.graph.node:
        source = node.input[0] if node.input else ""
        if node.op_type != "BatchNormalization" or source in known:
            continue
        producer = producers.get(source)
        if producer is None or producer.op_type != "Conv" or producer.input[1] not in initializers:
            raise ConfigError(f"cannot tell the rank of {source}, the input of BatchNorm {node.name}")
        rank = len(initializers[producer.input[1]].dims)
        inferred.graph.value_info.append(
            onnx.helper.make_tensor_value_info(source, onnx.TensorProto.FLOAT, [None] * rank)
        )
    return inferred


def charset(path: Path | None = None) -> list[str]:
    """Class index → character: blank (""), the 6,623 characters of the metadata, then the space."""
    import onnx

    graph_model = onnx.load(str(path or model_path()), load_external_data=False)
    entries = {prop.key: prop.value for prop in graph_model.metadata_props}
    if "character" not in entries:
        raise ConfigError("the recognizer's ONNX metadata has no 'character' list")
    return ["", *entries["character"].splitlines(), " "]


def load_recognizer() -> Recognizer:
    """The PP-OCRv4 recognizer as a torch module in eval mode, with its character set."""
    reason = available()
    if reason is not None:
        raise MissingModel(reason)
    path = model_path()
    onnx2torch = _import_onnx2torch()
    module = onnx2torch.convert(_prepared(path)).eval()
    return Recognizer(module, charset(path), metadata.version(DISTRIBUTION))
