"""Population-batched evaluation: λ candidates in one vectorized forward pass with ``torch.func``.

The λ candidates the loop asks at a time differ only in the ℵ-parameters. ``vmap`` over
``functional_call`` runs the forward pass once for the whole population: the ℵ-tensors get a
leading population dimension (built from the trained values by the entry's own rule,
``TensorEntry.retrofitted_population``), the
frozen rest of the model is passed once, unbatched. With a :class:`PrefixCache` the cached prefix is
shared too, so only the part after it is batched.

vmap is not always faster (on CPUs it can lose for large batches of large matrices, and it cannot
run data-dependent Python code), so ``mode="auto"`` times both on the first population and keeps the
faster one; ``"vmap"`` and ``"loop"`` force a path. The metric runs once per candidate, or once per
population when it has a ``population`` form (as :func:`afterlearner.losses.error_rate` does).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.func import functional_call, vmap

from afterlearner.errors import ConfigError
from afterlearner.evaluators.base import Outcome, as_loss, measure
from afterlearner.evaluators.cache import PrefixCache
from afterlearner.losses import DatasetLoss, Forward, concat
from afterlearner.space import Aleph, TensorEntry

Mode = Literal["auto", "vmap", "loop"]


class BatchWarning(UserWarning):
    """vmap could not run this model; the batched evaluator evaluates candidates one by one instead."""


class _Bound(torch.nn.Module):
    """The loss's forward pass over all batches as a module, so ``functional_call`` can swap the
    ℵ-tensors once per population (not once per batch) and ``vmap`` runs once."""

    def __init__(self, model: torch.nn.Module, forward: Forward) -> None:
        super().__init__()
        self.model = model
        self.run = forward
        self.cache: PrefixCache | None = None

    def forward(self, batches: list[Any]) -> torch.Tensor:
        parts = []
        for index, batch in enumerate(batches):
            if self.cache is not None:
                self.cache.batch = index
            parts.append(self.run(self.model, batch))
        return concat(parts)


class BatchedEvaluator:
    """Evaluates a population of candidates with one ``vmap``-ed forward pass over the ℵ-dataset.

    ``cache``: a :class:`PrefixCache` to share (None: no prefix cache). ``mode``: ``"auto"``
    (measure vmap against a loop on the first population of two or more, keep the faster),
    ``"vmap"`` or ``"loop"``. ``chunk``: at most this many candidates per vmap call (memory).
    After the first population, ``choice`` says which path is used and ``timings`` what was measured.
    """

    def __init__(
        self,
        aleph: Aleph,
        loss: DatasetLoss,
        cache: PrefixCache | None = None,
        mode: Mode = "auto",
        chunk: int | None = None,
    ) -> None:
        if not isinstance(loss, DatasetLoss):
            raise ConfigError(f"BatchedEvaluator needs a DatasetLoss, got {type(loss).__name__}")
        if mode not in ("auto", "vmap", "loop"):
            raise ConfigError(f"mode must be 'auto', 'vmap' or 'loop', got {mode!r}")
        if aleph.model is None:
            raise ConfigError("BatchedEvaluator needs an Aleph built on a model")
        self.aleph = aleph
        self.loss = loss
        self.cache = cache
        self.chunk = chunk
        self.tensor_only = all(isinstance(entry, TensorEntry) for entry in aleph.entries)
        if mode == "vmap" and not self.tensor_only:
            raise ConfigError(
                "mode='vmap' cannot batch hyperparameters (Python attributes): use 'loop' or 'auto'"
            )
        self.choice: Mode = mode if self.tensor_only else "loop"
        self.timings: dict[str, float] = {}
        self._bound = _Bound(aleph.model, loss.forward)

    def describe(self) -> str:
        """One line: how a population is evaluated, and what is cached."""
        how = {
            "auto": "vmap or a loop, whichever measures faster on the first population",
            "vmap": "one vmap-ed forward pass per population",
            "loop": "a loop" + ("" if self.tensor_only else " (hyperparameters cannot be vmap-ed)"),
        }[self.choice]
        cache = self.cache.describe() if self.cache is not None else "no prefix cache"
        return f"population-batched: {how}; {cache}"

    # -- one candidate at a time --------------------------------------------------------------
    def _outputs(self) -> torch.Tensor:
        model = self.aleph.model
        assert model is not None
        return self.cache.outputs(model) if self.cache is not None else self.loss.outputs(model)

    def _loop(self, vectors: Sequence[np.ndarray]) -> list[Outcome]:
        outcomes = []
        for vector in vectors:

            def one(vector: np.ndarray = vector) -> float:
                self.aleph.write(vector)
                with torch.no_grad():
                    return self.loss.score(self._outputs())

            outcomes.append(measure(one))
        return outcomes

    # -- the whole population at once ---------------------------------------------------------
    def _parameters(self, vectors: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        matrix = np.stack([np.asarray(v, dtype=float).ravel() for v in vectors])
        if matrix.shape[1] != len(self.aleph):
            raise ConfigError(f"candidates have {matrix.shape[1]} values, the ℵ-space has {len(self.aleph)}")
        bounds = np.cumsum([entry.size for entry in self.aleph.entries])[:-1]
        chunks = np.split(matrix, bounds, axis=1)
        return {
            f"model.{entry.name}": entry.retrofitted_population(chunk)  # type: ignore[arg-type]
            for entry, chunk in zip(self.aleph.entries, chunks, strict=True)
        }

    def _population_outputs(self, vectors: Sequence[np.ndarray]) -> torch.Tensor:
        """Outputs of every candidate, shape ``(λ, n, ...)``."""
        self.aleph.restore()  # the frozen rest is read from the model; the ℵ-tensors are swapped in
        params = self._parameters(vectors)

        def forward(weights: dict[str, torch.Tensor], batches: list[Any]) -> torch.Tensor:
            return functional_call(self._bound, weights, (batches,))

        batched = vmap(forward, in_dims=(0, None), chunk_size=self.chunk)
        cached = self.cache is not None and self.cache.enabled
        self._bound.cache = self.cache if cached else None
        with torch.no_grad():
            if cached:
                assert self.cache is not None
                with self.cache.active():
                    return batched(params, list(self.loss.batches))
            return batched(params, list(self.loss.batches))

    def _vmap(self, vectors: Sequence[np.ndarray]) -> list[Outcome]:
        start = time.perf_counter()
        outputs = self._population_outputs(vectors)
        shared = (time.perf_counter() - start) / len(vectors)
        scored = self._score_population(outputs)
        if scored is not None:
            return [Outcome(loss, None, shared + spent) for loss, spent in scored]
        outcomes = []
        for k in range(len(vectors)):
            outcome = measure(lambda k=k: self.loss.score(outputs[k]))
            outcomes.append(Outcome(outcome.loss, outcome.error, outcome.wall_time + shared))
        return outcomes

    def _score_population(self, outputs: torch.Tensor) -> list[tuple[float, float]] | None:
        """All candidates' losses from the metric's ``population`` form, if it has one and all are fine."""
        population = getattr(self.loss.metric, "population", None)
        if population is None:
            return None
        start = time.perf_counter()
        try:
            losses = [as_loss(value) for value in population(outputs, self.loss.targets)]
        except Exception:  # noqa: BLE001 - score one by one instead, so each failure is its own
            return None
        if len(losses) != len(outputs):
            return None
        spent = (time.perf_counter() - start) / len(losses)
        return [(loss, spent) for loss in losses]

    def _try_vmap(self, vectors: Sequence[np.ndarray]) -> list[Outcome] | None:
        try:
            return self._vmap(vectors)
        except Exception as error:  # noqa: BLE001 - vmap unsupported here: fall back to the loop
            if self.choice == "vmap":
                raise ConfigError(
                    f"vmap cannot evaluate this model: {type(error).__name__}: {error}"
                ) from error
            warnings.warn(
                f"vmap failed ({type(error).__name__}: {error}); evaluating one candidate at a time",
                BatchWarning,
                stacklevel=3,
            )
            self.choice = "loop"
            return None

    def _measure_both(self, vectors: Sequence[np.ndarray]) -> list[Outcome]:
        start = time.perf_counter()
        looped = self._loop(vectors)
        self.timings["loop"] = time.perf_counter() - start
        start = time.perf_counter()
        batched = self._try_vmap(vectors)
        if batched is None:
            return looped
        self.timings["vmap"] = time.perf_counter() - start
        self.choice = "vmap" if self.timings["vmap"] < self.timings["loop"] else "loop"
        return looped

    def evaluate(self, vectors: Sequence[np.ndarray]) -> Iterator[tuple[int, Outcome]]:
        if not vectors:
            return
        if self.choice == "auto" and len(vectors) >= 2:
            outcomes = self._measure_both(vectors)
        elif self.choice == "vmap":
            outcomes = self._try_vmap(vectors) or self._loop(vectors)
        else:
            outcomes = self._loop(vectors)
        yield from enumerate(outcomes)

    def close(self) -> None:
        """Nothing to release."""
