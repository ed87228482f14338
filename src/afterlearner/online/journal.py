"""Persistence of a feedback session: every proposal and every answer, committed as it happens.

The file is an ordinary afterlearner store (:meth:`afterlearner.store.Store.open` checks that it is
one and records the session's settings, refusing a store made with other settings) with three more
tables. Proposals hold the candidate vectors exactly (float64); answers hold the feedback as JSON
and the losses told. A proposal id is answered at most once: the answers table's primary key makes
a second answer for the same proposal fail inside the transaction, whatever the caller does.

The connection may be used from several threads (a web server's workers); callers serialise access
(the session holds a lock around every use).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from afterlearner.errors import StoreError
from afterlearner.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback_proposals (
    id INTEGER PRIMARY KEY, k INTEGER NOT NULL, vectors BLOB NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback_answers (
    proposal_id INTEGER PRIMARY KEY REFERENCES feedback_proposals(id), feedback TEXT NOT NULL,
    losses TEXT NOT NULL, new_best INTEGER, created REAL NOT NULL
);
"""

#: Marks a store's settings as a feedback session's (an offline retrofit store has no such key).
MODE = "feedback"


@dataclass(frozen=True)
class StoredProposal:
    id: int
    vectors: np.ndarray  # (k, dimension)
    answer: dict[str, Any] | None


class DuplicateAnswer(StoreError):
    """The proposal already has an answer in the store."""


class FeedbackJournal:
    """The SQLite tables of one feedback session. Use :meth:`open`."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.connection = connection

    @classmethod
    def open(cls, path: str | Path, settings: dict[str, Any]) -> FeedbackJournal:
        """Open or create the store at ``path`` for a session with ``settings``."""
        path = Path(path)
        settings = {**settings, "mode": MODE, "runs": 1}
        with Store.open(path) as store:
            existing = store.settings()
            if existing is not None and existing.get("mode") != MODE:
                raise StoreError(f"{path} is an offline retrofit store, not a feedback one: use another file")
            store.bind(settings)
            with store.connection:
                store.connection.executescript(SCHEMA)
        connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return cls(path, connection)

    def close(self) -> None:
        self.connection.close()

    def proposals(self) -> list[StoredProposal]:
        """Every stored proposal in order, with its answer (None for the pending one)."""
        rows = self.connection.execute(
            "SELECT p.id, p.k, p.vectors, a.feedback FROM feedback_proposals p "
            "LEFT JOIN feedback_answers a ON a.proposal_id = p.id ORDER BY p.id"
        ).fetchall()
        return [
            StoredProposal(
                row[0],
                np.frombuffer(row[2], dtype="<f8").reshape(row[1], -1).copy(),
                None if row[3] is None else json.loads(row[3]),
            )
            for row in rows
        ]

    def add_proposal(self, proposal_id: int, vectors: np.ndarray) -> None:
        with self.connection:
            self.connection.execute(
                "INSERT INTO feedback_proposals VALUES (?, ?, ?, ?)",
                (
                    proposal_id,
                    len(vectors),
                    np.ascontiguousarray(vectors, dtype="<f8").tobytes(),
                    time.time(),
                ),
            )

    def add_answer(
        self, proposal_id: int, feedback: dict[str, Any], losses: tuple[float, ...], new_best: int | None
    ) -> None:
        """Record an answer; raises :class:`DuplicateAnswer` if the proposal was already answered."""
        try:
            with self.connection:
                self.connection.execute(
                    "INSERT INTO feedback_answers VALUES (?, ?, ?, ?, ?)",
                    (proposal_id, json.dumps(feedback), json.dumps(list(losses)), new_best, time.time()),
                )
        except sqlite3.IntegrityError as error:
            raise DuplicateAnswer(f"proposal {proposal_id} already has an answer") from error

    def answers(self) -> list[dict[str, Any]]:
        """Every answer with its told losses, in order (for reports)."""
        rows = self.connection.execute(
            "SELECT proposal_id, feedback, losses, new_best, created "
            "FROM feedback_answers ORDER BY proposal_id"
        )
        return [
            {
                "proposal": r[0],
                "feedback": json.loads(r[1]),
                "losses": json.loads(r[2]),
                "new_best": r[3],
                "created": r[4],
            }
            for r in rows
        ]
