"""Tables and plots of retrofit results and stores, for people (rich tables, matplotlib PNGs)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from afterlearner import formatting, history
from afterlearner.bound import bound_of
from afterlearner.formatting import fmt
from afterlearner.guards import GuardCheck
from afterlearner.heldout import HeldOut, Interval, fmt_gain
from afterlearner.result import RetrofitResult
from afterlearner.space import labels_of
from afterlearner.store import Evaluation, Store


def make_console() -> Console:
    """A console for tables: the terminal's width, or 130 columns when output is not a terminal."""
    return formatting.make_console()  # type: ignore[no-any-return]


def best_so_far(losses: Sequence[float | None]) -> list[float]:
    """Running minimum of the successful losses (NaN until the first success)."""
    running, best = [], np.nan
    for loss in losses:
        if loss is not None and not (best <= loss):
            best = loss
        running.append(best)
    return running


def _held(value: float | None, interval: Interval | None) -> str:
    """A held-out loss with its 95% interval when there is one."""
    if value is None:
        return "-"
    if interval is None or interval.low is None:
        return fmt(value)
    return f"{fmt(value)} [{fmt(interval.low)}, {fmt(interval.high)}]"


def result_rows(result: RetrofitResult, delta: float = 0.05) -> list[tuple[str, str]]:
    """(label, value) pairs describing a result; shared by the CLI table and the docs."""
    bound = result.bound(delta=delta) if result.n is not None else None
    held = result.held_out
    rows = [
        ("ℵ-loss, trained model", fmt(result.initial_loss)),
        ("ℵ-loss, retrofitted", fmt(result.best_loss)),
        ("held-out loss, trained model", _held(result.test_initial, held and held.before)),
        ("held-out loss, retrofitted", _held(result.test_best, held and held.after)),
    ]
    if held is not None:
        rows.append(("held-out gain [95% interval]", fmt_gain(held.gain)))
    rows += [(f"guard {check.name}", check.describe().split(": ", 1)[1]) for check in result.guard_checks]
    counted = f"{result.evaluations} ({result.failures}" + (
        f", {result.infeasible} infeasible)" if result.guard_checks else ")"
    )
    rows += [
        ("evaluations (failed" + (", infeasible)" if result.guard_checks else ")"), counted),
        (
            "optimizer",
            f"{_optimizer_name(result)}, λ={result.workers}, runs={result.runs}, seed={result.seed}",
        ),
        ("wall time", f"{result.wall_time:.1f} s"),
    ]
    if result.n is not None:
        if bound is None:
            rows.append(("overfitting bound", f"none: {result.optimizer} is not comparison-based"))
        else:
            rows.append((f"overfitting bound ε (n={result.n}, δ={delta})", f"{bound:.3f}"))
    if None not in (result.test_best, result.best_loss):
        rows.append(("measured gap |held-out − ℵ|", fmt(abs(result.test_best - result.best_loss))))  # type: ignore[operator]
    if result.interrupted:
        rows.append(("status", "interrupted; best so far (run again to continue)"))
    elif result.stopped:
        rows.append(("status", f"stopped: {result.stopped}; best so far (run again to continue)"))
    elif result.already_complete:
        rows.append(("status", "already complete: read from the store, nothing evaluated"))
    return rows


def _optimizer_name(result: RetrofitResult) -> str:
    """``auto (LargeCMA + final centroid)``: what "auto" ran for this ℵ-space, budget and λ."""
    from afterlearner import optimizers

    info = optimizers.get(result.optimizer)
    if info.name != optimizers.AUTO:
        return result.optimizer
    picked = info.resolve(len(result.aleph), result.budget, result.workers)
    return f"auto ({picked} + final centroid)" if info.centroid_size(result.budget) else f"auto ({picked})"


def print_result(result: RetrofitResult, title: str = "retrofit", console: Console | None = None) -> None:
    formatting.print_rows(result_rows(result), title, console)


