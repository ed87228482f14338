"""Frozen-prefix caching: compute the part of the network before every ℵ-parameter once.

When every ℵ-parameter is used after some modules of the network have produced their outputs, those
outputs do not depend on the candidate. :class:`PrefixCache` finds such *boundary modules*, records
their outputs on the ℵ-dataset once, and replays them: while the cache is active, a boundary
module's ``forward`` returns its recorded output instead of computing, so each candidate only runs
what comes after. Everything else (the model's own forward code, hyperparameters, control flow)
still runs live, which keeps the result identical to the uncached loss. The recorded tensors are
handed out as they are, not copied (most feed only the next cached module); a live part seen
changing one in place gets copies of that boundary from then on (:meth:`PrefixCache._keep_intact`).

How the boundary is found: one probe forward pass on the first batch, with hooks on every module
recording when each module finishes, and a ``TorchFunctionMode`` recording when an ℵ-tensor is first
used by any torch function. A module is a valid boundary if it runs exactly once and finishes
before that first use; the automatic choice is every valid module not inside another valid one.
Every such module is replayed, but only the outputs that something outside the cached modules reads
are stored: the probe also records which module made each tensor and, at each torch function, which
modules are running, so an output read only inside other cached modules (a chain of layers in a flat
``torch.fx`` graph, as ``onnx2torch`` makes) is replayed as a zero-cost stand-in of its shape and
dtype (its values are never read: every read of a tensor, ``.shape`` included, is a torch function).
A hyperparameter counts as used when the forward pass first reads its attribute (the owner's class
is swapped, during the probe only, for a subclass that logs the read). A hyperparameter held in a
dict cannot be watched, so automatic caching is off for such spaces (a boundary named by the user is
then trusted for it).
"""

from __future__ import annotations

import difflib
import re
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from afterlearner.errors import ConfigError
from afterlearner.evaluators.base import Measured, Outcome, measure
from afterlearner.guards import GuardedLoss
from afterlearner.losses import DatasetLoss, concat
from afterlearner.space import Aleph, HyperEntry, TensorEntry


class BoundaryError(ConfigError):
    """A cache boundary cannot be used: unknown module, run more than once, or an ℵ-parameter before it."""


class CacheWarning(UserWarning):
    """The prefix cache was not used (too big for the memory limit); evaluation falls back to full passes."""


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_bytes(limit: int | float | str | None) -> int | None:
    """``"512MiB"``, ``"2GB"``, ``1e9`` → a number of bytes (None stays None: no limit)."""
    if limit is None:
        return None
    if isinstance(limit, (int, float)) and not isinstance(limit, bool):
        if limit < 0:
            raise ConfigError(f"a memory limit must be >= 0, got {limit}")
        return int(limit)
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", str(limit))
    if match is None or match.group(2).lower() not in _UNITS:
        raise ConfigError(f"cannot read {limit!r} as a memory size (examples: 500MB, 2GiB, 1e9)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def human_bytes(count: float) -> str:
    """A byte count for people: ``1.5 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover - the loop always returns


class _Uses(TorchFunctionMode):
    """Logs, in event order, the first time each watched tensor is an operand of a torch function,
    and calls ``read(tensor)`` for every tensor operand (to see which module outputs are read where)."""

    def __init__(
        self,
        watched: dict[int, str],
        log: Callable[[str, str], None],
        read: Callable[[torch.Tensor], None] | None = None,
    ) -> None:
        super().__init__()
        self.watched = watched
        self.log = log
        self.read = read

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        for leaf in pytree.tree_leaves((args, kwargs)):
            if isinstance(leaf, torch.Tensor):
                if id(leaf) in self.watched:
                    self.log("use", self.watched[id(leaf)])
                if self.read is not None:
                    self.read(leaf)
        return func(*args, **kwargs)


@dataclass(frozen=True)
class _StandIn:
    """A replayed output nobody outside the cache reads: its shape and dtype, no values."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device

    def tensor(self) -> torch.Tensor:
        return torch.zeros((), dtype=self.dtype, device=self.device).expand(self.shape)


@dataclass
class Probe:
    """What one forward pass showed: module exits, call counts, and the first use of an ℵ-parameter."""

    exits: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    cacheable: dict[str, bool] = field(default_factory=dict)
    output_bytes: dict[str, int] = field(default_factory=dict)
    first_use: int | None = None
    first_user: str | None = None
    unlocatable: list[str] = field(default_factory=list)
    events: int = 0
    #: Module → the modules running at each read of its output (an empty tuple: read by no module).
    readers: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)


