"""The ℵ-space: which numbers of a trained model are searched, and how.

An :class:`Aleph` holds *entries*. Each entry knows its trained value, its identity (the candidate
that leaves the model unchanged), its own search scale and bounds (as a Nevergrad parameter), and
how to write a candidate into the model and restore the trained value bit for bit.

Candidates travel as flat float vectors in *natural units*: offsets for ``mode="offset"``, factors
for ``mode="scale"``, plain values for hyperparameters. ``aleph.identity()`` is the trained model.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import nevergrad as ng
import numpy as np
import torch

from afterlearner.errors import SpaceError

Mode = Literal["offset", "scale"]
Per = Literal["element", "row", "column", "tensor"]

#: Default search step of an offset, relative to the root-mean-square of the tensor it shifts.
OFFSET_STEP = 0.5
#: Absolute offset step for a tensor that is all zeros (no magnitude to derive a step from).
ZERO_TENSOR_STEP = 0.01
#: Default search step of a multiplicative factor (factors start at 1).
SCALE_STEP = 0.1
#: Default relative step of an unbounded linear hyperparameter.
HYPER_STEP = 0.1


class Entry(Protocol):
    """One named block of ℵ-scalars."""

    name: str
    size: int

    def identity(self) -> np.ndarray: ...
    def parameter(self) -> ng.p.Parameter: ...
    def to_value(self, flat: np.ndarray) -> Any: ...
    def write(self, flat: np.ndarray) -> None: ...
    def restore(self) -> None: ...
    def signature(self) -> dict[str, Any]: ...


def _factor_shape(shape: torch.Size, per: Per, name: str) -> tuple[int, ...]:
    """Shape of the searched block and how it broadcasts against the tensor."""
    if per == "element":
        return tuple(shape)
    if per == "tensor":
        return ()
    if per == "row":
        if len(shape) < 1:
            raise SpaceError(f"{name}: per='row' needs a tensor with at least 1 dimension, got a scalar")
        return (shape[0],)
    if per == "column":
        if len(shape) < 2:
            raise SpaceError(f"{name}: per='column' needs at least 2 dimensions, got shape {tuple(shape)}")
        return (shape[1],)
    raise SpaceError(f"{name}: per must be 'element', 'row', 'column' or 'tensor', got {per!r}")


def _broadcast_shape(shape: torch.Size, per: Per) -> tuple[int, ...]:
    """The shape the searched values take so that they broadcast against the tensor."""
    if per == "row":
        return (-1,) + (1,) * (len(shape) - 1)
    if per == "column":
        return (1, -1) + (1,) * (len(shape) - 2)
    return () if per == "tensor" else tuple(shape)


@dataclass(eq=False)
class TensorEntry:
    """Offsets added to, or factors multiplied into, one tensor of the model."""

    name: str
    tensor: torch.Tensor
    mode: Mode
    per: Per
    step: float
    low: float | None = None
    high: float | None = None
    original: torch.Tensor = field(init=False, repr=False)
    shape: tuple[int, ...] = field(init=False)
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.original = self.tensor.detach().clone()
        self.shape = _factor_shape(self.tensor.shape, self.per, self.name)
        self.size = int(np.prod(self.shape)) if self.shape else 1
        self._identity = np.full(self.size, 0.0 if self.mode == "offset" else 1.0)
        self._identity.flags.writeable = False
        self._view = _broadcast_shape(self.tensor.shape, self.per)
        self._needs_view = self._view != (self.size,)

    def identity(self) -> np.ndarray:
        return self._identity

    def parameter(self) -> ng.p.Parameter:
        init = self.identity().reshape(self.shape) if self.shape else self.identity()
        array = (
            ng.p.Array(init=init, lower=self.low, upper=self.high)
            if self._bounded()
            else ng.p.Array(init=init)
        )
        return array.set_mutation(sigma=self.step)

    def _bounded(self) -> bool:
        return self.low is not None or self.high is not None

    def to_value(self, flat: np.ndarray) -> np.ndarray:
        return np.asarray(flat, dtype=float).reshape(self.shape if self.shape else (1,))

    def is_identity(self, flat: np.ndarray) -> bool:
        return not flat.any() if self.mode == "offset" else bool((flat == 1.0).all())

    def retrofitted(self, flat: np.ndarray) -> torch.Tensor:
        """The tensor's value for this candidate chunk (a new tensor; the model is not touched).

        Exactly what :meth:`write` puts into the model, bit for bit: the trained tensor itself for
        the identity, else the trained values shifted or scaled.
        """
        if self.is_identity(flat):
            return self.original.clone()
        values = torch.as_tensor(flat, dtype=self.original.dtype, device=self.original.device)
        if self._needs_view:
            values = values.view(self._view)
        with torch.no_grad():
            return self.original + values if self.mode == "offset" else self.original * values

    def retrofitted_population(self, chunks: np.ndarray) -> torch.Tensor:
        """The tensor's values for λ candidate chunks at once, shape ``(λ, *tensor.shape)``.

        The same rule as :meth:`retrofitted` for each row (an identity row gives ``original + 0``,
        so a ``-0.0`` may come back as ``0.0``: equal, not bit-identical).
        """
        values = torch.as_tensor(np.asarray(chunks), dtype=self.original.dtype, device=self.original.device)
        per_candidate = (1,) * self.original.dim() if self.per == "tensor" else self._view
        values = values.view((values.shape[0], *per_candidate))
        base = self.original.unsqueeze(0)
        with torch.no_grad():
            return base + values if self.mode == "offset" else base * values

    def write(self, flat: np.ndarray) -> None:
        """Put this candidate chunk into the model: :meth:`retrofitted`'s values, computed in place."""
        if torch.is_grad_enabled():
            with torch.no_grad():
                self._write(flat)
        else:  # the evaluators write under their own no_grad: no second context per candidate
            self._write(flat)

    def _write(self, flat: np.ndarray) -> None:
        if self.is_identity(flat):
            self.tensor.copy_(self.original)  # bit for bit, -0.0 included
            return
        values = torch.as_tensor(flat, dtype=self.original.dtype, device=self.original.device)
        if self._needs_view:
            values = values.view(self._view)
        combine = torch.add if self.mode == "offset" else torch.mul
        combine(self.original, values, out=self.tensor)  # no temporary tensor, no second copy

    def restore(self) -> None:
        with torch.no_grad():
            self.tensor.copy_(self.original)

    def signature(self) -> dict[str, Any]:
        return {
            "kind": "tensor",
            "name": self.name,
            "mode": self.mode,
            "per": self.per,
            "shape": list(self.tensor.shape),
            "size": self.size,
        }