def store_rows(store: Store, delta: float = 0.05) -> list[dict[str, Any]]:
    """One dict per run in the store, with the settings and the bound."""
    settings = store.settings() or {}
    rows = []
    for run in store.runs():
        loss = run["best_loss"] if settings.get("zero_one") else None
        bound = (
            bound_of(
                settings["optimizer"],
                settings["budget"],
                settings.get("n"),
                delta,
                settings.get("runs", 1),
                loss,
                guards=len(settings.get("guards") or {}),
            )
            if settings.get("optimizer")
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
        + "".join(
            f", guard {name} (tolerance {tol:g})" for name, tol in (settings.get("guards") or {}).items()
        )
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
        "held-out gain [95%]",
        "bound ε",
    ):
        table.add_column(column, justify="right")
    alive, killed = store.writer_alive(), []
    for row in store_rows(store, delta):
        held = HeldOut.from_dict(row["held_out"]) if row.get("held_out") else None
        status = row["status"]
        if status == "running" and not alive:
            status = "killed"
            killed.append(row["run_index"])
        table.add_row(
            str(row["run_index"]),
            status,
            f"{row['evaluations']}/{settings['budget']}",
            fmt(row["initial_loss"]),
            fmt(row["best_loss"]),
            _held(row["test_initial"], held and held.before),
            _held(row["test_best"], held and held.after),
            fmt_gain(held.gain) if held is not None else "-",
            "-" if row["bound"] is None else f"{row['bound']:.3f}",
        )
    console.print(table)
    for run_index in killed:
        console.print(
            f"run {run_index}: killed (marked running, but no process holds the store): run again to resume"
        )
    for row in store_rows(store, delta):
        for check in row.get("guards") or []:
            console.print(f"run {row['run_index']}: guard {GuardCheck.from_dict(check).describe()}")


# -- each run's best candidate by name (``show --values``) ----------------------------------------


def aligned(rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """Rows of cells as plain text lines, each column padded to its widest cell (``l``/``r`` per column).

    Plain text rather than a rich table: thousands of rows stay fast and read well in ``less``.
    """
    widths = [max(len(row[column]) for row in rows) for column in range(len(align))]
    return [
        "  ".join(
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(row, widths, align, strict=True)
        ).rstrip()
        for row in rows
    ]


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def values_lines(
    settings: dict[str, Any],
    runs: Sequence[dict[str, Any]],
    evaluations: Sequence[Evaluation],
    aleph: Any = None,
) -> list[str]:
    """Per run: its best candidate's ℵ-scalars by name, in searched units, beside the trained model's.

    With the task's ``aleph`` (whose space must be the store's: see :func:`history.check_space`), also
    what each scalar changes in the model (the element, or the norm of the row/column/tensor it
    applies to) and one line per tensor: its norm before and after, the largest change, how many
    elements moved.
    """
    by_run: dict[int, list[Evaluation]] = {}
    for evaluation in evaluations:
        by_run.setdefault(evaluation.run_index, []).append(evaluation)
    lines: list[str] = []
    for run in runs:
        run_evaluations = by_run.get(run["run_index"], [])
        best = history.best_of_run(run, run_evaluations)
        lines.append(_run_headline(run, run_evaluations, best))
        if best is not None:
            lines.extend(_scalar_table(settings, run_evaluations, best, aleph))
            if aleph is not None and any(entry["kind"] == "tensor" for entry in settings["space"]):
                lines.append("")
                lines.extend(_tensor_table(aleph, best.vector))
        lines.append("")
    return lines


def _run_headline(run: dict[str, Any], evaluations: list[Evaluation], best: history.Best | None) -> str:
    failed = sum(evaluation.failed for evaluation in evaluations)
    infeasible = sum(evaluation.status == "infeasible" for evaluation in evaluations)
    more = f", {infeasible} infeasible" if infeasible else ""
    where = f"run {run['run_index']} ({run['status']}, {len(evaluations)} evaluations, {failed} failed{more})"
    if best is None:
        return f"{where}: no successful evaluation yet"
    which = "" if best.index is None else f" at evaluation {best.index}"
    trained = evaluations[0].loss if evaluations else None
    return f"{where}: best ℵ-loss {_g(best.loss)}{which}; trained model {_g(trained)}"


def _scalar_table(
    settings: dict[str, Any], evaluations: list[Evaluation], best: history.Best, aleph: Any
) -> list[str]:
    header = ["ℵ-scalar", "searched", "trained", "best", "change"]
    rows = [
        [value.label, value.searched, _g(value.trained), _g(value.best), f"{value.change:+.6g}"]
        for value in history.scalar_values(settings, evaluations, best)
    ]
    align = "llrrr"
    if aleph is not None:
        header += ["model", "trained model", "retrofitted model"]
        for row, value in zip(rows, history.model_values(aleph, best.vector), strict=True):
            row += [value.what, _g(value.trained), _g(value.retrofitted)]
        align += "lrr"
    return aligned([header, *rows], align)


def _tensor_table(aleph: Any, vector: np.ndarray) -> list[str]:
    header = ["tensor", "shape", "searched", "‖trained‖", "‖retrofitted‖", "max |change|", "elements changed"]
    rows = [
        [
            change.name,
            "×".join(map(str, change.shape)) or "scalar",
            change.searched,
            _g(change.norm_trained),
            _g(change.norm_retrofitted),
            _g(change.max_change),
            f"{change.changed}/{change.elements}",
        ]
        for change in history.tensor_changes(aleph, vector)
    ]
    return aligned([header, *rows], "lllrrrr")


# -- plots -----------------------------------------------------------------------------------------

#: The y-range of a convergence plot holds this percentile of the evaluations (and the best-so-far
#: curves and held-out losses); the evaluations above it are drawn in range unless that would stretch
#: the range more than :data:`MAX_STRETCH` times, in which case they are drawn at its top edge.
BULK_PERCENTILE = 90
MAX_STRETCH = 2.0
#: Where failed evaluations and out-of-range ones are marked, as a fraction of the axes' height.
EDGE = 0.965


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only, no display): every figure starts here."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finite(values: Iterable[float | None]) -> np.ndarray:
    array = np.array([np.nan if value is None else value for value in values], dtype=float)
    return array[np.isfinite(array)]


