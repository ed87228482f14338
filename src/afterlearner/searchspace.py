"""What the ask/tell engine searches: an ℵ-space (:class:`~afterlearner.Aleph`) or a plain ng.p parameter.

Both become a :class:`SearchSpace`: a fresh parametrization for the optimizer, the starting
candidate, and conversions between Nevergrad values and flat float vectors (what is stored and
what evaluators and renderers receive). A plain parameter is for things that are not model
weights, such as the latent of a generator: ``ng.p.Array(shape=(8,))`` or a Tuple of Arrays/Scalars.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nevergrad as ng
import numpy as np

from afterlearner.errors import ConfigError
from afterlearner.space import Aleph


@dataclass
class SearchSpace:
    """A searchable space as the session needs it."""

    make_parametrization: Callable[[], ng.p.Parameter]
    to_vector: Callable[[Any], np.ndarray]
    start: np.ndarray
    signature: Any

    def parametrization(self, seed: int) -> ng.p.Parameter:
        """A fresh parametrization at the start, its random state seeded (the optimizer's only randomness)."""
        parametrization = self.make_parametrization()
        parametrization.random_state = np.random.RandomState(seed)
        return parametrization

    @property
    def dimension(self) -> int:
        return int(self.start.size)


def _flatten(value: Any) -> np.ndarray:
    if isinstance(value, (tuple, list)):
        return np.concatenate([_flatten(item) for item in value]) if value else np.zeros(0)
    return np.asarray(value, dtype=float).ravel()


def search_space(space: Aleph | ng.p.Parameter) -> SearchSpace:
    """Wrap an :class:`Aleph` or a Nevergrad parameter (Array, Scalar, Log, or a Tuple of those)."""
    if isinstance(space, Aleph):
        space.check()
        return SearchSpace(space.parametrization, space.to_vector, space.identity(), space.signature())
    if isinstance(space, ng.p.Parameter):
        if not isinstance(space, (ng.p.Array, ng.p.Tuple)):
            raise ConfigError(
                "a plain parametrization must be an ng.p.Array/Scalar/Log or a Tuple of them, "
                f"got {type(space).__name__}"
            )
        try:
            start = _flatten(space.value)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"the parametrization's value is not numeric: {error}") from error
        signature = [  # a list of entries, like an Aleph's: stores, tables and labels read both alike
            {
                "kind": "parametrization",
                "type": type(space).__name__,
                "size": int(start.size),
                "name": space._name or "value",  # the name set with .set_name(), else "value"
            }
        ]
        json.dumps(signature)
        return SearchSpace(space.copy, _flatten, start, signature)
    raise ConfigError(f"the search space must be an Aleph or ng.p parameter, not {type(space).__name__}")