def _cacheable(output: Any) -> tuple[bool, int]:
    leaves = pytree.tree_leaves(output)
    tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
    plain = all(isinstance(leaf, (torch.Tensor, int, float, bool, type(None))) for leaf in leaves)
    return bool(tensors) and plain, sum(t.numel() * t.element_size() for t in tensors)


def scripted_module(aleph: Aleph) -> str | None:
    """The name of the first TorchScript module in the model (``"<model>"`` for the model itself), or None.

    Prefix caching needs Python forward hooks and the torch-function mode to see the forward pass;
    a ScriptModule runs compiled code that neither reaches.
    """
    if aleph.model is None:
        return None
    for name, module in aleph.model.named_modules():
        if isinstance(module, torch.jit.ScriptModule):
            return name or "<model>"
    return None


def probe(aleph: Aleph, loss: DatasetLoss) -> Probe:
    """Run the first batch once and record where the ℵ-parameters are first used."""
    model = aleph.model
    if model is None:
        raise BoundaryError("prefix caching needs an Aleph built on a model")
    result = Probe()
    watched = {id(e.tensor): e.name for e in aleph.entries if isinstance(e, TensorEntry)}
    module_names = {id(module): name for name, module in model.named_modules()}

    def log(kind: str, name: str) -> None:
        if kind == "use" and result.first_use is None:
            result.first_use, result.first_user = result.events, name
        result.events += 1

    running: list[str] = []
    # id → (module, a weak reference: a freed tensor's id may be reused, and holding every output of
    # a deep network would keep all its activations in memory)
    made: dict[int, tuple[str, weakref.ref[torch.Tensor]]] = {}

    def read(tensor: torch.Tensor) -> None:
        maker = made.get(id(tensor))
        if maker is not None and maker[1]() is tensor:
            result.readers.setdefault(maker[0], []).append(tuple(running))

    def before(module: torch.nn.Module, args: Any) -> None:
        running.append(module_names[id(module)])

    def after(module: torch.nn.Module, args: Any, output: Any) -> None:
        name = module_names[id(module)]
        if running and running[-1] == name:
            running.pop()
        result.exits[name] = result.events
        result.calls[name] = result.calls.get(name, 0) + 1
        result.cacheable[name], result.output_bytes[name] = _cacheable(output)
        for leaf in pytree.tree_leaves(output):
            if isinstance(leaf, torch.Tensor):
                made[id(leaf)] = (name, weakref.ref(leaf))
        log("exit", name)

    handles = [module.register_forward_pre_hook(before) for module in model.modules()]
    handles += [module.register_forward_hook(after) for module in model.modules()]
    watchers = _watch_hyperparameters(aleph, log, result.unlocatable)
    try:
        with torch.no_grad(), _Uses(watched, log, read):
            output = loss.run_batch(model, 0)
        for leaf in pytree.tree_leaves(output):
            if isinstance(leaf, torch.Tensor):
                read(leaf)  # the loss's output is read by the metric, outside every module
    finally:
        for handle in handles:
            handle.remove()
        for owner, cls in watchers:
            owner.__class__ = cls
    return result