def loss_scale(values: Iterable[float | None]) -> str:
    """``"log"`` when the (successful) losses are all positive and span more than a decade, else ``"linear"``.

    A few candidates far worse than the rest, or a loss that keeps shrinking by factors, then stay
    readable: the best-so-far curve is not flattened against the bottom of the axes.
    """
    finite = _finite(values)
    if finite.size < 2 or finite.min() <= 0:
        return "linear"
    return "log" if finite.max() / finite.min() > 10 else "linear"


def loss_limits(
    losses: Iterable[float | None], keep: Iterable[float | None], scale: str
) -> tuple[float, float] | None:
    """The y-range of a convergence plot: all of ``keep``, the bulk of ``losses`` (see :data:`MAX_STRETCH`).

    Computed in log10 units on a log scale. None when there is nothing to draw. The top has extra
    room for the markers of failed and out-of-range evaluations.
    """
    log = scale == "log"
    values, anchors = _finite(losses), _finite(keep)
    if log:
        values, anchors = np.log10(values), np.log10(anchors)
    everything = np.concatenate([values, anchors])
    if everything.size == 0:
        return None
    bottom, top = float(everything.min()), float(everything.max())
    if values.size:
        bulk = max(float(np.percentile(values, BULK_PERCENTILE)), float(anchors.max(initial=-np.inf)))
        if top - bottom > MAX_STRETCH * (bulk - bottom):
            top = bulk
    span = top - bottom
    pad = 0.05 * span if span > 0 else (0.1 if log else 0.05 * max(abs(top), 1.0))
    low, high = bottom - pad, top + 2 * pad
    return (10.0**low, 10.0**high) if log else (low, high)


def loss_axis(
    losses: Sequence[float | None], keep: Sequence[float | None]
) -> tuple[str, tuple[float, float] | None]:
    """The y scale and range of a convergence plot.

    The scale is decided on what a linear range would show (:func:`loss_limits`: ``keep`` and the
    bulk of ``losses``), so that a few far outliers, drawn at the edge anyway, do not turn the axis
    logarithmic; then the range is computed again on that scale.
    """
    linear = loss_limits(losses, keep, "linear")
    if linear is None:
        return "linear", None
    shown = [loss for loss in losses if loss is not None and loss <= linear[1]]
    scale = loss_scale([*shown, *keep])
    return scale, linear if scale == "linear" else loss_limits(losses, keep, "log")


