"""How numbers are written for people, the same way in every table and line the library prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def fmt(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals, or ``"-"`` when there is none (a failed or missing evaluation)."""
    return "-" if value is None else f"{value:.{digits}f}"


def make_console() -> Any:
    """A rich console for tables: the terminal's width, or 130 columns when output is not a terminal."""
    from rich.console import Console

    plain = Console()
    return plain if plain.is_terminal else Console(width=130)


def print_rows(rows: Sequence[tuple[str, str]], title: str, console: Any = None) -> None:
    """A two-column table of (label, value) rows under ``title``: how a result is printed."""
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for label, value in rows:
        table.add_row(label, value)
    (console or make_console()).print(table)