def _watch_hyperparameters(
    aleph: Aleph, log: Callable[[str, str], None], unlocatable: list[str]
) -> list[tuple[Any, type]]:
    """Make reading a hyperparameter's attribute log a use; returns (owner, class) pairs to undo it.

    The owner's class is swapped for a subclass whose ``__getattribute__`` logs the read. Owners
    whose class cannot be swapped (dicts, built-in types) go to ``unlocatable``.
    """
    by_owner: dict[int, tuple[Any, dict[str, str]]] = {}
    for entry in aleph.entries:
        if isinstance(entry, HyperEntry):
            by_owner.setdefault(id(entry.owner), (entry.owner, {}))[1][entry.attribute] = entry.name
    swapped: list[tuple[Any, type]] = []
    for owner, labels in by_owner.values():
        cls = type(owner)

        def read(self: Any, name: str, cls: type = cls, labels: dict[str, str] = labels) -> Any:
            if name in labels:
                log("use", labels[name])
            return cls.__getattribute__(self, name)

        try:
            owner.__class__ = type(cls.__name__, (cls,), {"__getattribute__": read})
        except TypeError:
            unlocatable.extend(labels.values())
            continue
        swapped.append((owner, cls))
    return swapped


def _valid(name: str, found: Probe) -> bool:
    before_use = found.first_use is None or found.exits[name] < found.first_use
    return found.calls.get(name) == 1 and found.cacheable[name] and before_use


def _inside(name: str, outer: str) -> bool:
    return outer == "" and name != "" or name.startswith(outer + ".")


def automatic_boundaries(found: Probe) -> list[str]:
    """Every valid boundary module that is not inside another valid one, in the order they finish."""
    if found.unlocatable:
        return []
    valid = [name for name in found.exits if _valid(name, found)]
    outer = [name for name in valid if not any(_inside(name, other) for other in valid if other != name)]
    return sorted(outer, key=lambda name: found.exits[name])


def read_outside(boundaries: Sequence[str], found: Probe) -> list[str]:
    """The boundaries whose output is read somewhere other than inside a cached module: those stored.

    The others' outputs only feed cached modules, which replay their own outputs instead of
    computing, so their values are never needed.
    """
    cached = set(boundaries)
    return [
        name
        for name in boundaries
        if any(not cached.intersection(stack) for stack in found.readers.get(name, []))
    ]


def check_boundaries(names: Sequence[str], aleph: Aleph, found: Probe) -> list[str]:
    """The user's boundaries, or a :class:`BoundaryError` saying why one cannot be used."""
    assert aleph.model is not None
    modules = dict(aleph.model.named_modules())
    for name in names:
        if name not in modules:
            close = difflib.get_close_matches(name, [n for n in modules if n], n=5, cutoff=0.4)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise BoundaryError(f"boundary {name!r} is not a module of the model{hint}")
        inside = [e.name for e in aleph.entries if isinstance(e, TensorEntry) and _inside(e.name, name)]
        if inside:
            raise BoundaryError(
                f"boundary {name!r} contains the ℵ-parameter {inside[0]}: it cannot be cached"
            )
        calls = found.calls.get(name, 0)
        if calls != 1:
            raise BoundaryError(
                f"boundary {name!r} runs {calls} times per forward pass; a boundary must run once"
            )
        if not found.cacheable[name]:
            raise BoundaryError(
                f"boundary {name!r} returns something other than tensors: it cannot be cached"
            )
        if found.first_use is not None and found.exits[name] > found.first_use:
            raise BoundaryError(
                f"boundary {name!r} has the ℵ-parameter {found.first_user} before it: "
                f"{found.first_user} is used "
                f"before {name!r} finishes, so its output depends on the candidate; pick a later module"
            )
    return list(names)