def convergence_figure(
    series: dict[str, Sequence[float | None]],
    title: str = "",
    *,
    held_out: dict[str, tuple[float | None, float | None]] | None = None,
    infeasible: dict[str, Sequence[int]] | None = None,
    returned: dict[str, tuple[int, float]] | None = None,
) -> Any:
    """The figure of :func:`plot_convergence` (returned for callers that add to it, and for tests)."""
    plt = pyplot()
    held_out = held_out or {}
    broken = {label: set(infeasible.get(label, ())) for label in series} if infeasible else {}
    figure, axes = plt.subplots(figsize=(9, 4))
    every_loss = [loss for losses in series.values() for loss in losses]
    curves = {
        label: best_so_far([None if i in broken.get(label, ()) else v for i, v in enumerate(losses)])
        for label, losses in series.items()
    }
    held = [value for pair in held_out.values() for value in pair if value is not None]
    scale, limits = loss_axis(every_loss, [*(v for curve in curves.values() for v in curve), *held])
    axes.set_yscale(scale)
    if scale == "log":  # 0.02, 0.5, 3 rather than 2×10⁻², 5×10⁻¹, 3×10⁰
        from matplotlib.ticker import FuncFormatter, NullFormatter

        plain = FuncFormatter(lambda value, _: f"{value:g}")
        axes.yaxis.set_major_formatter(plain)  # minor ticks labelled too when there are few decades
        axes.yaxis.set_minor_formatter(plain if limits and limits[1] / limits[0] < 100 else NullFormatter())
    if limits is not None:
        axes.set_ylim(*limits)
    top = limits[1] if limits is not None else np.inf
    edge = axes.get_xaxis_transform()  # x in data units, y as a fraction of the axes
    failed: list[int] = []
    for index, (label, losses) in enumerate(series.items()):
        colour = f"C{index}"
        xs = np.arange(1, len(losses) + 1)
        ys = np.array([np.nan if loss is None else loss for loss in losses], dtype=float)
        failed.extend(x for x, loss in zip(xs.tolist(), losses, strict=True) if loss is None)
        if broken.get(label):
            out = np.array(sorted(broken[label]), dtype=int)
            axes.scatter(
                xs[out],
                np.minimum(ys[out], top),
                s=14,
                facecolors="none",
                edgecolors="grey",
                linewidths=0.8,
                label=f"{label}: infeasible ({len(out)})",
            )
            ys[out] = np.nan
        above = ys > top
        axes.scatter(
            xs[~above], ys[~above], s=8, alpha=0.35, color=colour, label=f"{label} (each evaluation)"
        )
        if above.any():
            axes.scatter(
                xs[above],
                np.full(int(above.sum()), EDGE),
                transform=edge,
                marker="^",
                s=18,
                color=colour,
                clip_on=False,
                label=f"{label}: {int(above.sum())} above the range",
            )
        axes.plot(xs, curves[label], color=colour, label=f"{label} (best so far)")
        position, loss = (returned or {}).get(label, (0, math.nan))
        if 1 <= position <= len(losses) and loss > curves[label][position - 1]:  # not on the line
            axes.scatter(
                [position],
                [min(loss, top)],
                s=70,
                facecolors="none",
                edgecolors=colour,
                linewidths=1.6,
                zorder=4,
                label=f"{label}: returned (final centroid)",
            )
        _held_out_markers(
            axes, held_out.get(label), len(losses), colour, prefix="" if len(held_out) < 2 else label
        )
    if failed:
        axes.scatter(
            failed,
            np.full(len(failed), EDGE),
            transform=edge,
            marker="x",
            s=22,
            color="red",
            clip_on=False,
            label=f"failed ({len(failed)})",
        )
    axes.set_xlabel("evaluation")
    axes.set_ylabel("ℵ-loss")
    axes.set_title(title)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside: covers nothing
    return figure


