"""The patch: a retrofit as a standard safetensors file that anyone can load.

A patch holds the full retrofitted values of the ℵ-tensors, keyed by the model's own parameter and
buffer names, so that on a freshly built trained model, without afterlearner::

    from safetensors.torch import load_file
    model.load_state_dict(load_file("retrofit.safetensors"), strict=False)

gives the retrofitted model, bit for bit what ``aleph.write(vector)`` gives. The file's metadata
(every value a JSON string) says what the patch is and where it came from:

``format`` ``"afterlearner-patch"``; ``format_version`` 1; ``created_by`` the afterlearner version;
``hyperparameters`` {entry name: retrofitted value}; ``trained_hyperparameters`` {entry name:
trained value}; ``vector`` the candidate in searched units (offsets, factors, values); ``space`` the
ℵ-space signature; ``fingerprint`` the trained model it was computed from; ``patched_fingerprint``
the model once patched; ``settings``, ``losses`` and ``bound`` as given (null when not).

A fingerprint is ``{"sha256": combined, "tensors": {name: {"dtype", "shape", "sha256"}}}`` over
every tensor of ``model.state_dict()`` (plus ℵ-tensors that are non-persistent buffers); each
tensor's hash covers its dtype, shape and raw bytes, the per-tensor hash kept is the first 16 hex
digits and the combined one is over the full per-tensor hashes in name order. The patched
fingerprint lists only the ℵ-tensors (the others are as in the trained one). A hyperparameter-only
ℵ-space without a model has no fingerprint (null).

:func:`apply_patch` checks the fingerprint before writing anything: a patch never lands silently
on a different base model.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from afterlearner import optimizers
from afterlearner.bound import bound_of
from afterlearner.errors import PatchError, StoreError
from afterlearner.space import Aleph, HyperEntry, TensorEntry
from afterlearner.store import Evaluation, Store, best_evaluation

FORMAT = "afterlearner-patch"
FORMAT_VERSION = 1
#: Hex digits kept of each tensor's SHA-256 (64 bits: enough to tell two models apart).
SHORT_HASH = 16


# -- fingerprints -----------------------------------------------------------------------------------
def tensor_digest(tensor: torch.Tensor) -> str:
    """Full SHA-256 (hex) of a tensor's dtype, shape and raw bytes; any dtype, bfloat16 included."""
    tensor = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{_dtype_name(tensor)}{list(tensor.shape)}".encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _record(tensor: torch.Tensor, digest: str) -> dict[str, Any]:
    return {"dtype": _dtype_name(tensor), "shape": list(tensor.shape), "sha256": digest[:SHORT_HASH]}


def _combined(digests: Mapping[str, str]) -> str:
    lines = "".join(f"{name}\t{digests[name]}\n" for name in sorted(digests))
    return hashlib.sha256(lines.encode()).hexdigest()