class PrefixCache:
    """Recorded outputs of the boundary modules on every batch of a :class:`DatasetLoss`.

    ``boundary``: None finds the boundaries automatically; a module name (or a list) names them and
    is checked. ``memory_limit`` (bytes or ``"500MB"``): above it the cache is not built and a
    :class:`CacheWarning` says so. ``enabled`` tells whether it is in use, ``describe()`` why (not).
    """

    def __init__(
        self,
        aleph: Aleph,
        loss: DatasetLoss,
        boundary: str | Sequence[str] | None = None,
        memory_limit: int | float | str | None = None,
    ) -> None:
        self.aleph = aleph
        self.loss = loss
        self.limit = parse_bytes(memory_limit)
        self.store: dict[str, list[tuple[list[Any], Any]]] = {}
        #: Boundaries replayed as copies: the live part was seen changing their outputs in place.
        self.copying: set[str] = set()
        self._versions: dict[str, list[list[int]]] = {}
        self.batch = 0
        self.nbytes = 0
        self.reason = ""
        self.boundaries: list[str] = []
        self.estimate = 0
        scripted = scripted_module(aleph)
        if scripted is not None:
            self.reason = (
                f"{scripted} is a TorchScript module: its compiled graph calls its submodules directly, so "
                "their outputs cannot be recorded or replayed, nor the uses of ℵ-parameters inside it watched"
            )
            if boundary is not None:
                raise BoundaryError(f"cannot cache a prefix: {self.reason}")
            return
        found = probe(aleph, loss)
        if boundary is None:
            self.boundaries = automatic_boundaries(found)
            if found.unlocatable:
                self.reason = (
                    f"reads of hyperparameter {found.unlocatable[0]} cannot be watched (its owner is a "
                    "dict or a built-in), so where it acts is unknown; name a boundary to cache anyway"
                )
            elif not self.boundaries:
                self.reason = f"no module finishes before the first ℵ-parameter ({found.first_user}) is used"
        else:
            self.boundaries = check_boundaries(
                [boundary] if isinstance(boundary, str) else list(boundary), aleph, found
            )
        self.stored = read_outside(self.boundaries, found)
        self.estimate = self._estimate(found)
        if self.boundaries and self.limit is not None and self.estimate > self.limit:
            self.reason = (
                f"the cache would take about {human_bytes(self.estimate)}, over the limit of "
                f"{human_bytes(self.limit)}; evaluating full forward passes instead"
            )
            warnings.warn(self.reason, CacheWarning, stacklevel=2)
            self.boundaries, self.stored = [], []
        if self.boundaries:
            self._record()

    @property
    def enabled(self) -> bool:
        return bool(self.boundaries)

    def describe(self) -> str:
        """One line: what is cached and how much memory it takes, or why nothing is."""
        if not self.enabled:
            return f"prefix cache off: {self.reason}"
        names = [b or "<model>" for b in self.boundaries]
        shown = ", ".join(names) if len(names) <= 4 else f"{names[0]}, …, {names[-1]} ({len(names)} modules)"
        return f"prefix cache: {shown} ({human_bytes(self.nbytes)})"

    def _estimate(self, found: Probe) -> int:
        first = len(
            self.loss.batches[0][0] if isinstance(self.loss.batches[0], tuple) else self.loss.batches[0]
        )
        per_sample = sum(found.output_bytes[name] for name in self.stored) / max(first, 1)
        return int(per_sample * self.loss.n)

    def _record(self) -> None:
        model = self.aleph.model
        assert model is not None
        modules = dict(model.named_modules())
        self.store = {name: [] for name in self.boundaries}
        kept = set(self.stored)
        handles = []
        for name in self.boundaries:

            def keep(
                module: torch.nn.Module, args: Any, output: Any, name: str = name, stored: bool = name in kept
            ) -> None:
                leaves, spec = pytree.tree_flatten(output)
                copies = [
                    (
                        (
                            leaf.detach().clone()
                            if stored
                            else _StandIn(tuple(leaf.shape), leaf.dtype, leaf.device)
                        )
                        if isinstance(leaf, torch.Tensor)
                        else leaf
                    )
                    for leaf in leaves
                ]
                self.store[name].append((copies, spec))

            handles.append(modules[name].register_forward_hook(keep))
        try:
            with torch.no_grad():
                for index in range(len(self.loss.batches)):
                    self.loss.run_batch(model, index)
                    for name in self.boundaries:
                        if len(self.store[name]) != index + 1:
                            raise BoundaryError(
                                f"boundary {name!r} did not run exactly once on batch {index}"
                            )
        finally:
            for handle in handles:
                handle.remove()
        self.nbytes = sum(
            leaf.numel() * leaf.element_size()
            for records in self.store.values()
            for leaves, _ in records
            for leaf in leaves
            if isinstance(leaf, torch.Tensor)
        )
        self._versions = {name: self._versions_of(name) for name in self.boundaries}

    def _versions_of(self, name: str) -> list[list[int]]:
        """The version counters of a boundary's recorded tensors (an in-place change bumps them)."""
        return [
            [leaf._version for leaf in leaves if isinstance(leaf, torch.Tensor)]
            for leaves, _ in self.store[name]
        ]

    def _replay(self, name: str) -> Callable[..., Any]:
        """The boundary's ``forward`` while the cache is active: its recorded output for this batch.

        The recorded tensors themselves, not copies: most boundary outputs only feed the next cached
        module, which ignores them, and copying all of them cost a large part of an evaluation. A
        live part that changes a replayed tensor in place is caught afterwards (:meth:`_keep_intact`).
        """

        def forward(*args: Any, **kwargs: Any) -> Any:
            leaves, spec = self.store[name][self.batch]
            copy = name in self.copying
            return pytree.tree_unflatten(
                [
                    x.tensor()
                    if isinstance(x, _StandIn)
                    else x.clone()
                    if copy and isinstance(x, torch.Tensor)
                    else x
                    for x in leaves
                ],
                spec,
            )

        return forward

    def _keep_intact(self) -> None:
        """After a replay: if the live part changed a recorded output in place, record the prefix again
        and replay that boundary as copies from now on.

        The candidate just evaluated is unaffected (within one forward pass the live part saw the
        output as it sees a fresh one, change included); the next one would have seen the change.
        """
        changed = [
            name
            for name in self.boundaries
            if name not in self.copying and self._versions_of(name) != self._versions[name]
        ]
        if changed:
            self.copying.update(changed)
            self._record()

    @contextmanager
    def active(self) -> Iterator[PrefixCache]:
        """Within this block the boundary modules return their recorded outputs for ``self.batch``."""
        model = self.aleph.model
        assert model is not None
        modules = dict(model.named_modules())
        saved = {name: modules[name].__dict__.get("forward") for name in self.boundaries}
        for name in self.boundaries:
            modules[name].forward = self._replay(name)  # type: ignore[method-assign]
        try:
            yield self
        finally:
            for name, previous in saved.items():
                if previous is None:
                    del modules[name].forward
                else:
                    modules[name].forward = previous  # type: ignore[method-assign]
            self._keep_intact()

    def outputs(self, model: torch.nn.Module) -> torch.Tensor:
        """The loss's forward pass over all batches, using the cache (call under ``torch.no_grad()``)."""
        if not self.enabled:
            return self.loss.outputs(model)
        parts = []
        with self.active():
            for index in range(len(self.loss.batches)):
                self.batch = index
                parts.append(self.loss.run_batch(model, index))
        return concat(parts)