def _held_out_markers(
    axes: Any, pair: tuple[float | None, float | None] | None, count: int, colour: str, prefix: str
) -> None:
    """The held-out loss of the trained model at the first evaluation, of the retrofitted one at the last."""
    if pair is None:
        return
    initial, final = pair
    name = f"{prefix}: held-out" if prefix else "held-out"
    if initial is not None:
        axes.scatter(
            [1],
            [initial],
            marker="D",
            s=45,
            facecolor="white",
            edgecolor=colour,
            linewidth=1.6,
            zorder=5,
            label=f"{name}, trained",
        )
    if final is not None:
        axes.scatter(
            [count],
            [final],
            marker="*",
            s=160,
            color=colour,
            edgecolor="black",
            linewidth=0.8,
            zorder=5,
            label=f"{name}, retrofitted",
        )


def plot_convergence(
    series: dict[str, Sequence[float | None]],
    path: str | Path,
    title: str = "",
    *,
    held_out: dict[str, tuple[float | None, float | None]] | None = None,
    infeasible: dict[str, Sequence[int]] | None = None,
    returned: dict[str, tuple[int, float]] | None = None,
) -> Path:
    """Loss per evaluation (dots) and best so far (line), one colour per series; writes a PNG.

    ``series`` maps a label to its losses in order (None for a failed evaluation: a red ✕ along the
    top). ``infeasible`` maps a label to the positions of its infeasible evaluations (guards: grey
    rings, left out of the best so far). ``held_out`` maps a label to its held-out loss (trained,
    retrofitted), drawn at its first and last evaluation. ``returned`` maps a label to the position
    (1-based) and ℵ-loss of the candidate returned, ringed when it is not on the best-so-far line
    (``auto``'s final centroid). The y-axis is logarithmic when the losses
    span more than a decade (:func:`loss_scale`) and leaves out far outliers (:func:`loss_limits`),
    marked at its top edge.
    """
    figure = convergence_figure(series, title, held_out=held_out, infeasible=infeasible, returned=returned)
    return save_figure(figure, path)


def returned_position(result: RetrofitResult) -> tuple[int, float] | None:
    """Where the returned candidate is in ``result.losses()`` (1-based) and its ℵ-loss; None if none."""
    if result.best_loss is None:
        return None
    for index in range(len(result.history) - 1, -1, -1):
        evaluation = result.history[index]
        same = evaluation.ok and evaluation.loss == result.best_loss
        if same and np.array_equal(evaluation.vector, result.best):
            return index + 1, result.best_loss
    return None


