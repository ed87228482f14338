"""What the dashboard shows, read from stores opened read-only: runs, evaluations, best values.

Pure functions of an open :class:`~afterlearner.store.Store` (and the time), so they work while a
run writes the store (WAL mode: each query sees the latest commit) and are tested without a server.
The evaluations are read incrementally: a client keeps a :class:`Cursor` (rows seen, the largest
rowid seen, and a stamp of those rows) and asks only for what is new; when rows it has seen are
gone or changed (a feedback answer taken back), the whole run is sent again.
"""

from __future__ import annotations

import io
import math
import shlex
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from afterlearner import history, report
from afterlearner.space import labels_of
from afterlearner.store import FEEDBACK, Store

#: Up to this many ℵ-scalars the page draws one small chart per scalar; above, a summary.
MAX_CHARTED = 36
#: Up to this many ℵ-scalars the values table lists them all; above, the largest changes.
MAX_LISTED = 200
#: How many of the largest changes the table lists for a larger space.
LARGEST_LISTED = 50
#: A running run with no new evaluation for this long is flagged as possibly killed.
QUIET_SECONDS = 120.0


def space_labels(signature: Any, size: int) -> list[str]:
    """One label per scalar: :func:`labels_of` for an ℵ-space, ``value[i]`` for a plain parametrization."""
    if isinstance(signature, list):
        labels = labels_of(signature)
        if len(labels) == size:
            return labels
    return ["value"] if size == 1 else [f"value[{i}]" for i in range(size)]


def space_units(signature: Any, size: int) -> list[str]:
    """How each scalar is searched: ``offset``, ``factor`` or ``value`` (:func:`history.searched_units`)."""
    if isinstance(signature, list):
        units = history.searched_units(signature)
        if len(units) == size:
            return units
    return ["value"] * size


def space_size(settings: dict[str, Any]) -> int:
    """The number of ℵ-scalars of a store's space."""
    signature = settings.get("space")
    if isinstance(signature, list):
        return sum(int(entry["size"]) for entry in signature)
    if isinstance(signature, dict):
        return int(signature.get("size", 0))
    return 0


def csv_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as :func:`history.write_csv` reads them, a plain parametrization's space included."""
    if isinstance(settings.get("space"), list):
        return settings
    return {**settings, "space": [{"kind": "value", "name": "value", "size": space_size(settings)}]}


def write_csv(store: Store) -> str:
    """Every evaluation of ``store`` as CSV (:func:`history.write_csv`: one column per ℵ-scalar)."""
    buffer = io.StringIO()
    history.write_csv(csv_settings(store.settings() or {"space": []}), store.evaluations(), buffer)
    return buffer.getvalue()


# -- runs ------------------------------------------------------------------------------------------
def _live(store: Store) -> dict[int, dict[str, Any]]:
    """Per run, from the evaluations themselves: count, failures, first and best loss, last commit."""
    rows = store.connection.execute(
        "SELECT run_index, COUNT(*), TOTAL(status = 'failed'), MIN(CASE WHEN status = 'ok' THEN loss END), "
        "MAX(finished) FROM evaluations GROUP BY run_index"
    ).fetchall()
    first = dict(
        store.connection.execute(
            "SELECT run_index, loss FROM evaluations WHERE idx = 0 AND status = 'ok'"
        ).fetchall()
    )
    return {
        run: {"evaluations": n, "failures": int(failed), "best": best, "last": last, "first": first.get(run)}
        for run, n, failed, best, last in rows
    }


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def run_key(store_index: int, run_index: int) -> str:
    """How the page names a run: ``"<store>-<run>"``."""
    return f"{store_index}-{run_index}"


def runs(store: Store, store_index: int, now: float | None = None) -> list[dict[str, Any]]:
    """One row per run of ``store``: what the runs table shows (losses are null where unknown)."""
    now = time.time() if now is None else now
    settings = store.settings() or {}
    live = _live(store)
    rows = []
    for row in report.store_rows(store) if settings else []:
        index = row["run_index"]
        seen = live.get(index, {"evaluations": 0, "failures": 0, "best": None, "last": None, "first": None})
        status = row["status"]
        end = row["finished"] if status != "running" else (seen["last"] or now)
        wall = row["wall_time"] if row["wall_time"] is not None else max(0.0, (end or now) - row["started"])
        quiet = now - (seen["last"] or row["started"]) if status == "running" else None
        rows.append(
            {
                "key": run_key(store_index, index),
                "store": store_index,
                "run": index,
                "status": status,
                "quiet": quiet,
                "possibly_killed": quiet is not None and quiet > QUIET_SECONDS,
                "evaluations": seen["evaluations"],
                "failures": seen["failures"],
                "budget": settings.get("budget"),
                "before": _finite(row["initial_loss"] if row["initial_loss"] is not None else seen["first"]),
                "best": _finite(row["best_loss"] if row["best_loss"] is not None else seen["best"]),
                "test_before": _finite(row["test_initial"]),
                "test_after": _finite(row["test_best"]),
                "bound": _finite(row["bound"]),
                "wall_time": wall,
                "seed": row["seed"],
            }
        )
    return rows


