"""The run journal: one SQLite file with the settings, every run and every evaluation.

A store belongs to one set of settings; opening it with other settings is refused rather than
mixing two experiments.

How it commits (the cheapest scheme that keeps a run killed at any point resuming to the same result):

* WAL mode with ``synchronous=NORMAL``: a commit appends to the write-ahead log without waiting for
  the disk, and another process can read the store while a run writes it (readers see committed
  transactions only, each one whole).
* Evaluations that the run can compute again (``record_batch(deferred=True)``: the retrofit loop's)
  are committed in groups, within :data:`COMMIT_INTERVAL` seconds (by a timer thread when no
  other commit comes first); a slow evaluation is committed at once. A commit costs tens of µs of
  CPU, a near-free loss a few: grouping is what keeps the journal near free. Everything else — run
  status, settings, an evaluation told by an outside evaluator, a person's answer — is committed by
  its own call, together with the evaluations waiting before it, in one transaction.
* What the file holds is therefore always what a per-evaluation commit would have held at some
  earlier moment: a run killed with SIGKILL loses at most the last interval's evaluations, which
  a resumed run (same seed, same candidates) asks and evaluates again, to the same result.
  Readers of the store in this process (``evaluations()``, ``runs()``, ...) see everything.

Process death (SIGKILL, a crash, the OOM killer) loses nothing that was committed: the log is in
the operating system's hands. Power loss or a kernel crash can lose the last commits before the
log reached the disk (``synchronous=NORMAL`` does not wait for it); the file stays consistent (WAL
replays only whole transactions) and the run resumes from what survived.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from afterlearner.errors import StoreError

FORMAT = "afterlearner-store"
VERSION = "1"
SQLITE_MAGIC = b"SQLite format 3\x00"

#: Settings that must match for a store to be resumed; the others are recorded for display only.
IDENTITY_KEYS = ("mode", "space", "optimizer", "seed", "workers", "runs", "budget", "guards")
#: Seconds at most between the commits of evaluations the run can compute again (see above).
COMMIT_INTERVAL = 0.05
#: ``settings["mode"]`` of a feedback session's store (an offline retrofit's has none).
FEEDBACK = "feedback"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS study (
    id INTEGER PRIMARY KEY CHECK (id = 1), settings TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_index INTEGER PRIMARY KEY, seed INTEGER NOT NULL, status TEXT NOT NULL,
    started REAL NOT NULL, finished REAL, initial_loss REAL, best_loss REAL, best_vector BLOB,
    test_initial REAL, test_best REAL, wall_time REAL, held_out TEXT, guards TEXT
);
CREATE TABLE IF NOT EXISTS evaluations (
    run_index INTEGER NOT NULL, idx INTEGER NOT NULL, vector BLOB NOT NULL, loss REAL,
    status TEXT NOT NULL, error TEXT, wall_time REAL NOT NULL, finished REAL NOT NULL, guards TEXT,
    PRIMARY KEY (run_index, idx)
);
CREATE TABLE IF NOT EXISTS answers (
    run_index INTEGER NOT NULL, first_idx INTEGER NOT NULL, answer TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (run_index, first_idx)
);
CREATE TABLE IF NOT EXISTS undone (
    run_index INTEGER NOT NULL, first_idx INTEGER NOT NULL, answer TEXT NOT NULL, losses TEXT NOT NULL,
    answered REAL NOT NULL, undone REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS asked (
    run_index INTEGER NOT NULL, idx INTEGER NOT NULL, vector BLOB NOT NULL, asked REAL NOT NULL,
    PRIMARY KEY (run_index, idx)
);
"""