def save_figure(figure: Any, path: str | Path) -> Path:
    """Lay out, write as PNG (creating the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def store_title(store: Store, settings: dict[str, Any] | None) -> str:
    """The task's name and the store's file name, for plot titles."""
    task = (settings or {}).get("task")
    return f"{task} ({store.path.name})" if task else store.path.name


def store_figure(store: Store, *, title: str | None = None) -> Any:
    """The convergence figure of every run in a store, with the held-out losses the store recorded."""
    series: dict[str, list[float | None]] = {}
    infeasible: dict[str, list[int]] = {}
    by_run: dict[int, list[Evaluation]] = {}
    for evaluation in store.evaluations():
        by_run.setdefault(evaluation.run_index, []).append(evaluation)
        losses = series.setdefault(f"run {evaluation.run_index}", [])
        if evaluation.status == "infeasible":
            infeasible.setdefault(f"run {evaluation.run_index}", []).append(len(losses))
        losses.append(evaluation.loss)
    runs = store.runs()
    held_out = {
        f"run {run['run_index']}": (run["test_initial"], run["test_best"])
        for run in runs
        if run["test_initial"] is not None or run["test_best"] is not None
    }
    returned = {}
    for run in runs:
        best = history.best_of_run(run, by_run.get(run["run_index"], []))
        if best is not None and best.index is not None and best.loss is not None:
            returned[f"run {run['run_index']}"] = (best.index + 1, best.loss)
    title = title if title is not None else store_title(store, store.settings())
    return convergence_figure(series, title, held_out=held_out, infeasible=infeasible, returned=returned)


def plot_store(store: Store, path: str | Path, *, title: str | None = None) -> Path:
    """Write :func:`store_figure` as a PNG (titled with the task's name and the store's file name)."""
    return save_figure(store_figure(store, title=title), path)


# -- the ℵ-parameters over the evaluations (``show --plot-params``) ---------------------------------

#: At most this many ℵ-entries are drawn, one panel each (the figure says when some are left out).
MAX_PANELS = 12
#: An entry with at most this many scalars gets one labelled line each, with every candidate as a dot;
LABELLED_SCALARS = 10
#: up to this many, one thin unlabelled line each; beyond, a band of quantiles across its scalars.
DRAWN_SCALARS = 300


def params_figure(
    settings: dict[str, Any],
    evaluations: Sequence[Evaluation],
    runs: Sequence[dict[str, Any]] = (),
    title: str = "",
) -> Any:
    """One panel per ℵ-entry (the first :data:`MAX_PANELS`): its values over the evaluations.

    Runs are drawn one after another. The line is the best candidate so far (what the run would
    return if stopped there), dots are the candidates evaluated (small entries only), red ✕ are
    failed candidates; each run's best candidate is a dashed vertical line with its values as black
    points. ``runs`` are the store's runs rows (their ``best_vector``); without them, the best is
    taken from the evaluations.
    """
    plt = pyplot()
    signature = settings["space"]
    shown = signature[:MAX_PANELS]
    columns_count = 1 if len(shown) <= 3 else 2
    rows_count = -(-len(shown) // columns_count)
    figure, grid = plt.subplots(
        rows_count, columns_count, figsize=(6.5 * columns_count, 1.4 + 2.4 * rows_count), squeeze=False
    )
    for axes in grid.flat[len(shown) :]:
        axes.set_visible(False)
    labels, units = labels_of(signature), history.searched_units(signature)
    vectors = np.array([evaluation.vector for evaluation in evaluations]).reshape(
        len(evaluations), len(labels)
    )
    panel = _Panel(
        xs=np.arange(1, len(evaluations) + 1),
        values=vectors,
        incumbent=history.best_vectors_so_far(evaluations, len(labels), runs or ()),
        failed=np.array([not evaluation.ok for evaluation in evaluations], dtype=bool),
        bests=_best_positions(evaluations, runs),
        boundaries=[
            x for x in range(1, len(evaluations)) if evaluations[x - 1].run_index != evaluations[x].run_index
        ],
    )
    start = 0
    for axes, entry in zip(grid.flat, shown, strict=False):
        stop = start + int(entry["size"])
        panel.draw(axes, entry, units[start], labels[start:stop], slice(start, stop))
        start = stop
    for axes in grid[-1]:
        axes.set_xlabel("evaluation" + (" (runs one after another)" if panel.boundaries else ""))
    left_out = len(signature) > MAX_PANELS
    note = f"; only the first {MAX_PANELS} of {len(signature)} entries" if left_out else ""
    heading = f"{title}: " if title else ""
    figure.suptitle(
        f"{heading}ℵ-parameters over the evaluations{note}\n"
        "line: best so far · dots: candidates · red ✕: failed · dashed: best candidate",
        fontsize="medium",
    )
    return figure


def _best_positions(
    evaluations: Sequence[Evaluation], runs: Sequence[dict[str, Any]]
) -> list[tuple[int | None, np.ndarray]]:
    """(position in ``evaluations`` counted from 1, or None if not found; vector) of each run's best."""
    rows = {run["run_index"]: run for run in runs}
    by_run: dict[int, list[Evaluation]] = {}
    for evaluation in evaluations:
        by_run.setdefault(evaluation.run_index, []).append(evaluation)
    position = {(e.run_index, e.idx): x for x, e in enumerate(evaluations, start=1)}
    bests = []
    for run_index, run_evaluations in by_run.items():
        best = history.best_of_run(rows.get(run_index, {}), run_evaluations)
        if best is not None:
            bests.append((position.get((run_index, best.index)), best.vector))
    return bests


