"""How numbers are written for people, the same way in every table and line the library prints."""

from __future__ import annotations


def fmt(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals, or ``"-"`` when there is none (a failed or missing evaluation)."""
    return "-" if value is None else f"{value:.{digits}f}"
