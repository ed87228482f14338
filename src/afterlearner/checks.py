"""Checks of user-given settings, one rule each, raising :class:`~afterlearner.errors.ConfigError`."""

from __future__ import annotations

from typing import Any

import numpy as np

from afterlearner.errors import ConfigError


def check_positive_int(label: str, value: Any, minimum: int = 1) -> None:
    """Raise unless ``value`` is an integer ≥ ``minimum`` (a bool is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{label} must be an integer >= {minimum}, got {value!r}")
