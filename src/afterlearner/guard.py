"""The frozen rest of the model stays frozen: a loss that changes it is found, named and undone.

A retrofit may change only the ℵ-parameters. A loss that leaves the model in training mode (so
BatchNorm updates its running statistics in every forward pass) or modifies weights in place would
otherwise leave those changes in the user's model and corrupt every later evaluation. The guard
keeps the trained values of every other parameter and buffer — a copy up to ``copy_limit`` bytes,
SHA-256 digests above it (then a change is found and named but cannot be undone) — and compares
after the first evaluations and then at every power of two, and at the end.
"""

from __future__ import annotations

import hashlib

import torch

from afterlearner.errors import AfterlearnerError
from afterlearner.space import Aleph, TensorEntry

#: Keep a full copy of the frozen tensors up to this many bytes (else digests only).
COPY_LIMIT = 1 << 30


class ModelChanged(AfterlearnerError):
    """The loss changed parameters or buffers outside the ℵ-space (its message names them and why)."""


def digest(tensor: torch.Tensor) -> bytes:
    """SHA-256 of a tensor's dtype, shape and raw bytes (any dtype)."""
    tensor = tensor.detach().cpu().contiguous()
    hashed = hashlib.sha256(f"{tensor.dtype}{list(tensor.shape)}".encode())
    hashed.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return hashed.digest()


def due(evaluations: int) -> bool:
    """Whether to check after this many evaluations: 1, 2, 3, then every power of two."""
    return evaluations <= 3 or evaluations & (evaluations - 1) == 0


class ModelGuard:
    """The trained values of a model's parameters and buffers outside the ℵ-space, to compare and restore."""

    def __init__(self, aleph: Aleph, copy_limit: int = COPY_LIMIT) -> None:
        model = aleph.model
        assert model is not None
        searched = {id(entry.tensor) for entry in aleph.entries if isinstance(entry, TensorEntry)}
        named: dict[str, torch.Tensor] = dict(model.named_parameters())
        named.update(model.named_buffers())
        self.model = model
        self.tensors = {name: t for name, t in named.items() if id(t) not in searched}
        size = sum(t.numel() * t.element_size() for t in self.tensors.values())
        self.copies = (
            {name: t.detach().clone() for name, t in self.tensors.items()} if size <= copy_limit else None
        )
        self.digests = None if self.copies is not None else {n: digest(t) for n, t in self.tensors.items()}

    def changed(self) -> list[str]:
        """Names of the frozen tensors that no longer hold their trained values (bit for bit)."""
        if self.copies is not None:
            return [name for name, t in self.tensors.items() if not _same_bits(t, self.copies[name])]
        assert self.digests is not None
        return [name for name, t in self.tensors.items() if digest(t) != self.digests[name]]

    def restore(self) -> bool:
        """Put every frozen tensor back; False when only digests were kept (nothing to restore from)."""
        if self.copies is None:
            return False
        with torch.no_grad():
            for name, tensor in self.tensors.items():
                tensor.copy_(self.copies[name])
        return True

    def check(self) -> None:
        """Raise :class:`ModelChanged` (after restoring what it can) if a frozen tensor changed."""
        changed = self.changed()
        if not changed:
            return
        restored = self.restore()
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise ModelChanged(
            f"the loss changed {len(changed)} tensor(s) outside the ℵ-space: {shown}; "
            f"{self._cause(changed)}. "
            + (
                "They were restored to their trained values."
                if restored
                else "The model is too large for the guard to keep a copy: rebuild it from its checkpoint."
            )
        )

    def _cause(self, changed: list[str]) -> str:
        norms = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.instancenorm._InstanceNorm)
        statistics = any(
            name.endswith(("running_mean", "running_var", "num_batches_tracked")) for name in changed
        )
        has_norms = any(isinstance(module, norms) for module in self.model.modules())
        if self.model.training and (statistics or has_norms):
            return (
                "the model is in training mode, so normalization layers update their running statistics "
                "in every forward pass: call model.eval() when building the task"
            )
        return "an in-place operation in the loss (e.g. tensor.add_(...), or an optimizer step) changed them"


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(torch.equal(a.detach().reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)))