@dataclass(eq=False)
class HyperEntry:
    """A numeric attribute (or mapping item) of any Python object: a temperature, a beam width."""

    name: str
    owner: Any
    attribute: str
    low: float | None
    high: float | None
    log: bool
    integer: bool
    step: float | None
    original: Any = field(init=False)
    size: int = field(init=False, default=1)

    def __post_init__(self) -> None:
        self.original = _get(self.owner, self.attribute)

    def identity(self) -> np.ndarray:
        return np.array([float(self.original)])

    def parameter(self) -> ng.p.Parameter:
        init = float(self.original)
        if self.log:
            param: ng.p.Parameter = ng.p.Log(init=init, lower=self.low, upper=self.high)
        else:
            param = ng.p.Scalar(init=init, lower=self.low, upper=self.high)
            if self.low is None or self.high is None:
                param.set_mutation(sigma=self.step or (HYPER_STEP * abs(init) or HYPER_STEP))
        if self.step is not None:
            param.set_mutation(sigma=self.step)
        if self.integer:
            param.set_integer_casting()
        return param

    def to_value(self, flat: np.ndarray) -> float | int:
        value = float(np.asarray(flat).reshape(-1)[0])
        return int(round(value)) if self.integer else value

    def write(self, flat: np.ndarray) -> None:
        if np.array_equal(flat, self.identity()):
            _set(self.owner, self.attribute, self.original)
            return
        _set(self.owner, self.attribute, self.to_value(flat))

    def restore(self) -> None:
        _set(self.owner, self.attribute, self.original)

    def signature(self) -> dict[str, Any]:
        return {
            "kind": "hyper",
            "name": self.name,
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "integer": self.integer,
            "size": 1,
        }