class CachedEvaluator:
    """Evaluates candidates one after the other, running only the part after the cached prefix."""

    def __init__(
        self,
        aleph: Aleph,
        loss: DatasetLoss,
        boundary: str | Sequence[str] | None = None,
        memory_limit: int | float | str | None = None,
        cache: PrefixCache | None = None,
    ) -> None:
        if not isinstance(loss, DatasetLoss):
            raise ConfigError(f"CachedEvaluator needs a DatasetLoss, got {type(loss).__name__}")
        self.aleph = aleph
        self.loss = loss
        self.cache = cache if cache is not None else PrefixCache(aleph, loss, boundary, memory_limit)

    def describe(self) -> str:
        """One line: what is cached."""
        return f"in this process, one candidate at a time; {self.cache.describe()}"

    def loss_of(self, vector: np.ndarray) -> float:
        """The ℵ-loss of one candidate (written into the model)."""
        self.aleph.write(vector)
        model = self.aleph.model
        assert model is not None
        with torch.no_grad():
            return self.loss.score(self.cache.outputs(model))

    def evaluate(self, vectors: Sequence[np.ndarray]) -> Iterator[tuple[int, Outcome]]:
        for position, vector in enumerate(vectors):
            yield position, measure(lambda vector=vector: self.loss_of(vector))

    def close(self) -> None:
        """Nothing to release: the cache lives as long as the evaluator, so it can serve several retrofits."""