INSERT_EVALUATION = (
    "INSERT INTO evaluations (run_index, idx, vector, loss, status, error, wall_time, finished, guards)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

#: Columns added to a table after version 1 was first written: (table, column, declaration).
#: A writable open adds the missing ones to an older store (a new one has them in SCHEMA); readers
#: treat a missing one as NULL.
ADDED_COLUMNS = (
    ("runs", "wall_time", "REAL"),
    ("runs", "held_out", "TEXT"),
    ("runs", "guards", "TEXT"),  # the guards' end-of-run check (guards.GuardCheck), JSON
    ("evaluations", "guards", "TEXT"),  # the guard losses measured with the evaluation, JSON
)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One journaled evaluation: the candidate, its loss (None when it failed) and why it failed.

    ``status`` is ``"ok"``, ``"failed"`` (no usable loss) or ``"infeasible"`` (a loss, but a guard
    broke: never the best; ``error`` says which); ``guards`` are the guard losses measured with it.
    """

    run_index: int
    idx: int
    vector: np.ndarray
    loss: float | None
    status: str
    error: str | None
    wall_time: float
    guards: dict[str, float] | None = None

    @property
    def ok(self) -> bool:
        """A usable, feasible loss: a candidate that may be the best."""
        return self.status == "ok"

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def best_evaluation(evaluations: list[Evaluation]) -> Evaluation | None:
    """The best successful evaluation (lowest loss; ties go to the latest, Nevergrad's rule)."""
    best = None
    for evaluation in evaluations:
        if evaluation.ok and (best is None or evaluation.loss <= best.loss):  # type: ignore[operator]
            best = evaluation
    return best


def _json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f8").tobytes()


def _unblob(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype="<f8").copy()


class DuplicateAnswer(StoreError):
    """A batch already has its answer in the store (a second answer to the same proposal)."""


class Store:
    """An open journal. Use :meth:`open`; close it (or use it as a context manager) when done.

    One connection; it may be used from several threads (a web server's), one at a time: callers
    serialise access (the feedback session holds a lock around every use).
    """

    def __init__(self, path: Path, connection: sqlite3.Connection, readonly: bool) -> None:
        self.path = path
        self.connection = connection
        self.readonly = readonly
        self._lock_fd: int | None = None
        self._pending: list[tuple[Any, ...]] = []  # evaluation rows not committed yet (see above)
        self._committed_at = time.monotonic()
        self._writing = threading.RLock()  # a transaction, or the timer's group commit, at a time
        self._timer: threading.Timer | None = None
        self._columns: set[tuple[str, str]] = set()  # added columns seen (a column, once there, stays)

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, readonly: bool = False) -> Store:
        """Open (or, unless ``readonly``, create) a store, refusing files that are not one.

        A store this call created is removed again if it cannot be set up (a full disk leaves no
        half-made file behind).
        """
        path = Path(path)
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a store file")
        exists = path.exists() and path.stat().st_size > 0
        if readonly and not exists:
            raise StoreError(f"{path}: no such store")
        if exists:
            with path.open("rb") as handle:
                if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                    raise StoreError(f"{path} is not an afterlearner store (not an SQLite file)")
            if not readonly and not os.access(path, os.W_OK):
                raise StoreError(
                    f"{path} is read-only here: it can be shown, not written (use another store)"
                )
        created = not path.exists()
        connection = None
        try:
            if readonly:
                connection = _connect_readonly(path)
            else:
                connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
            store = cls(path, connection, readonly)
            store._check(exists)
        except BaseException as error:
            if connection is not None:
                connection.close()
            if created:
                for leftover in (
                    path,
                    path.with_name(path.name + "-wal"),
                    path.with_name(path.name + "-shm"),
                ):
                    leftover.unlink(missing_ok=True)
            if isinstance(error, sqlite3.OperationalError):
                raise StoreError(
                    f"{path} cannot be {'read' if readonly else 'written'}: {_reason(error)}"
                ) from error
            if isinstance(error, sqlite3.DatabaseError):
                raise StoreError(f"{path} is corrupt or not an afterlearner store: {error}") from error
            raise
        return store

    def _check(self, exists: bool) -> None:
        if exists:
            check = self.connection.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"{self.path} is corrupt: {check}")
            tables = {
                row[0] for row in self.connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "meta" not in tables:
                raise StoreError(f"{self.path} is an SQLite file but not an afterlearner store")
            meta = dict(self.connection.execute("SELECT key, value FROM meta"))
            if meta.get("format") != FORMAT:
                raise StoreError(f"{self.path} is an SQLite file but not an afterlearner store")
            if meta.get("version") != VERSION:
                raise StoreError(
                    f"{self.path} has store version {meta.get('version')}, this afterlearner reads {VERSION}"
                )
        if not self.readonly:
            with self.connection:
                self.connection.executescript(SCHEMA)
                self.connection.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
                self.connection.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (VERSION,))
                for table, column, declaration in ADDED_COLUMNS if exists else ():  # new: in SCHEMA
                    columns = {row[1] for row in self.connection.execute(f"PRAGMA table_info({table})")}
                    if column not in columns:
                        self.connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def close(self) -> None:
        """Commit the evaluations still waiting, and close. Those that cannot be written (a full
        disk, which the run has reported already) are dropped: a resumed run computes them again."""
        with self._writing:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            try:
                self.flush()
            except StoreError:
                self._pending = []
            finally:
                self.connection.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the writer's lock
            self._lock_fd = None

    def lock_writer(self) -> None:
        """Take the store for this process: one writer at a time, refused at once otherwise.

        An advisory lock on the file (``flock``) that the kernel drops when the process dies, so a
        killed run never leaves the store locked; the holder's PID and host are recorded to name it.
        """
        if self._lock_fd is not None:
            return
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            row = self.connection.execute("SELECT value FROM meta WHERE key = 'writer'").fetchone()
            holder = json.loads(row[0]) if row else {}
            raise StoreError(
                f"{self.path} is being written by process {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}: a store takes one run at a time; wait for it to finish, "
                "or use another store file"
            ) from None
        self._lock_fd = descriptor
        writer = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('writer', ?)", (json.dumps(writer),))

    def writer_alive(self) -> bool:
        """Whether a live process holds the store's writer lock (this one included).

        A run whose status is still ``"running"`` while no writer is alive was killed: it resumes
        when run again.
        """
        if self._lock_fd is not None:
            return True
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(descriptor)  # closing drops the shared lock, if it was taken
        return False

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a full disk or a read-only file is a :class:`StoreError` saying so."""
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        with self._writing:
            pending, clash = self._pending, False
            try:
                with self.connection:
                    if pending:  # the evaluations waiting go first, in the same transaction
                        try:
                            self.connection.executemany(INSERT_EVALUATION, pending)
                        except sqlite3.IntegrityError:
                            clash = True
                            raise
                    yield self.connection
            except sqlite3.OperationalError as error:
                raise StoreError(
                    f"{self.path} cannot be written: {_reason(error)}; everything committed before is "
                    "kept, and running again resumes from it"
                ) from error
            except sqlite3.IntegrityError:
                if clash:
                    self._pending = []  # rows that clash with journaled ones: none can be committed
                raise
            self._pending = []
            self._committed_at = time.monotonic()

    def flush(self) -> None:
        """Commit the evaluations waiting for their group commit (reads and closing do it too)."""
        with self._writing:
            if self._pending:
                with self._write():
                    pass

    def _flush_later(self) -> None:
        """The timer's group commit: what waits is committed within COMMIT_INTERVAL even when the
        next evaluation takes long. A failure here is left to the run's next commit to report."""
        with self._writing:
            self._timer = None
            try:
                self.flush()
            except (StoreError, sqlite3.Error):
                pass

    # -- settings -------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any] | None:
        row = self.connection.execute("SELECT settings FROM study WHERE id = 1").fetchone()
        return None if row is None else json.loads(row[0])

    def bind(self, settings: dict[str, Any]) -> None:
        """Record ``settings`` in a new store, or check that they match an existing one."""
        settings = json.loads(json.dumps(settings))  # normalise (tuples → lists, keys → str)
        existing = self.settings()
        if existing is None:
            with self._write() as db:
                db.execute(
                    "INSERT INTO study VALUES (1, ?, ?)", (json.dumps(settings, sort_keys=True), time.time())
                )
            return
        if existing.get("mode") != settings.get("mode"):
            kinds = {None: "an offline retrofit", FEEDBACK: "a feedback session"}
            raise StoreError(
                f"{self.path} is {kinds.get(existing.get('mode'), existing.get('mode'))} store, not "
                f"{kinds.get(settings.get('mode'), settings.get('mode'))} store: use another store file"
            )
        differences = [
            f"{key}: store has {_short(existing.get(key))}, this run has {_short(settings.get(key))}"
            for key in IDENTITY_KEYS
            if existing.get(key) != settings.get(key)
        ]
        if differences:
            raise StoreError(
                f"{self.path} was made with other settings and cannot be resumed with these "
                f"({'; '.join(differences)}); use another store file"
            )

    def note(self, key: str, value: Any) -> None:
        """Keep ``value`` (JSON) under ``key`` beside the runs, for a tool to read again (:meth:`noted`)."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"note:{key}", json.dumps(value)))

    def noted(self, key: str) -> Any:
        """What :meth:`note` kept under ``key``, or None."""
        row = self.connection.execute("SELECT value FROM meta WHERE key = ?", (f"note:{key}",)).fetchone()
        return None if row is None else json.loads(row[0])

    # -- runs and evaluations -------------------------------------------------------------------
    def start_run(self, run_index: int, seed: int) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO runs (run_index, seed, status, started) VALUES (?, ?, 'running', ?)",
                (run_index, seed, time.time()),
            )
            db.execute("UPDATE runs SET status = 'running' WHERE run_index = ?", (run_index,))

    def ask(self, run_index: int, idx: int, vector: np.ndarray) -> None:
        """Record a candidate handed out for evaluation elsewhere (ask/tell), until its loss is told."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO asked VALUES (?, ?, ?, ?)",
                (run_index, idx, _blob(vector), time.time()),
            )

    def asked(self, run_index: int) -> dict[int, np.ndarray]:
        """The candidates of a run handed out and not yet told, by index (empty for an old store)."""
        self.flush()  # this process reads what it told
        try:
            rows = self.connection.execute(
                "SELECT idx, vector FROM asked WHERE run_index = ? ORDER BY idx", (run_index,)
            ).fetchall()
        except sqlite3.OperationalError:  # a store written before ask/tell, opened read-only
            return {}
        return {idx: _unblob(blob) for idx, blob in rows}  # type: ignore[misc]

    def record(self, evaluation: Evaluation, told: bool = False, deferred: bool = False) -> None:
        """Commit one evaluation (``told``: and remove it from the asked candidates, atomically)."""
        self.record_batch([evaluation], told, deferred=deferred)

    def record_batch(
        self, evaluations: list[Evaluation], told: bool = False, answer: Any = None, deferred: bool = False
    ) -> None:
        """Commit evaluations together, with ``answer`` (JSON: what a person said of them) if given.

        All or nothing. An evaluation or an answer journaled already raises :class:`DuplicateAnswer`
        and commits nothing. ``deferred``: the caller can compute these evaluations again (the
        retrofit loop's own), so they may wait for a group commit, at most :data:`COMMIT_INTERVAL`
        seconds (a duplicate is then reported by the commit that meets it); ignored with ``told``
        or an ``answer``, which are committed at once.
        """
        now = time.time()
        rows = [
            (
                e.run_index,
                e.idx,
                _blob(e.vector),
                e.loss,
                e.status,
                e.error,
                e.wall_time,
                now,
                None if e.guards is None else json.dumps(e.guards),
            )
            for e in evaluations
        ]
        if deferred and not told and answer is None and not self.readonly:
            with self._writing:
                self._pending.extend(rows)  # committed within COMMIT_INTERVAL, by a timer if need be
                if time.monotonic() - self._committed_at < COMMIT_INTERVAL:
                    if self._timer is None:
                        self._timer = threading.Timer(COMMIT_INTERVAL, self._flush_later)
                        self._timer.daemon = True
                        self._timer.start()
                    return
            rows = []
        try:
            with self._write() as db:
                if answer is not None:
                    first = evaluations[0]
                    db.execute(
                        "INSERT INTO answers VALUES (?, ?, ?, ?)",
                        (first.run_index, first.idx, json.dumps(answer), now),
                    )
                if told:
                    keys = [(e.run_index, e.idx) for e in evaluations]
                    db.executemany("DELETE FROM asked WHERE run_index = ? AND idx = ?", keys)
                if rows:
                    db.executemany(INSERT_EVALUATION, rows)
        except sqlite3.IntegrityError as error:
            first = evaluations[0]
            raise DuplicateAnswer(
                f"evaluation {first.idx} of run {first.run_index} is journaled already ({error})"
            ) from error

    def undo_answer(self, run_index: int, first_idx: int) -> None:
        """Take back the answer of the batch starting at ``first_idx`` and everything told after it.

        One transaction: the answer and the losses it told move to the ``undone`` table (kept, so
        the undo is journaled), its evaluations and any candidates asked after them are removed.
        """
        with self._write() as db:
            row = db.execute(
                "SELECT answer, created FROM answers WHERE run_index = ? AND first_idx = ?",
                (run_index, first_idx),
            ).fetchone()
            if row is None:
                raise StoreError(f"{self.path}: no answer for the batch at evaluation {first_idx} to undo")
            losses = [
                loss
                for (loss,) in db.execute(
                    "SELECT loss FROM evaluations WHERE run_index = ? AND idx >= ? ORDER BY idx",
                    (run_index, first_idx),
                )
            ]
            db.execute(
                "INSERT INTO undone VALUES (?, ?, ?, ?, ?, ?)",
                (run_index, first_idx, row[0], json.dumps(losses), row[1], time.time()),
            )
            db.execute("DELETE FROM answers WHERE run_index = ? AND first_idx >= ?", (run_index, first_idx))
            db.execute("DELETE FROM evaluations WHERE run_index = ? AND idx >= ?", (run_index, first_idx))
            db.execute("DELETE FROM asked WHERE run_index = ?", (run_index,))

    def undone(self, run_index: int = 0) -> list[dict[str, Any]]:
        """Every answer taken back, in order: its batch, the answer, the losses it had told, when."""
        self.flush()  # this process reads what it told
        try:
            rows = self.connection.execute(
                "SELECT first_idx, answer, losses, answered, undone FROM undone WHERE run_index = ? "
                "ORDER BY undone",
                (run_index,),
            ).fetchall()
        except sqlite3.OperationalError:  # a store written before undo, opened read-only
            return []
        return [
            {
                "first_idx": r[0],
                "answer": json.loads(r[1]),
                "losses": json.loads(r[2]),
                "answered": r[3],
                "undone": r[4],
            }
            for r in rows
        ]

    def answers(self, run_index: int = 0) -> list[tuple[int, Any]]:
        """(first evaluation index, answer) of every answered batch of a run, in order."""
        self.flush()  # this process reads what it told
        try:
            rows = self.connection.execute(
                "SELECT first_idx, answer FROM answers WHERE run_index = ? ORDER BY first_idx", (run_index,)
            ).fetchall()
        except sqlite3.OperationalError:  # a store written before answers, opened read-only
            return []
        return [(first, json.loads(answer)) for first, answer in rows]

    def finish_run(self, run_index: int, status: str, **fields: Any) -> None:
        allowed = {
            "initial_loss",
            "best_loss",
            "best_vector",
            "test_initial",
            "test_best",
            "wall_time",
            "held_out",
            "guards",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        if "best_vector" in fields and fields["best_vector"] is not None:
            fields["best_vector"] = _blob(fields["best_vector"])
        for key in ("held_out", "guards"):
            if fields.get(key) is not None:
                fields[key] = json.dumps(fields[key])
        assignments = "".join(f", {key} = ?" for key in fields)
        with self._write() as db:
            db.execute(
                f"UPDATE runs SET status = ?, finished = ?{assignments} WHERE run_index = ?",
                (status, time.time(), *fields.values(), run_index),
            )

    def evaluations(self, run_index: int | None = None) -> list[Evaluation]:
        self.flush()  # this process reads what it told
        guards = "guards" if self._has_column("evaluations", "guards") else "NULL"  # an old store, read-only
        query = f"SELECT run_index, idx, vector, loss, status, error, wall_time, {guards} FROM evaluations"
        rows = (
            self.connection.execute(query + " ORDER BY run_index, idx")
            if run_index is None
            else self.connection.execute(query + " WHERE run_index = ? ORDER BY idx", (run_index,))
        )
        return [
            Evaluation(r[0], r[1], _unblob(r[2]), r[3], r[4], r[5], r[6], _json_or_none(r[7]))  # type: ignore[arg-type]
            for r in rows
        ]

    def _has_column(self, table: str, column: str) -> bool:
        """Whether an added column is there: asked once it is (a read-only old store may lack it, and
        a writer opening the file later may add it)."""
        if (table, column) not in self._columns and any(
            row[1] == column for row in self.connection.execute(f"PRAGMA table_info({table})")
        ):
            self._columns.add((table, column))
        return (table, column) in self._columns

    def runs(self) -> list[dict[str, Any]]:
        self.flush()  # this process reads what it told
        cursor = self.connection.execute(
            "SELECT runs.*, (SELECT COUNT(*) FROM evaluations WHERE evaluations.run_index = runs.run_index)"
            " AS evaluations FROM runs ORDER BY run_index"
        )
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor]
        for row in rows:
            row["best_vector"] = _unblob(row["best_vector"])
            row.setdefault("wall_time", None)  # a store written before the column, opened read-only
            row["held_out"] = json.loads(row["held_out"]) if row.get("held_out") else None
            row["guards"] = json.loads(row["guards"]) if row.get("guards") else None
        return rows

    def complete(self, budget: int, runs: int) -> bool:
        """True when the store holds ``runs`` finished runs of ``budget`` evaluations each."""
        rows = self.runs()
        return len(rows) == runs and all(
            row["status"] == "finished" and row["evaluations"] >= budget for row in rows
        )

    def run(self, run_index: int) -> dict[str, Any] | None:
        return next((row for row in self.runs() if row["run_index"] == run_index), None)


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection; on read-only media, where SQLite cannot make its WAL index, an
    immutable one (nobody can write the file there, so nothing changes under the reader)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False)
    try:
        connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return connection
    except sqlite3.OperationalError:
        connection.close()
        if os.access(path.parent, os.W_OK):
            raise
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, timeout=30, check_same_thread=False)


def _reason(error: sqlite3.OperationalError) -> str:
    """SQLite's reason in a user's words where we know them."""
    text = str(error)
    if "full" in text:
        return f"the disk is full ({text})"
    if "readonly" in text or "read-only" in text:
        return f"the file or its folder is read-only ({text})"
    return text


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