def _get(owner: Any, attribute: str) -> Any:
    if isinstance(owner, MutableMapping):
        return owner[attribute]
    return getattr(owner, attribute)


def _set(owner: Any, attribute: str, value: Any) -> None:
    if isinstance(owner, MutableMapping):
        owner[attribute] = value
    else:
        setattr(owner, attribute, value)


def _safe_get(owner: Any, attribute: str) -> Any:
    try:
        return _get(owner, attribute)
    except Exception:  # noqa: BLE001 - only used to list candidates in an error message
        return None


def _has(owner: Any, attribute: str) -> bool:
    return attribute in owner if isinstance(owner, MutableMapping) else hasattr(owner, attribute)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


class Aleph:
    """The ℵ-parameters of a model: the few numbers a retrofit searches, everything else frozen.

    >>> aleph = Aleph(model)
    >>> aleph.add("fc.bias")                            # offsets from the trained values
    >>> aleph.add("fc.weight", mode="scale", per="row")  # one factor per output unit
    >>> aleph.hyper(sampler, "temperature", low=0.1, high=10.0, log=True)
    """

    def __init__(self, model: torch.nn.Module | None = None) -> None:
        self.model = model
        self.entries: list[Entry] = []
        self.current: np.ndarray | None = None  # the candidate in the model; None: as trained

    # -- building -------------------------------------------------------------------------------
    def _tensors(self) -> dict[str, torch.Tensor]:
        if self.model is None:
            raise SpaceError("this Aleph has no model: create it as Aleph(model) to add tensors")
        tensors: dict[str, torch.Tensor] = dict(self.model.named_buffers())
        tensors.update(self.model.named_parameters())
        return tensors

    def add(
        self,
        pattern: str,
        mode: Mode = "offset",
        per: Per | None = None,
        step: float | None = None,
        low: float | None = None,
        high: float | None = None,
    ) -> Aleph:
        """Search the tensors whose names match ``pattern`` (an exact name or a glob).

        ``mode="offset"`` adds a searched offset (``per`` defaults to ``"element"``);
        ``mode="scale"`` multiplies by a searched factor (``per`` defaults to ``"tensor"``: one
        factor per matched tensor). ``per="row"`` is one scalar per output unit (dimension 0),
        ``per="column"`` one per input unit (dimension 1). ``step`` overrides the search step,
        which is otherwise derived from the tensor's magnitude; ``low``/``high`` bound the values.
        """
        if mode not in ("offset", "scale"):
            raise SpaceError(f"mode must be 'offset' or 'scale', got {mode!r}")
        per = per or ("element" if mode == "offset" else "tensor")
        _check_range(pattern, low, high, log=False)
        _check_step(pattern, step)
        tensors = self._tensors()
        names = [pattern] if pattern in tensors else fnmatch.filter(tensors, pattern)
        if not names:
            if not tensors and self.model is not None and is_frozen_script(self.model):
                raise SpaceError(f"{pattern!r}: {FROZEN_SCRIPT}")
            close = difflib.get_close_matches(pattern, list(tensors), n=5, cutoff=0.5)
            hint = (
                f"; closest names: {', '.join(close)}"
                if close
                else f"; names include: {', '.join(list(tensors)[:8])}"
            )
            raise SpaceError(f"{pattern!r} matches no parameter of the model{hint}")
        taken = {id(entry.tensor) for entry in self.entries if isinstance(entry, TensorEntry)}
        new: list[TensorEntry] = []
        for name in names:
            tensor = tensors[name]
            if id(tensor) in taken:
                raise SpaceError(f"{name} is already in the ℵ-space: a parameter can be searched only once")
            if not torch.is_floating_point(tensor):
                raise SpaceError(
                    f"{name} has dtype {tensor.dtype}: only floating-point tensors can be searched"
                )
            new.append(TensorEntry(name, tensor, mode, per, step or _default_step(tensor, mode), low, high))
            taken.add(id(tensor))
        self.entries.extend(new)
        return self

    def hyper(
        self,
        owner: Any,
        attribute: str,
        low: float | None = None,
        high: float | None = None,
        log: bool = False,
        step: float | None = None,
        name: str | None = None,
        integer: bool | None = None,
    ) -> Aleph:
        """Search a numeric attribute of any object (or an item of a dict), between ``low`` and ``high``.

        ``log=True`` searches on a log scale (the range must be positive). Integer attributes are
        searched as integers unless ``integer=False``.
        """
        label = name or f"{type(owner).__name__}.{attribute}"
        if not _has(owner, attribute):
            names = (
                list(owner)
                if isinstance(owner, MutableMapping)
                else [a for a in dir(owner) if not a.startswith("_")]
            )
            close = difflib.get_close_matches(attribute, names, n=5)
            numeric = [a for a in names if _is_number(_safe_get(owner, a))][:8]
            hint = (
                f"; closest: {', '.join(close)}"
                if close
                else f"; numeric ones: {', '.join(numeric) or 'none'}"
            )
            raise SpaceError(f"{type(owner).__name__} has no attribute {attribute!r}{hint}")
        value = _get(owner, attribute)
        if not _is_number(value):
            raise SpaceError(
                f"{label} is {value!r} of type {type(value).__name__}: only int or float can be searched"
            )
        _check_range(label, low, high, log)
        _check_step(label, step)
        if log and value <= 0:
            raise SpaceError(f"{label}: log=True needs a positive current value, got {value}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise SpaceError(f"{label}: current value {value} lies outside [{low}, {high}]")
        if any(
            isinstance(e, HyperEntry) and e.owner is owner and e.attribute == attribute for e in self.entries
        ):
            raise SpaceError(f"{label} is already in the ℵ-space")
        is_int = isinstance(value, (int, np.integer)) if integer is None else integer
        self.entries.append(HyperEntry(label, owner, attribute, low, high, log, is_int, step))
        return self

    # -- using ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(entry.size for entry in self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __repr__(self) -> str:
        parts = ", ".join(f"{e.name}[{e.size}]" for e in self.entries)
        return f"Aleph({len(self)} scalars: {parts})"

    def describe(self) -> str:
        """The chosen entries for people, one line each: name, what is searched, ℵ-scalars, step, range.

        ``afterlearner suggest`` prints it for a task; :func:`afterlearner.presets.describe` lists the
        groups one could choose instead.
        """
        lines = [f"ℵ-space: {len(self)} ℵ-scalars in {len(self.entries)} entries"]
        width = max((len(entry.name) for entry in self.entries), default=0)
        for entry in self.entries:
            if isinstance(entry, TensorEntry):
                what = f"{'offsets' if entry.mode == 'offset' else 'factors'} per {entry.per}"
                low, high, step = entry.low, entry.high, f"step {entry.step:.3g}"
            else:
                assert isinstance(entry, HyperEntry)
                kind = "integer" if entry.integer else "value"
                what = f"{kind}{', log scale' if entry.log else ''}, starts at {entry.original}"
                low, high, step = entry.low, entry.high, ""
            bounds = "" if low is None and high is None else f"in [{low}, {high}]"
            extra = ", ".join(part for part in (step, bounds) if part)
            lines.append(f"  {entry.name:<{width}}  {entry.size:>6}  {what}{f' ({extra})' if extra else ''}")
        return "\n".join(lines)

    def check(self) -> None:
        """Raise :class:`SpaceError` if nothing is searched."""
        if not self.entries:
            raise SpaceError("the ℵ-space is empty: add parameters with aleph.add(...) or aleph.hyper(...)")

    def identity(self) -> np.ndarray:
        """The candidate that leaves the model as trained."""
        return np.concatenate([entry.identity() for entry in self.entries]) if self.entries else np.zeros(0)

    def _is_flat(self) -> bool:
        """True when one ``ng.p.Array`` with a per-coordinate step describes the whole space."""
        return all(isinstance(entry, TensorEntry) and not entry._bounded() for entry in self.entries)

    def parametrization(self) -> ng.p.Parameter:
        """A fresh Nevergrad parametrization of the space, starting at the identity.

        Unbounded tensor entries only: one ``ng.p.Array`` whose per-coordinate step is each entry's
        own (the optimizer sees exactly the same standardized space as with one parameter per
        entry, at a fraction of Nevergrad's bookkeeping cost). Otherwise an ``ng.p.Tuple`` with
        one parameter per entry, each with its own bounds, scale and integer casting.
        """
        self.check()
        if self._is_flat():
            steps = np.concatenate([np.full(entry.size, entry.step) for entry in self.entries])  # type: ignore[attr-defined]
            uniform = bool((steps == steps[0]).all())
            return ng.p.Array(init=self.identity()).set_mutation(sigma=float(steps[0]) if uniform else steps)
        return ng.p.Tuple(*(entry.parameter() for entry in self.entries))

    def to_vector(self, value: Any) -> np.ndarray:
        """Flatten a parametrization value (an array, or a tuple with one item per entry) into a vector."""
        if isinstance(value, np.ndarray):
            return value.astype(float).ravel()
        return np.concatenate([np.asarray(item, dtype=float).ravel() for item in value])

    def to_value(self, vector: np.ndarray) -> Any:
        """The parametrization value of a flat vector (inverse of :meth:`to_vector`)."""
        vector = self._checked(vector)
        if self._is_flat():
            return vector.copy()
        return tuple(
            entry.to_value(chunk) for entry, chunk in zip(self.entries, self._split(vector), strict=True)
        )

    def write(self, vector: np.ndarray) -> None:
        """Write a candidate into the model (always computed from the trained values, no drift)."""
        vector = self._checked(vector)
        self.current = None  # unknown while half written
        for entry, chunk in zip(self.entries, self._split(vector), strict=True):
            entry.write(chunk)
        self.current = vector.copy()

    def restore(self) -> None:
        """Put the trained values back, bit for bit."""
        for entry in self.entries:
            entry.restore()
        self.current = None

    @contextmanager
    def applied(self, vector: np.ndarray) -> Iterator[Any]:
        """``with aleph.applied(vector): ...``: the model holds the candidate inside the block.

        Afterwards, whatever happened inside, the model holds what it held before (the candidate
        written last, or the trained values), bit for bit.
        """
        before = self.current
        self.write(vector)
        try:
            yield self.model
        finally:
            if before is None:
                self.restore()
            else:
                self.write(before)

    def signature(self) -> list[dict[str, Any]]:
        """What identifies this space in a store: names, modes, sizes, ranges."""
        return [entry.signature() for entry in self.entries]

    def labels(self) -> list[str]:
        """One readable label per scalar, e.g. ``fc.bias[3]`` (see :func:`labels_of`)."""
        return labels_of(self.signature())

    def values(self, vector: np.ndarray) -> dict[str, np.ndarray | float | int]:
        """Each entry's retrofitted value for a candidate, by entry name; the model is not touched.

        A tensor entry gives the whole retrofitted tensor (offsets added, factors applied) as an
        ndarray; a hyperparameter gives the value that would be set (an int for integer ones).
        """
        vector = self._checked(vector)
        values: dict[str, np.ndarray | float | int] = {}
        for entry, chunk in zip(self.entries, self._split(vector), strict=True):
            if isinstance(entry, TensorEntry):
                values[entry.name] = entry.retrofitted(chunk).detach().cpu().numpy()
            else:
                values[entry.name] = entry.to_value(chunk)
        return values

    def tensors(self, vector: np.ndarray) -> dict[str, torch.Tensor]:
        """The retrofitted tensors of a candidate, keyed by the model's own parameter/buffer names."""
        vector = self._checked(vector)
        return {
            entry.name: entry.retrofitted(chunk)
            for entry, chunk in zip(self.entries, self._split(vector), strict=True)
            if isinstance(entry, TensorEntry)
        }

    def _split(self, vector: np.ndarray) -> list[np.ndarray]:
        chunks, start = [], 0
        for entry in self.entries:
            chunks.append(vector[start : start + entry.size])
            start += entry.size
        return chunks

    def _checked(self, vector: np.ndarray) -> np.ndarray:
        vector = np.asarray(vector, dtype=float).ravel()
        if vector.size != len(self):
            raise SpaceError(f"candidate has {vector.size} values, the ℵ-space has {len(self)}")
        return vector


#: Why a TorchScript module without parameters or buffers cannot be retrofitted by tensor name.
FROZEN_SCRIPT = (
    "this TorchScript module has no parameters or buffers: it was frozen (torch.jit.freeze, "
    "optimize_for_inference), which bakes its weights into its code as constants; choose the "
    "ℵ-parameters on the module before freezing it, or load the unfrozen file"
)


def is_frozen_script(model: torch.nn.Module) -> bool:
    """A TorchScript module whose weights are constants in its code (no parameter or buffer left)."""
    return (
        isinstance(model, torch.jit.ScriptModule)
        and next(iter(model.parameters()), None) is None
        and next(iter(model.buffers()), None) is None
    )


def _default_step(tensor: torch.Tensor, mode: Mode) -> float:
    if mode == "scale":
        return SCALE_STEP
    rms = float(tensor.detach().double().pow(2).mean().sqrt()) if tensor.numel() else 0.0
    return OFFSET_STEP * rms if rms > 0 and math.isfinite(rms) else ZERO_TENSOR_STEP


def _check_step(label: str, step: float | None) -> None:
    if step is not None and (
        isinstance(step, bool)
        or not isinstance(step, (int, float, np.integer, np.floating))
        or not step > 0
        or not math.isfinite(step)
    ):
        raise SpaceError(f"{label}: step must be a positive finite number, got {step!r}")


def _check_range(label: str, low: float | None, high: float | None, log: bool) -> None:
    if low is not None and high is not None and not low < high:
        raise SpaceError(f"{label}: low must be < high, got low={low}, high={high}")
    if log and (low is None or high is None):
        raise SpaceError(f"{label}: log=True needs both low and high")
    if log and low is not None and low <= 0:
        raise SpaceError(f"{label}: a log-scale range must be positive, got low={low}")


def labels_of(signature: list[dict[str, Any]]) -> list[str]:
    """One readable label per ℵ-scalar, from a space's signature alone (a store has no model).

    ``fc.bias[3]`` (an element), ``fc.weight[2,5]`` (an element of a matrix), ``fc.weight[3,:]``
    (the factor or offset of row 3), ``fc.weight[:,3]`` (column 3), ``fc.weight`` (one scalar for
    the whole tensor), and the hyperparameter's name.
    """
    labels: list[str] = []
    for entry in signature:
        name, size = entry["name"], int(entry["size"])
        if entry.get("kind") != "tensor" or entry.get("per") == "tensor":
            labels.extend([name] if size == 1 else [f"{name}[{i}]" for i in range(size)])
            continue
        shape, per = list(entry["shape"]), entry.get("per")
        rest = len(shape) - 1
        if per == "row":
            labels.extend(f"{name}[{i}{',:' * rest}]" for i in range(size))
        elif per == "column":
            labels.extend(f"{name}[:,{i}{',:' * (rest - 1)}]" for i in range(size))
        elif len(shape) <= 1:
            labels.extend(name if not shape else f"{name}[{i}]" for i in range(size))
        else:
            labels.extend(f"{name}[{','.join(map(str, index))}]" for index in np.ndindex(*shape))
    return labels