def describe_store(path: Path, store: Store | None, store_index: int, problem: str | None) -> dict[str, Any]:
    """A store as the page lists it: its file, task, settings in words, export command, its runs."""
    settings = (store.settings() if store is not None else None) or {}
    feedback = settings.get("mode") == FEEDBACK
    quoted = shlex.quote(str(path))
    return {
        "index": store_index,
        "path": str(path),
        "name": path.name,
        "problem": problem,
        "task": settings.get("task") or ("feedback session" if feedback else None),
        "feedback": feedback,
        "settings": settings_text(settings),
        "scalars": space_size(settings) if settings else None,
        "export": None
        if feedback or not settings
        else (
            f"afterlearner export {quoted} --task "
            f"{shlex.quote(settings.get('task_file') or 'path/to/task.py:factory')} --out best.safetensors"
        ),
        "runs": runs(store, store_index) if store is not None and settings else [],
    }


def settings_text(settings: dict[str, Any]) -> str:
    """The settings that tell runs apart, in a short line (``optimizer TwoPointsDE, budget 200, …``)."""
    if not settings:
        return "no run yet"
    parts = [
        f"optimizer {settings.get('optimizer')}",
        f"budget {settings.get('budget')}",
        f"λ={settings.get('workers')}",
        f"runs {settings.get('runs')}",
        f"seed {settings.get('seed')}",
        f"{space_size(settings)} ℵ-scalars",
    ]
    if settings.get("n"):
        parts.append(f"n={settings['n']}")
    if settings.get("mode") == FEEDBACK:
        parts.append(f"k={settings.get('k')}, {settings.get('answers')} answers")
    return ", ".join(parts)


# -- evaluations, incrementally ----------------------------------------------------------------------
@dataclass(frozen=True)
class Cursor:
    """What a client has of a run: ``rows`` evaluations, rowids up to ``upto``, ``stamp`` their sum of
    commit times (a change in the rows seen, not only their number, makes the run be sent again)."""

    rows: int = 0
    upto: int = 0
    stamp: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """``"rows:upto:stamp"`` (what the page sends back); anything else is the start."""
        try:
            rows, upto, stamp = text.split(":")
            cursor = cls(int(rows), int(upto), float(stamp))
        except ValueError:
            return cls()
        return cursor if cursor.rows >= 0 and cursor.upto >= 0 and math.isfinite(cursor.stamp) else cls()

    def text(self) -> str:
        return f"{self.rows}:{self.upto}:{self.stamp!r}"


def new_evaluations(store: Store, run_index: int, cursor: Cursor) -> dict[str, Any]:
    """The evaluations of a run the client has not seen: ``reset`` (true: drop what you have),
    ``idx``, ``loss`` (null for a failure), ``failed``, and the ``cursor`` to send next time."""
    db = store.connection
    db.execute("BEGIN")  # one snapshot for both queries
    try:
        count, stamp = db.execute(
            "SELECT COUNT(*), TOTAL(finished) FROM evaluations WHERE run_index = ? AND rowid <= ?",
            (run_index, cursor.upto),
        ).fetchone()
        reset = count != cursor.rows or stamp != cursor.stamp
        since = 0 if reset else cursor.upto
        rows = db.execute(
            "SELECT rowid, idx, loss, status, finished FROM evaluations WHERE run_index = ? AND rowid > ? "
            "ORDER BY rowid",
            (run_index, since),
        ).fetchall()
    finally:
        db.execute("COMMIT")
    base = Cursor() if reset else cursor
    total, upto = base.rows + len(rows), max([base.upto, *(row[0] for row in rows)])
    stamp = base.stamp
    for row in rows:
        stamp += row[4]
    # a loss to draw: ok or infeasible (a guard broke: drawn apart, never the best) with a finite loss
    drawn = [row[3] in ("ok", "infeasible") and _finite(row[2]) is not None for row in rows]
    return {
        "reset": reset,
        "idx": [row[1] for row in rows],
        "loss": [row[2] if good else None for row, good in zip(rows, drawn, strict=True)],
        "failed": [not good for good in drawn],
        "infeasible": [row[3] == "infeasible" and good for row, good in zip(rows, drawn, strict=True)],
        "cursor": Cursor(total, upto, stamp).text(),
    }


