"""Tables and plots of retrofit results and stores, for people (rich tables, matplotlib PNGs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from afterlearner import optimizers
from afterlearner.bound import bound_from_log_outcomes
from afterlearner.result import RetrofitResult
from afterlearner.store import Store


def make_console() -> Console:
    """A console for tables: the terminal's width, or 130 columns when output is not a terminal."""
    plain = Console()
    return plain if plain.is_terminal else Console(width=130)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def best_so_far(losses: Sequence[float | None]) -> list[float]:
    """Running minimum of the successful losses (NaN until the first success)."""
    running, best = [], np.nan
    for loss in losses:
        if loss is not None and not (best <= loss):
            best = loss
        running.append(best)
    return running


def result_rows(result: RetrofitResult, delta: float = 0.05) -> list[tuple[str, str]]:
    """(label, value) pairs describing a result; shared by the CLI table and the docs."""
    bound = result.bound(delta=delta) if result.n is not None else None
    rows = [
        ("ℵ-loss, trained model", _fmt(result.initial_loss)),
        ("ℵ-loss, retrofitted", _fmt(result.best_loss)),
        ("held-out loss, trained model", _fmt(result.test_initial)),
        ("held-out loss, retrofitted", _fmt(result.test_best)),
        ("evaluations (failed)", f"{result.evaluations} ({result.failures})"),
        ("optimizer", f"{result.optimizer}, λ={result.workers}, runs={result.runs}, seed={result.seed}"),
        ("wall time", f"{result.wall_time:.1f} s"),
    ]
    if result.n is not None:
        if bound is None:
            rows.append(("overfitting bound", f"none: {result.optimizer} is not comparison-based"))
        else:
            rows.append((f"overfitting bound ε (n={result.n}, δ={delta})", f"{bound:.3f}"))
    if None not in (result.test_best, result.best_loss):
        rows.append(("measured gap |held-out − ℵ|", _fmt(abs(result.test_best - result.best_loss))))  # type: ignore[operator]
    if result.interrupted:
        rows.append(("status", "interrupted; best so far (run again to continue)"))
    elif result.stopped:
        rows.append(("status", f"stopped: {result.stopped}; best so far (run again to continue)"))
    elif result.already_complete:
        rows.append(("status", "already complete: read from the store, nothing evaluated"))
    return rows


def print_result(result: RetrofitResult, title: str = "retrofit", console: Console | None = None) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for label, value in result_rows(result):
        table.add_row(label, value)
    (console or make_console()).print(table)


def store_rows(store: Store, delta: float = 0.05) -> list[dict[str, Any]]:
    """One dict per run in the store, with the settings and the bound."""
    settings = store.settings() or {}
    rows = []
    for run in store.runs():
        info = optimizers.get(settings["optimizer"]) if settings.get("optimizer") else None
        log_outcomes = info.log_outcomes(settings["budget"]) if info else None
        n = settings.get("n")
        bound = (
            bound_from_log_outcomes(log_outcomes, n, delta, settings.get("runs", 1))
            if log_outcomes is not None and n
            else None
        )
        rows.append({**run, "settings": settings, "bound": bound})
    return rows


def print_store(store: Store, delta: float = 0.05, console: Console | None = None) -> None:
    settings = store.settings()
    console = console or make_console()
    if settings is None:
        console.print(f"{store.path}: an empty store (no run yet)")
        return
    dims = sum(entry["size"] for entry in settings["space"])
    console.print(
        f"[bold]{store.path}[/bold]: task {settings.get('task') or '-'}, {dims} ℵ-scalars, "
        f"optimizer {settings['optimizer']}, budget {settings['budget']}, λ={settings['workers']}, "
        f"runs {settings['runs']}, seed {settings['seed']}, n={settings.get('n') or '-'}"
    )
    table = Table()
    for column in (
        "run",
        "status",
        "evaluations",
        "ℵ initial",
        "ℵ best",
        "held-out before",
        "held-out after",
        "bound ε",
    ):
        table.add_column(column, justify="right")
    for row in store_rows(store, delta):
        table.add_row(
            str(row["run_index"]),
            row["status"],
            f"{row['evaluations']}/{settings['budget']}",
            _fmt(row["initial_loss"]),
            _fmt(row["best_loss"]),
            _fmt(row["test_initial"]),
            _fmt(row["test_best"]),
            "-" if row["bound"] is None else f"{row['bound']:.3f}",
        )
    console.print(table)


def plot_convergence(series: dict[str, Sequence[float | None]], path: str | Path, title: str = "") -> Path:
    """Loss per evaluation (dots) and best so far (line), one colour per series; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for index, (label, losses) in enumerate(series.items()):
        colour = f"C{index}"
        xs = np.arange(1, len(losses) + 1)
        ys = np.array([np.nan if loss is None else loss for loss in losses], dtype=float)
        axes.scatter(xs, ys, s=8, alpha=0.35, color=colour, label=f"{label} (each evaluation)")
        axes.plot(xs, best_so_far(losses), color=colour, label=f"{label} (best so far)")
    axes.set_xlabel("evaluation")
    axes.set_ylabel("ℵ-loss")
    axes.set_title(title)
    axes.legend()
    return save_figure(figure, path)


def save_figure(figure: Any, path: str | Path) -> Path:
    """Lay out, write as PNG (creating the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_store(store: Store, path: str | Path) -> Path:
    series: dict[str, list[float | None]] = {}
    for evaluation in store.evaluations():
        series.setdefault(f"run {evaluation.run_index}", []).append(evaluation.loss)
    return plot_convergence(series, path, title=str(store.path.name))