def same_forward(a: DatasetLoss, b: DatasetLoss) -> bool:
    """True when two dataset losses run the same forward function on equal batches (their metrics may
    differ), so that one forward pass serves both. Compared once, when a guarded loss is set up."""
    if a.forward is not b.forward or len(a.batches) != len(b.batches):
        return False
    for first, second in zip(a.batches, b.batches, strict=True):
        leaves, spec = pytree.tree_flatten(first)
        others, other_spec = pytree.tree_flatten(second)
        if spec != other_spec:
            return False
        for x, y in zip(leaves, others, strict=True):
            if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
                if x.shape != y.shape or x.dtype != y.dtype or not torch.equal(x, y):
                    return False
            elif x is not y and not (isinstance(x, (int, float, str)) and type(x) is type(y) and x == y):
                return False
    return True


class CachedGuardedLoss:
    """A guarded loss (:class:`~afterlearner.guards.GuardedLoss`) whose dataset losses run after their
    cached prefixes, with the values of the guarded loss itself.

    The ℵ-loss is a :class:`DatasetLoss`. A guard that is a DatasetLoss with the same forward function
    on equal batches (another metric of the same outputs, :func:`same_forward`) scores the ℵ-loss's
    forward pass, run once; another DatasetLoss guard gets a prefix cache of its own; any other guard
    is called on the model as it is. The caches share ``memory_limit`` (the first built take what
    they need).
    """

    def __init__(
        self, aleph: Aleph, guarded: GuardedLoss, memory_limit: int | float | str | None = None
    ) -> None:
        if not isinstance(guarded.loss, DatasetLoss):
            raise ConfigError("CachedGuardedLoss needs a guarded loss whose ℵ-loss is a DatasetLoss")
        self.loss: DatasetLoss = guarded.loss
        self.guards = {name: guard.loss for name, guard in guarded.guards.items()}
        #: Guards scored on the ℵ-loss's forward pass (dataset losses with its forward and batches).
        self.shared = {
            name
            for name, loss in self.guards.items()
            if isinstance(loss, DatasetLoss) and (loss is self.loss or same_forward(loss, self.loss))
        }
        left = parse_bytes(memory_limit)
        self.caches: dict[str | None, PrefixCache | None] = {}
        for name, loss in [(None, self.loss), *self.guards.items()]:
            if name is not None and (not isinstance(loss, DatasetLoss) or name in self.shared):
                continue
            self.caches[name] = cache = _prefix_cache(aleph, loss, left)  # type: ignore[arg-type]
            if left is not None and cache is not None:
                left = max(0, left - cache.nbytes)

    def describe(self) -> str:
        """One line: which guards share the ℵ-loss's forward pass and what is cached."""
        shared = sorted(self.shared)
        parts = [f"{', '.join(shared)} scored on the ℵ-loss's forward pass"] if shared else []
        for name, cache in self.caches.items():
            owner = "ℵ-loss" if name is None else f"guard {name}"
            why = cache.describe() if cache is not None else "prefix cache off: probing the forward failed"
            parts.append(f"{owner}: {why}")
        return "; ".join(parts)

    def _outputs(self, name: str | None, loss: DatasetLoss, model: torch.nn.Module) -> torch.Tensor:
        cache = self.caches.get(name)
        return cache.outputs(model) if cache is not None else loss.outputs(model)

    def __call__(self, model: torch.nn.Module) -> Measured:
        with torch.no_grad():
            outputs = self._outputs(None, self.loss, model)
            loss = self.loss.score(outputs)
            guards: dict[str, object] = {}
            for name, guard in self.guards.items():
                if name in self.shared:
                    guards[name] = guard.score(outputs)  # type: ignore[union-attr]
                elif isinstance(guard, DatasetLoss):
                    guards[name] = guard.score(self._outputs(name, guard, model))
                else:
                    guards[name] = guard(model)
        return Measured(loss, guards)


def _prefix_cache(aleph: Aleph, loss: DatasetLoss, limit: int | None) -> PrefixCache | None:
    """The automatic prefix cache of ``loss`` (enabled or saying why not), or None when probing the
    forward pass fails: the loss's own error then surfaces in the journal, as for an unguarded loss."""
    try:
        return PrefixCache(aleph, loss, None, limit)
    except Exception:  # noqa: BLE001 - the evaluation reports the loss's error itself
        return None
