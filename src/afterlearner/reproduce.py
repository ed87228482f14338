"""Re-running the original experiments and keeping their results table (``afterlearner reproduce``).

One experiment run gives one *row*: the ℵ-loss before and after on the ℵ-set and on held-out data,
evaluations, optimizer, wall time and the overfitting bound. Rows live in ``OUT/results.json``
(one row per experiment name, replaced when it is run again, so runs of different experiments
accumulate, and a file lock keeps two concurrent runs from losing each other's rows).
``OUT/results.md`` is rewritten from the rows after every run, with one convergence plot per
experiment at ``OUT/results/NAME.png``.

The held-out verdict is stated plainly: a gain that does not hold on held-out data is marked so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from afterlearner.checks import check_positive_int
from afterlearner.errors import ConfigError
from afterlearner.evaluators import make_evaluator
from afterlearner.experiments.base import Experiment
from afterlearner.formatting import fmt
from afterlearner.guards import GuardCheck
from afterlearner.heldout import Gain, HeldOut, fmt_gain
from afterlearner.report import plot_convergence, returned_position
from afterlearner.retrofit import RetrofitResult, retrofit
from afterlearner.task import Task, measured_loss

#: The confidence level of the reported bound.
DELTA = 0.05
#: Differences smaller than this count as "no change" in the held-out verdict.
TOLERANCE = 1e-9
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
PLOTS_DIR = "results"


def verdict(
    aleph_before: float | None,
    aleph_after: float | None,
    test_before: float | None,
    test_after: float | None,
    gain: Gain | None = None,
) -> str:
    """A plain-words statement of whether the ℵ-set gain holds on held-out data.

    With the held-out gain's interval, "holds" only when the interval excludes zero; without one,
    the bare direction of the change, said to have no interval.
    """
    if aleph_before is None or aleph_after is None:
        return "no successful evaluation"
    if not aleph_after < aleph_before - TOLERANCE:
        return "no gain found on the ℵ-set"
    if test_before is None or test_after is None:
        return "no held-out set"
    if gain is not None and gain.low is not None:
        return {"holds": "holds", "worse": "does NOT hold (significantly worse)"}.get(
            gain.verdict, "does NOT hold (not significant)"
        )
    if test_after < test_before - TOLERANCE:
        return "better, no interval"
    if abs(test_after - test_before) <= TOLERANCE:
        return "does NOT hold (held-out unchanged)"
    return "does NOT hold (held-out worse)"


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def run_experiment(
    experiment: Experiment,
    budget: int | None = None,
    seed: int = 0,
    reduced: bool = False,
    progress: bool = True,
    out: str | Path = "docs",
    processes: int | None = None,
) -> tuple[dict[str, Any], RetrofitResult]:
    """Build the experiment's task, retrofit it and return (its results row, the result).

    ``budget`` defaults to the experiment's; the optimizer asks its λ (``workers``) candidates at a
    time, evaluated in ``processes`` worker processes (default: the experiment's; 1 = in this
    process), each building the task once. For a given seed the result does not depend on ``processes``.

    Writes the convergence plot ``OUT/results/NAME.png`` and whatever the experiment's
    ``after_reproduce`` hook writes; does not touch the results table (see :func:`record`).
    """
    budget = budget if budget is not None else experiment.budget
    processes = processes if processes is not None else experiment.processes
    check_positive_int("budget", budget)
    check_positive_int("processes", processes)
    out = Path(out)
    started = time.perf_counter()
    task = experiment.task(reduced=reduced)
    setup_time = time.perf_counter() - started
    if experiment.bound_applies and task.n is None:
        raise ConfigError(f"experiment {experiment.name!r}: the bound applies but its task states no n")
    measure_extra = experiment.extra_metrics or (lambda _task: {})
    extra_before = measure_extra(task)
    result = _search(experiment, task, budget, seed, reduced, processes, progress)
    extra_after = measure_extra(task)
    comparisons = experiment.comparisons(task, result) if experiment.comparisons else {}
    plot = plot_convergence(
        {experiment.name: result.losses()},
        out / PLOTS_DIR / f"{experiment.name}.png",
        title=f"{experiment.name}: {experiment.metric}",
        held_out={experiment.name: (result.test_initial, result.test_best)},
        infeasible={experiment.name: result.infeasible_indices()},
        returned={experiment.name: position} if (position := returned_position(result)) else None,
    )
    artefacts = experiment.after_reproduce(task, result, out) if experiment.after_reproduce else []
    bound = result.bound(delta=DELTA) if experiment.bound_applies else None
    row = {
        "name": experiment.name,
        "title": experiment.title,
        "metric": experiment.metric,
        "reduced": reduced,
        "seed": seed,
        "budget": budget,
        "workers": experiment.workers,
        "processes": processes,
        "optimizer": result.optimizer,
        "aleph_scalars": len(task.aleph),
        "n": task.n,
        "evaluations": result.evaluations,
        "failures": result.failures,
        "infeasible": result.infeasible,
        "guards": [check.as_dict() for check in result.guard_checks],
        "aleph_before": _finite(result.initial_loss),
        "aleph_after": _finite(result.best_loss),
        "test_before": _finite(result.test_initial),
        "test_after": _finite(result.test_best),
        "verdict": verdict(
            result.initial_loss, result.best_loss, result.test_initial, result.test_best, result.test_gain
        ),
        "test_gain": result.test_gain.as_dict() if result.test_gain is not None else None,
        "bound": _finite(bound),
        "bound_note": experiment.bound_note
        or ("" if bound is not None else f"none: {result.optimizer} is not comparison-based"),
        "extra_before": extra_before,
        "extra_after": extra_after,
        "comparisons": {label: held.as_dict() for label, held in comparisons.items()},
        "wall_time": round(result.wall_time, 2),
        "setup_time": round(setup_time, 2),
        "plot": _relative(plot, out),
        "artefacts": [_relative(Path(path), out) for path in artefacts],
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return row, result


def _search(
    experiment: Experiment, task: Task, budget: int, seed: int, reduced: bool, processes: int, progress: bool
) -> RetrofitResult:
    """The retrofit itself, in ``processes`` worker processes (each building the task) or in this one."""
    evaluator, _ = make_evaluator(
        task.aleph,
        measured_loss(task),
        workers=experiment.workers,
        processes=processes if processes > 1 else None,
        spec=experiment.task_spec(),
        factory_kwargs=experiment.factory_kwargs(reduced),
    )
    # retrofit closes the evaluator (the worker processes), whatever happens
    return retrofit(
        task.aleph,
        task.loss,
        budget=budget,
        optimizer=experiment.optimizer,
        workers=experiment.workers,
        seed=seed,
        test_loss=task.test_loss,
        n=task.n,
        progress=progress,
        name=task.name or experiment.name,
        evaluator=evaluator,
        guards=task.guards,
    )


def _relative(path: Path, out: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(out.resolve()))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f".{RESULTS_JSON}.lock", "w") as handle:  # hidden; listed in .gitignore
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_rows(out: str | Path) -> list[dict[str, Any]]:
    """The rows kept in ``OUT/results.json`` (empty if there is none yet)."""
    path = Path(out) / RESULTS_JSON
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON ({error}); fix or delete it") from error
    if not isinstance(rows, list) or not all(isinstance(row, dict) and "name" in row for row in rows):
        raise ConfigError(f"{path} is not a list of result rows; fix or delete it")
    return rows


def record(row: dict[str, Any], out: str | Path = "docs") -> list[dict[str, Any]]:
    """Add or replace ``row`` (by name) in ``OUT/results.json`` and rewrite ``OUT/results.md``."""
    out = Path(out)
    with _locked(out):
        rows = [old for old in load_rows(out) if old["name"] != row["name"]] + [row]
        _write_rows(rows, out)
    return rows


def forget(name: str, out: str | Path = "docs") -> list[dict[str, Any]]:
    """Remove the row of ``name`` (an experiment renamed or removed, or a row to redo from nothing)
    from ``OUT/results.json``, with its convergence plot, and rewrite ``OUT/results.md``.

    The experiment's own artefacts (other files its row lists) are left: other rows may share them.
    """
    out = Path(out)
    with _locked(out):
        rows = load_rows(out)
        kept = [row for row in rows if row["name"] != name]
        if len(kept) == len(rows):
            listed = ", ".join(row["name"] for row in rows) or "none"
            raise ConfigError(f"{out / RESULTS_JSON} has no row named {name!r} (rows: {listed})")
        plot = next(row for row in rows if row["name"] == name).get("plot")
        _write_rows(kept, out)
        if plot and not any(row.get("plot") == plot for row in kept):
            (out / plot).unlink(missing_ok=True)
    return kept


def _write_rows(rows: list[dict[str, Any]], out: Path) -> None:
    """``results.json`` (replaced whole, never half-written) and ``results.md`` from ``rows``."""
    rows.sort(key=lambda r: r["name"])
    path = out / RESULTS_JSON
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    temporary.replace(path)
    (out / RESULTS_MD).write_text(render_markdown(rows))


def _parallel(row: dict[str, Any]) -> str:
    """``"λ = 2, 2 worker processes, "`` for a parallel run; empty for one candidate at a time in-process."""
    workers, processes = row.get("workers", 1), row.get("processes", 1)
    if workers == 1 and processes == 1:
        return ""
    where = f"{processes} worker processes" if processes > 1 else "in one process"
    return f"λ = {workers} candidates per step ({where}), "


def _gain_cell(row: dict[str, Any]) -> str:
    """The held-out gain with its 95% interval and the verdict from it (old rows: the verdict alone)."""
    gain = row.get("test_gain")
    if not gain or gain.get("low") is None:
        return row["verdict"] + ("" if gain else " (no interval recorded)")
    return f"{gain['value']:.4g} [{gain['low']:.4g}, {gain['high']:.4g}]: {row['verdict']}"


def _comparison_lines(comparisons: dict[str, Any]) -> list[str]:
    """The table of the row's further held-out comparisons (a baseline A → a model B, usually the
    retrofitted one): both held-out losses and the gain A − B with its interval."""
    if not comparisons:
        return []
    lines = [
        "",
        "| held-out comparison (A → B) | A | B | gain A − B (95% interval) |",
        "|---|---|---|---|",
    ]
    for label, data in comparisons.items():
        held = HeldOut.from_dict(data)
        lines.append(f"| {label} | {held.before} | {held.after} | {fmt_gain(held.gain)} |")
    return lines


def render_markdown(rows: list[dict[str, Any]]) -> str:
    """``results.md``: the table, then one section per experiment with its plot and extra metrics."""
    lines = [
        "# Results of the re-created experiments",
        "",
        "Written by `afterlearner reproduce` (do not edit by hand; rerun `afterlearner reproduce all`).",
        "Losses are ℵ-losses (lower is better). *Held-out gain* is the held-out loss of the trained",
        "model minus that of the retrofitted one, with its 95% interval (paired bootstrap over the",
        "held-out items); it *holds* only when the interval excludes zero. A row without an interval",
        "has a held-out loss of one number (no items to resample) or was run before intervals were",
        f"recorded. ε is the overfitting bound (δ = {DELTA}) of",
        "`afterlearner.bound`: with probability ≥ 1 − δ, |held-out − ℵ| ≤ ε for the returned point",
        "(for comparison-based optimizers and ℵ-losses that are means of per-sample losses in [0, 1]).",
        "",
        "| experiment | ℵ-loss | ℵ before | ℵ after | held-out before | held-out after | held-out gain "
        "| evaluations | optimizer | wall time | n | ε |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = row["name"] + (" (reduced)" if row.get("reduced") else "")
        bound = "none" if row.get("bound") is None else fmt(row["bound"], 3)
        if row.get("bound") is not None and row["bound"] >= 1:
            bound += " (vacuous)"  # losses are in [0, 1]: ε ≥ 1 says nothing
        lines.append(
            f"| {name} | {row['metric']} | {fmt(row['aleph_before'])} | {fmt(row['aleph_after'])} "
            f"| {fmt(row['test_before'])} | {fmt(row['test_after'])} | {_gain_cell(row)} "
            f"| {row['evaluations']} ({row['failures']} failed) | {row['optimizer']} "
            f"| {row['wall_time']:.0f} s "
            f"| {row['n'] if row['n'] is not None else '-'} | {bound} |"
        )
    for row in rows:
        lines += ["", f"## {row['name']}", "", row["title"], ""]
        lines.append(
            f"{row['aleph_scalars']} ℵ-scalars, budget {row['budget']}, seed {row['seed']}, {_parallel(row)}"
            f"task set-up {row['setup_time']:.0f} s, retrofit {row['wall_time']:.0f} s, run {row['date']}."
        )
        if row.get("bound_note"):
            lines += ["", f"Bound: {row['bound_note']}"]
        if row.get("guards"):
            lines += ["", f"Guards ({row.get('infeasible', 0)} infeasible candidates, never returned):", ""]
            lines += [f"- {GuardCheck.from_dict(check).describe()}" for check in row["guards"]]
        extras = sorted(set(row.get("extra_before", {})) | set(row.get("extra_after", {})))
        if extras:
            lines += ["", "| held-out metric | trained | retrofitted |", "|---|---|---|"]
            for key in extras:
                lines.append(
                    f"| {key} | {fmt(row['extra_before'].get(key))} | {fmt(row['extra_after'].get(key))} |"
                )
        lines += _comparison_lines(row.get("comparisons") or {})
        lines += ["", f"![convergence of {row['name']}]({row['plot']})"]
        for artefact in row.get("artefacts", []):
            shown = f"![{Path(artefact).stem}]({artefact})" if artefact.endswith(".png") else f"- {artefact}"
            lines += ["", shown]
    return "\n".join(lines) + "\n"