@dataclass
class _Panel:
    """What every panel of :func:`params_figure` shares: the evaluations, their best so far, the runs."""

    xs: np.ndarray
    values: np.ndarray
    incumbent: np.ndarray
    failed: np.ndarray
    bests: list[tuple[int | None, np.ndarray]]
    boundaries: list[int]

    def lines(self, columns: slice) -> tuple[np.ndarray, np.ndarray]:
        """The best-so-far lines of some columns, with a gap (a NaN row) between one run and the next."""
        xs = np.insert(self.xs.astype(float), self.boundaries, np.array(self.boundaries) + 0.5)
        return xs, np.insert(self.incumbent[:, columns], self.boundaries, np.nan, axis=0)

    def draw(self, axes: Any, entry: dict[str, Any], unit: str, labels: list[str], columns: slice) -> None:
        values = self.values[:, columns]
        size = values.shape[1]
        line_xs, line_ys = self.lines(columns)
        edge = axes.get_xaxis_transform()
        if size <= LABELLED_SCALARS:
            for j in range(size):
                colour = f"C{j % 10}"
                axes.scatter(self.xs[~self.failed], values[~self.failed, j], s=5, alpha=0.3, color=colour)
                axes.step(line_xs, line_ys[:, j], where="post", color=colour, linewidth=1.2, label=labels[j])
            failed_xs = np.repeat(self.xs[self.failed], size)
            axes.scatter(failed_xs, values[self.failed].ravel(), marker="x", s=16, color="red", zorder=4)
        else:
            if size <= DRAWN_SCALARS:
                _thin_steps(axes, line_xs, line_ys)
            else:
                _quantile_band(axes, line_xs, line_ys)
            axes.scatter(
                self.xs[self.failed],
                np.full(int(self.failed.sum()), EDGE),
                transform=edge,
                marker="x",
                s=16,
                color="red",
                clip_on=False,
            )
        for boundary in self.boundaries:
            axes.axvline(boundary + 0.5, color="grey", linewidth=0.8, linestyle=":")
        for x, vector in self.bests:
            if x is None:
                continue
            axes.axvline(x, color="black", linewidth=0.8, linestyle="--")
            if size <= DRAWN_SCALARS:
                axes.scatter(np.full(size, x), vector[columns], s=12, color="black", zorder=5)
        kind = "value" if entry.get("kind") != "tensor" else f"{unit} per {entry['per']}"
        axes.set_title(f"{entry['name']}: {kind}, {size} scalar{'s' if size > 1 else ''}", fontsize="small")
        axes.set_ylabel(unit)
        if entry.get("log") and values.size and values.min() > 0:
            axes.set_yscale("log")
        if 1 < size <= LABELLED_SCALARS:
            axes.legend(fontsize="x-small", ncol=2 if size > 4 else 1)


def _step_xy(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The vertices of a post-step line through (xs, ys), as ``axes.step(where="post")`` draws it."""
    return np.column_stack([np.repeat(xs, 2)[1:], np.repeat(ys, 2)[:-1]])


def _thin_steps(axes: Any, xs: np.ndarray, incumbent: np.ndarray) -> None:
    from matplotlib.collections import LineCollection

    lines = [_step_xy(xs, incumbent[:, j]) for j in range(incumbent.shape[1])]
    axes.add_collection(LineCollection(lines, linewidths=0.6, alpha=0.45, color="C0"))
    axes.autoscale_view()


def _quantile_band(axes: Any, xs: np.ndarray, incumbent: np.ndarray) -> None:
    """Min–max and 10–90 % of the scalars at each evaluation, and their median (for very large entries)."""
    known = ~np.isnan(incumbent).any(axis=1)  # rows before a run's first success are all NaN
    if not known.any():
        return
    q = np.full((5, len(xs)), np.nan)
    q[:, known] = np.percentile(incumbent[known], [0, 10, 50, 90, 100], axis=1)
    axes.fill_between(xs, q[0], q[4], step="post", alpha=0.15, color="C0", linewidth=0, label="min–max")
    axes.fill_between(xs, q[1], q[3], step="post", alpha=0.35, color="C0", linewidth=0, label="10–90 %")
    axes.step(xs, q[2], where="post", color="C0", linewidth=1.0, label="median")
    axes.legend(fontsize="x-small")


def plot_params(
    settings: dict[str, Any],
    evaluations: Sequence[Evaluation],
    path: str | Path,
    *,
    runs: Sequence[dict[str, Any]] = (),
    title: str = "",
) -> Path:
    """Write :func:`params_figure` as a PNG."""
    return save_figure(params_figure(settings, evaluations, runs, title), path)