def axis(
    stores: Sequence[Store], selected: Sequence[tuple[int, int]], held_out: Sequence[float | None]
) -> dict[str, Any]:
    """The y scale and range of the convergence chart of the selected (store, run) pairs, by the rules
    of ``afterlearner show --plot`` (:func:`report.loss_axis`): log when useful, far outliers at the edge."""
    losses: list[float] = []
    keep: list[float | None] = list(held_out)
    for store_index, run_index in selected:
        values = [
            loss
            for (loss,) in stores[store_index].connection.execute(
                "SELECT loss FROM evaluations WHERE run_index = ? AND status = 'ok' ORDER BY idx",
                (run_index,),
            )
            if _finite(loss) is not None
        ]
        losses.extend(values)
        if values:
            keep += [values[0], min(values)]  # the best-so-far curve spans these two
    scale, limits = report.loss_axis(losses, keep)
    return {"scale": scale, "limits": list(limits) if limits is not None else None}


# -- the best candidate and the values over the evaluations -----------------------------------------
def parameters(store: Store, run_index: int) -> dict[str, Any]:
    """A run's best candidate by name next to the trained values, and the per-scalar view.

    ``values``: rows ``[label, searched, trained, best]`` (all of them up to :data:`MAX_LISTED`
    scalars, else the :data:`LARGEST_LISTED` largest changes); ``charts``: up to
    :data:`MAX_CHARTED` scalars, every candidate's value and the best-so-far's per evaluation;
    ``summary``: per ℵ-entry, how many scalars moved and how far, for a larger space.
    """
    settings = store.settings() or {}
    evaluations = store.evaluations(run_index)
    run = store.run(run_index) or {}
    size = space_size(settings)
    signature = settings.get("space")
    result: dict[str, Any] = {"scalars": size, "values": [], "listed": "all", "charts": None, "summary": None}
    if not evaluations or size == 0:
        return result
    best = history.best_of_run(run, evaluations)
    labels, units = space_labels(signature, size), space_units(signature, size)
    if isinstance(signature, list):
        trained = history.trained_vector(signature, evaluations[0].vector)
    else:
        trained = evaluations[0].vector.copy()
    best_vector = best.vector if best is not None else trained
    change = best_vector - trained
    rows = [
        [label, unit, float(t), float(b)]
        for label, unit, t, b in zip(labels, units, trained.tolist(), best_vector.tolist(), strict=True)
    ]
    result["best_index"] = best.index if best is not None else None
    result["best_loss"] = best.loss if best is not None else None
    if size <= MAX_LISTED:
        result["values"] = rows
    else:
        order = np.argsort(-np.abs(change), kind="stable")[:LARGEST_LISTED]
        result["values"] = [rows[i] for i in order]
        result["listed"] = "largest"
    if size <= MAX_CHARTED:
        vectors = np.stack([e.vector for e in evaluations])
        incumbent = history.best_vectors_so_far(evaluations, size, [run] if run else [])
        result["charts"] = {
            "idx": [e.idx for e in evaluations],
            "failed": [not e.ok for e in evaluations],
            "values": [_column(vectors[:, j]) for j in range(size)],
            "best": [_column(incumbent[:, j]) for j in range(size)],
            "labels": labels,
            "trained": trained.tolist(),
        }
    else:
        result["summary"] = entry_summary(signature, labels, change)
    return result


def _column(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values.tolist()]


def entry_summary(signature: Any, labels: list[str], change: np.ndarray) -> list[dict[str, Any]]:
    """Per ℵ-entry: its scalars, how many the best candidate moved, the mean and the largest change."""
    entries = signature if isinstance(signature, list) else [{"name": "value", "size": change.size}]
    summary, start = [], 0
    for entry in entries:
        size = int(entry["size"])
        part = np.abs(change[start : start + size])
        top = int(np.argmax(part)) if size else 0
        summary.append(
            {
                "name": entry["name"],
                "scalars": size,
                "moved": int(np.count_nonzero(part)),
                "mean_change": float(part.mean()) if size else 0.0,
                "largest_change": float(part.max()) if size else 0.0,
                "largest_at": labels[start + top] if size else None,
            }
        )
        start += size
    return summary


def open_store(path: Path) -> tuple[Store | None, str | None]:
    """``path`` opened read-only, or None and why not (not there yet, not a store)."""
    from afterlearner.errors import StoreError

    if not path.exists() or path.stat().st_size == 0:
        return None, "not there yet: waiting for a run to create it"
    try:
        store = Store.open(path, readonly=True)
    except (StoreError, sqlite3.Error) as error:
        return None, str(error)
    try:
        store.settings()
    except sqlite3.Error as error:  # created but its tables are not written yet
        store.close()
        return None, f"not ready yet: {error}"
    return store, None