def _model_tensors(model: torch.nn.Module, extra_names: list[str]) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` (the live tensors, not copies) plus the named tensors it leaves out.

    ``extra_names`` are looked up among the parameters and buffers (a non-persistent buffer is not
    in the state dict); names the model does not have are skipped.
    """
    tensors = dict(model.state_dict(keep_vars=True))
    missing = [name for name in extra_names if name not in tensors]
    if missing:
        named = {**dict(model.named_buffers()), **dict(model.named_parameters())}
        tensors.update({name: named[name] for name in missing if name in named})
    return tensors


def _substituted(
    tensors: Mapping[str, torch.Tensor], by_identity: Mapping[int, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The tensors with those that *are* (same object) a key of ``by_identity`` replaced by its value.

    Matching by identity rather than name also catches a tied weight listed under two names.
    """
    return {name: by_identity.get(id(tensor), tensor) for name, tensor in tensors.items()}


@dataclass(frozen=True)
class _Fingerprints:
    """The trained and patched fingerprints of one model and candidate, as stored in a patch."""

    trained: dict[str, Any]
    patched: dict[str, Any]


def _fingerprints(
    live: Mapping[str, torch.Tensor],
    trained_values: Mapping[int, torch.Tensor],
    patched_values: Mapping[int, torch.Tensor],
) -> _Fingerprints:
    """Hash every tensor once at its trained value, then re-hash only the patched ones."""
    trained = _substituted(live, trained_values)
    digests = {name: tensor_digest(tensor) for name, tensor in trained.items()}
    changed = {
        name: value
        for name, value in _substituted(live, patched_values).items()
        if value is not trained[name]
    }
    patched_digests = {name: tensor_digest(tensor) for name, tensor in changed.items()}
    return _Fingerprints(
        trained={
            "sha256": _combined(digests),
            "tensors": {name: _record(trained[name], digests[name]) for name in sorted(trained)},
        },
        patched={
            "sha256": _combined({**digests, **patched_digests}),
            "tensors": {name: _record(changed[name], patched_digests[name]) for name in sorted(changed)},
        },
    )


def model_fingerprint(aleph: Aleph) -> dict[str, Any] | None:
    """The fingerprint of the trained model behind ``aleph`` (its ℵ-tensors at their trained values).

    The model is not touched: the ℵ-tensors are hashed from each entry's kept trained copy, so this
    holds whatever candidate the model currently carries. None for an ℵ-space without a model.
    """
    if aleph.model is None:
        return None
    entries = _tensor_entries(aleph)
    live = _model_tensors(aleph.model, [entry.name for entry in entries])
    return _fingerprints(live, {id(e.tensor): e.original for e in entries}, {}).trained


def _tensor_entries(aleph: Aleph) -> list[TensorEntry]:
    return [entry for entry in aleph if isinstance(entry, TensorEntry)]


def _hyper_entries(aleph: Aleph) -> list[HyperEntry]:
    return [entry for entry in aleph if isinstance(entry, HyperEntry)]


# -- writing ----------------------------------------------------------------------------------------
def save_patch(
    aleph: Aleph,
    vector: np.ndarray,
    path: str | Path,
    *,
    settings: dict[str, Any] | None = None,
    losses: dict[str, Any] | None = None,
    bound: dict[str, Any] | None = None,
) -> Path:
    """Write the retrofit ``vector`` of ``aleph`` as a safetensors patch file; returns its path.

    The file holds exactly the ℵ-tensors' retrofitted values (``aleph.tensors(vector)``), contiguous
    and on CPU, and the metadata described in this module's docstring; ``settings``, ``losses`` and
    ``bound`` are recorded as given (JSON-serialisable dicts). The model is not touched. An
    ℵ-tensor that is a non-persistent buffer is saved but warned about: ``load_state_dict`` ignores
    it, :func:`apply_patch` writes it. The file is written to a temporary name and then renamed, so
    a failure never leaves a truncated patch.
    """
    import afterlearner  # its version; imported here because afterlearner imports this module

    aleph.check()
    vector = np.asarray(vector, dtype=float).ravel()
    retrofitted = aleph.tensors(vector)  # checks the vector's length against the space
    hypers = _hyper_entries(aleph)
    duplicated = _first_duplicate([entry.name for entry in hypers])
    if duplicated is not None:
        raise PatchError(
            f"two hyperparameters are named {duplicated!r}: give each a distinct name= in aleph.hyper "
            "so the patch can say which is which"
        )
    entries = _tensor_entries(aleph)
    fingerprints = None
    if aleph.model is not None:
        live = _model_tensors(aleph.model, [entry.name for entry in entries])
        _warn_non_persistent(aleph.model, entries)
        fingerprints = _fingerprints(
            live,
            {id(entry.tensor): entry.original for entry in entries},
            {id(entry.tensor): retrofitted[entry.name] for entry in entries},
        )
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_by": f"afterlearner {afterlearner.__version__}",
        "hyperparameters": _hyper_values(aleph, vector),
        "trained_hyperparameters": {entry.name: _plain(entry.original) for entry in hypers},
        "vector": vector.tolist(),
        "space": aleph.signature(),
        "fingerprint": fingerprints.trained if fingerprints else None,
        "patched_fingerprint": fingerprints.patched if fingerprints else None,
        "settings": settings,
        "losses": losses,
        "bound": bound,
    }
    encoded = _encode(metadata)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in retrofitted.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        save_file(tensors, str(partial), metadata=encoded)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _first_duplicate(names: list[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _hyper_values(aleph: Aleph, vector: np.ndarray) -> dict[str, float | int]:
    """The value each hyperparameter entry takes for ``vector`` (what ``aleph.write`` would set)."""
    values, start = {}, 0
    for entry in aleph:
        if isinstance(entry, HyperEntry):
            values[entry.name] = entry.to_value(vector[start : start + entry.size])
        start += entry.size
    return values


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (JSON needs plain numbers)."""
    return value.item() if isinstance(value, np.generic) else value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} {value!r:.60} is not JSON-serialisable")


def _encode(metadata: dict[str, Any]) -> dict[str, str]:
    try:
        return {key: json.dumps(value, default=_json_default) for key, value in metadata.items()}
    except (TypeError, ValueError) as error:
        raise PatchError(f"the patch metadata cannot be written as JSON: {error}") from error


def _warn_non_persistent(model: torch.nn.Module, entries: list[TensorEntry]) -> None:
    persistent = set(model.state_dict(keep_vars=True))
    for entry in entries:
        if entry.name not in persistent:
            warnings.warn(
                f"{entry.name} is a non-persistent buffer: it is saved in the patch, but "
                "model.load_state_dict ignores it; al.apply_patch(model, path) writes it",
                UserWarning,
                stacklevel=3,
            )


# -- reading ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Patch:
    """A patch file read back: its tensors, hyperparameters, decoded metadata and candidate vector."""

    path: Path
    tensors: dict[str, torch.Tensor]
    hyperparameters: dict[str, float | int]
    metadata: dict[str, Any]
    vector: np.ndarray

    @property
    def fingerprint(self) -> dict[str, Any] | None:
        """The trained model's fingerprint (None for a patch made without a model)."""
        return self.metadata["fingerprint"]

    @property
    def patched_fingerprint(self) -> dict[str, Any] | None:
        return self.metadata["patched_fingerprint"]


#: Metadata keys every patch has (``format`` is checked first, to tell a foreign file).
REQUIRED_KEYS = (
    "format",
    "format_version",
    "hyperparameters",
    "trained_hyperparameters",
    "vector",
    "space",
    "fingerprint",
    "patched_fingerprint",
)


def read_patch(path: str | Path) -> Patch:
    """Read a patch file; :class:`PatchError` for a missing file, a file that is not safetensors,
    a safetensors file that is not an afterlearner patch, or a patch whose tensors were altered."""
    path = Path(path)
    if not path.is_file():
        raise PatchError(f"{path}: no such patch file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise PatchError(f"{path} is not a safetensors file ({error})") from error
    metadata = _decode(path, raw)
    patch = Patch(
        path=path,
        tensors=tensors,
        hyperparameters=dict(metadata["hyperparameters"]),
        metadata=metadata,
        vector=np.asarray(metadata["vector"], dtype=float),
    )
    _check_integrity(patch)
    return patch


def _decode(path: Path, raw: dict[str, str]) -> dict[str, Any]:
    not_a_patch = f"{path} is a safetensors file but not an afterlearner patch"
    if "format" not in raw:
        raise PatchError(f"{not_a_patch} (no format tag in its metadata)")
    if raw["format"] != json.dumps(FORMAT):
        raise PatchError(f"{not_a_patch} (its format tag is {raw['format']!r:.40})")
    try:
        metadata = {key: json.loads(value) for key, value in raw.items()}
    except json.JSONDecodeError as error:
        raise PatchError(
            f"{path} is a damaged afterlearner patch (metadata that is not JSON: {error})"
        ) from error
    if metadata.get("format_version") != FORMAT_VERSION:
        raise PatchError(
            f"{path} is an afterlearner patch of format version {metadata.get('format_version')}; "
            f"this afterlearner reads version {FORMAT_VERSION}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise PatchError(
            f"{path} is an incomplete afterlearner patch: no {', '.join(missing)} in its metadata"
        )
    if (metadata["fingerprint"] is None) != (metadata["patched_fingerprint"] is None):
        raise PatchError(f"{path} is a damaged afterlearner patch: one of its two fingerprints is missing")
    return metadata


def _check_integrity(patch: Patch) -> None:
    """The file's tensors are the ones its own patched fingerprint describes."""
    records = (patch.patched_fingerprint or {}).get("tensors", {})
    for name, tensor in patch.tensors.items():
        record = records.get(name)
        if record is not None and record != _record(tensor, tensor_digest(tensor)):
            raise PatchError(
                f"{patch.path}: tensor {name} does not match the patch's own fingerprint: "
                "the file was altered after it was written"
            )


# -- applying ---------------------------------------------------------------------------------------
def apply_patch(target: Aleph | torch.nn.Module, path: str | Path | Patch) -> dict[str, float | int]:
    """Write a patch into the trained model it was computed from; returns its hyperparameters.

    ``target`` is an :class:`Aleph` (the task's: tensors and its hyperparameter entries, matched by
    name, are written) or a bare ``torch.nn.Module`` (tensors written; set the returned
    hyperparameters yourself). Refused with a :class:`PatchError` naming the first mismatch, before
    anything is written: a tensor name, shape or dtype the model does not have, a model whose
    trained values differ from the ones the patch was computed from (another seed, another
    checkpoint), a hyperparameter missing from the Aleph or with another trained value. A model
    that already holds this patch is accepted as it is.
    """
    patch = path if isinstance(path, Patch) else read_patch(path)
    if isinstance(target, Aleph):
        _check_hyperparameters(target, patch)
        model = target.model
        trained_values = {id(entry.tensor): entry.original for entry in _tensor_entries(target)}
    elif isinstance(target, torch.nn.Module):
        model, trained_values = target, {}
    else:
        raise PatchError(
            f"apply_patch needs an afterlearner.Aleph or a torch.nn.Module, got {type(target).__name__}"
        )
    if patch.fingerprint is None:
        if patch.tensors:
            raise PatchError(f"{patch.path} holds tensors but no fingerprint of the model they belong to")
    elif model is None:
        raise PatchError(f"{patch.path} was computed from a model, and this Aleph has none")
    else:
        destinations = _destinations(model, patch)
        already = _state_of(model, patch, trained_values) == "patched" and not isinstance(target, Aleph)
        if not already:  # an Aleph's model is written either way: it may hold any candidate now
            with torch.no_grad():
                for name, tensor in patch.tensors.items():
                    destinations[name].copy_(tensor)
    if isinstance(target, Aleph):
        by_name = {entry.name: entry for entry in _hyper_entries(target)}
        for name, value in patch.hyperparameters.items():
            by_name[name].write(np.array([float(value)]))
    return dict(patch.hyperparameters)


def _destinations(model: torch.nn.Module, patch: Patch) -> dict[str, torch.Tensor]:
    """The model's tensor for each patch tensor, checked for name, shape and dtype."""
    named = _model_tensors(model, list(patch.tensors))
    destinations = {}
    for name, tensor in patch.tensors.items():
        if name not in named:
            raise PatchError(f"{patch.path} holds {name}, which the model has no parameter or buffer named")
        found = named[name]
        if found.shape != tensor.shape or found.dtype != tensor.dtype:
            raise PatchError(
                f"{name}: the patch holds {_dtype_name(tensor)} of shape {tuple(tensor.shape)}, "
                f"the model has {_dtype_name(found)} of shape {tuple(found.shape)}"
            )
        destinations[name] = found
    return destinations


def _state_of(model: torch.nn.Module, patch: Patch, trained_values: Mapping[int, torch.Tensor]) -> str:
    """``"trained"`` or ``"patched"``: which of the patch's two fingerprints the model matches.

    ``trained_values`` replaces tensors by their trained values (an Aleph's kept copies). Raises a
    :class:`PatchError` naming the first tensor that matches neither.
    """
    expected, patched = patch.fingerprint, patch.patched_fingerprint
    assert expected is not None and patched is not None  # both or neither: checked when read
    live = _substituted(_model_tensors(model, [*expected["tensors"], *patch.tensors]), trained_values)
    names, wanted = set(live), set(expected["tensors"])
    if names != wanted:
        missing, extra = sorted(wanted - names), sorted(names - wanted)
        raise PatchError(
            f"the model has no tensor {missing[0]}, which the patch's model had"
            if missing
            else f"the model has a tensor {extra[0]}, which the patch's model did not have"
        )
    digests = {name: tensor_digest(tensor) for name, tensor in live.items()}
    combined = _combined(digests)
    if combined == expected["sha256"]:
        return "trained"
    if combined == patched["sha256"]:
        return "patched"
    for name in sorted(live):
        record = _record(live[name], digests[name])
        if record != expected["tensors"][name] and record != patched["tensors"].get(name):
            raise PatchError(
                f"{name} differs from the trained model {patch.path.name} was computed from "
                f"({_describe(record)} here, {_describe(expected['tensors'][name])} there): "
                "is this the same trained model (same checkpoint, same seed)?"
            )
    raise PatchError(
        "the model holds some of the patch's tensors at their patched values and others at their "
        "trained values: rebuild it from the trained checkpoint"
    )


def _describe(record: dict[str, Any]) -> str:
    return f"{record['dtype']}{tuple(record['shape'])} sha256 {record['sha256']}"


def _check_hyperparameters(aleph: Aleph, patch: Patch) -> None:
    """Every hyperparameter of the patch is an entry of ``aleph`` with the patch's trained value."""
    entries = _hyper_entries(aleph)
    by_name = {entry.name: entry for entry in entries}
    trained = patch.metadata["trained_hyperparameters"]
    for name, value in patch.hyperparameters.items():
        if name not in by_name:
            have = ", ".join(by_name) or "none"
            raise PatchError(
                f"{patch.path} sets hyperparameter {name}, which this Aleph does not have (it has: {have})"
            )
        if sum(entry.name == name for entry in entries) > 1:
            raise PatchError(f"this Aleph has two hyperparameters named {name}: the patch cannot tell which")
        current = _plain(by_name[name].original)
        if current != trained.get(name) and current != value:
            raise PatchError(
                f"hyperparameter {name} is {current!r} in this Aleph; the patch was computed from "
                f"trained value {trained.get(name)!r}"
            )


# -- the best candidate of a store, and what to record about it --------------------------------------
def best_of_store(store: Store | str | Path, run: int | None = None) -> tuple[int, Evaluation]:
    """The best journaled candidate: ``(run index, evaluation)``, lowest loss; ties to the latest
    evaluation within a run and to the earliest run across runs (what :func:`retrofit` returns).

    Works on finished and interrupted stores alike, a run killed mid-way included: the evaluations
    themselves are read, not the run's summary row. ``run=None`` searches every run.
    """
    if not isinstance(store, Store):
        with Store.open(store, readonly=True) as opened:
            return best_of_store(opened, run)
    indices = [row["run_index"] for row in store.runs()]
    if not indices:
        raise StoreError(f"{store.path} holds no run yet")
    if run is not None and run not in indices:
        raise StoreError(f"{store.path} has no run {run}; its runs are {', '.join(map(str, indices))}")
    best: tuple[int, Evaluation] | None = None
    for index in [run] if run is not None else indices:
        evaluation = best_evaluation(store.evaluations(index))
        if evaluation is not None and (best is None or evaluation.loss < best[1].loss):  # type: ignore[operator]
            best = (index, evaluation)
    if best is None:
        which = f"run {run} has no" if run is not None else "no run has a"
        raise StoreError(f"{store.path}: {which} successful evaluation (every one failed)")
    return best


def bound_metadata(
    optimizer: str,
    budget: int,
    runs: int,
    n: int | None,
    delta: float = 0.05,
    loss: float | None = None,
    guards: int = 0,
) -> dict[str, Any]:
    """The overfitting bound as a patch records it: ε with n and δ, or ε null and the reason.

    ``loss``: the ℵ-loss when it is a mean of 0/1 losses (the kl form, as ``result.bound()`` gives).
    """
    if not optimizers.get(optimizer).comparison_based:
        reason = f"{optimizer} is not comparison-based"
        return {"epsilon": None, "n": n, "delta": delta, "reason": reason}
    if not n:
        return {"epsilon": None, "n": None, "delta": delta, "reason": "n, the ℵ-dataset size, is unknown"}
    epsilon = bound_of(optimizer, budget, n, delta, runs, loss=loss, guards=guards)
    return {"epsilon": epsilon, "n": n, "delta": delta, "reason": None}


def store_metadata(
    store: Store, run_index: int, evaluation: Evaluation, delta: float = 0.05
) -> dict[str, Any]:
    """``settings``, ``losses`` and ``bound`` keyword arguments of :func:`save_patch` for a store's candidate.

    ``settings`` are the store's (without the space, which a patch records on its own) plus the run,
    its status and how many evaluations it has; ``losses`` the run's ℵ-loss of the trained model and
    of this candidate and its held-out losses (null where the run did not get that far).
    """
    settings = {key: value for key, value in (store.settings() or {}).items() if key != "space"}
    row = store.run(run_index) or {}
    evaluations = store.evaluations(run_index)
    first = evaluations[0] if evaluations and evaluations[0].idx == 0 else None
    return {
        "settings": {
            **settings,
            "run": run_index,
            "run_status": row.get("status"),
            "evaluations": len(evaluations),
            "evaluation": evaluation.idx,
        },
        "losses": {
            "initial_loss": first.loss if first is not None else None,
            "best_loss": evaluation.loss,
            "test_initial": row.get("test_initial"),
            "test_best": row.get("test_best"),
        },
        "bound": bound_metadata(
            settings["optimizer"],
            settings["budget"],
            settings.get("runs", 1),
            settings.get("n"),
            delta,
            loss=evaluation.loss if settings.get("zero_one") else None,
            guards=len(settings.get("guards") or {}),
        ),
    }


def result_metadata(result: Any, delta: float = 0.05) -> dict[str, Any]:
    """``settings``, ``losses`` and ``bound`` keyword arguments of :func:`save_patch` for a
    :class:`~afterlearner.result.RetrofitResult` (``save_patch(result.aleph, result.best, path,
    **result_metadata(result))``)."""
    return {
        "settings": {
            "optimizer": result.optimizer,
            "budget": result.budget,
            "workers": result.workers,
            "runs": result.runs,
            "seed": result.seed,
            "n": result.n,
            "task": result.name,
            "evaluations": result.evaluations,
            "status": result.status,
            **({"guards": result.settings()["guards"]} if result.guard_checks else {}),
        },
        "losses": {
            "initial_loss": result.initial_loss,
            "best_loss": result.best_loss,
            "test_initial": result.test_initial,
            "test_best": result.test_best,
        },
        "bound": bound_metadata(
            result.optimizer,
            result.budget,
            result.runs,
            result.n,
            delta,
            loss=result.best_loss if result.zero_one else None,
            guards=len(result.guard_checks),
        ),
    }
