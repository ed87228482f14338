"""Feedback sessions survive restarts: everything is stored as it happens and replayed exactly."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import nevergrad as ng
import numpy as np
import pytest

from afterlearner.errors import StoreError
from afterlearner.online import Best, FeedbackSession, NoneBetter, Pair, Ranking, text
from afterlearner.retrofit import retrofit
from afterlearner.space import Aleph
from afterlearner.store import Store

ANSWERS = [
    Best(1),
    NoneBetter(),
    Ranking((2, "current", 0, 1)),
    Pair("current", 0),
    Best(0),
    NoneBetter(),
    Best(2),
    Pair(1, "current"),
]


def render(vector: np.ndarray) -> object:
    return text(",".join(f"{x:.4f}" for x in vector))


def session(store: Path | None, **options: object) -> FeedbackSession:
    settings = {"k": 3, "budget": 8, "seed": 3, "optimizer": "TwoPointsDE", **options}
    return FeedbackSession(ng.p.Array(init=np.zeros(4)), render, store=store, **settings)


def vectors(proposal: object) -> np.ndarray:
    return np.stack([c.vector for c in proposal.candidates])  # type: ignore[attr-defined]


def test_every_proposal_and_answer_is_committed_as_it_happens(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    s = session(path)
    p = s.propose()
    with Store.open(path, readonly=True) as reader:  # the proposal: its k candidates, asked
        asked = reader.asked(0)
        assert sorted(asked) == [1, 2, 3]
        assert np.array_equal(np.stack([asked[i] for i in (1, 2, 3)]), vectors(p))
        assert [(e.idx, e.loss) for e in reader.evaluations()] == [(0, 0.0)]  # the start, told 0
    s.answer(p.id, Best(2))
    with Store.open(path, readonly=True) as reader:  # the answer: the losses it implies, and itself
        assert reader.asked(0) == {}
        assert [(e.idx, e.loss) for e in reader.evaluations()] == [(0, 0.0), (1, 0.5), (2, 0.5), (3, -1.0)]
        assert reader.answers(0) == [(1, {"kind": "best", "choice": 2})]
        assert reader.settings()["mode"] == "feedback" and reader.settings()["answers"] == 8
    s.close()


@pytest.mark.parametrize("stop_after", [0, 1, 3, 5])
def test_restart_resumes_exactly_where_it_was(tmp_path: Path, stop_after: int) -> None:
    reference = session(None)
    expected = []
    for answer in ANSWERS:
        p = reference.propose()
        expected.append((p.id, vectors(p)))
        reference.answer(p.id, answer)

    path = tmp_path / "s.sqlite"
    first = session(path)
    for answer in ANSWERS[:stop_after]:
        first.answer(first.propose().id, answer)
    pending = first.propose()  # shown to the person, not answered yet
    first.close()

    second = session(path)
    assert second.progress().answers == stop_after
    again = second.propose()
    assert again.id == pending.id and np.array_equal(vectors(again), vectors(pending))
    for answer in ANSWERS[stop_after:]:
        p = second.propose()
        assert p.id == expected[p.id - 1][0] and np.array_equal(vectors(p), expected[p.id - 1][1])
        second.answer(p.id, answer)
    assert np.array_equal(second.best.vector, reference.best.vector)
    assert second.propose() is None
    with Store.open(path, readonly=True) as reader:  # nothing asked twice
        assert [e.idx for e in reader.evaluations()] == list(range(1 + 3 * len(ANSWERS)))
        assert len(reader.answers(0)) == len(ANSWERS) and reader.asked(0) == {}
    second.close()


@pytest.mark.slow
def test_a_killed_process_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_persistence import session, ANSWERS
        from pathlib import Path
        s = session(Path({str(path)!r}))
        for answer in ANSWERS[:3]:
            s.answer(s.propose().id, answer)
        s.propose()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stderr
    resumed = session(path)
    assert resumed.progress().answers == 3 and resumed.propose().id == 4
    reference = session(None)
    for answer in ANSWERS[:3]:
        reference.answer(reference.propose().id, answer)
    assert np.array_equal(vectors(resumed.propose()), vectors(reference.propose()))
    assert np.array_equal(resumed.best.vector, reference.best.vector)
    resumed.close()


@pytest.mark.parametrize("change", [{"k": 4}, {"budget": 9}, {"seed": 4}, {"optimizer": "OnePlusOne"}])
def test_a_store_of_other_settings_is_refused(tmp_path: Path, change: dict) -> None:
    path = tmp_path / "s.sqlite"
    session(path).close()
    with pytest.raises(StoreError, match="other settings"):
        session(path, **change)


def test_other_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all")
    with pytest.raises(StoreError, match="not an afterlearner store"):
        session(junk)
    offline = tmp_path / "offline.sqlite"
    model = __import__("torch").nn.Linear(2, 1)
    retrofit(Aleph(model).add("bias"), lambda: 1.0, budget=2, store=offline)
    with pytest.raises(StoreError, match="offline retrofit store"):
        session(offline)


def test_a_store_that_does_not_replay_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    s = session(path)
    s.answer(s.propose().id, Best(0))
    s.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE evaluations SET vector = ? WHERE idx = 1", (np.ones(4).tobytes(),))
    with pytest.raises(StoreError, match="the journal diverges from the optimizer at evaluation 1"):
        session(path)


@pytest.mark.parametrize("optimizer", ["DiagonalCMA", "OnePlusOne", "PSO", "RandomSearch"])
def test_every_kind_of_comparison_based_optimizer_replays_exactly(tmp_path: Path, optimizer: str) -> None:
    path = tmp_path / "s.sqlite"
    first = session(path, optimizer=optimizer)
    for answer in ANSWERS[:4]:
        first.answer(first.propose().id, answer)
    pending = vectors(first.propose())
    first.close()
    reference = session(None, optimizer=optimizer)
    for answer in ANSWERS[:4]:
        reference.answer(reference.propose().id, answer)
    resumed = session(path, optimizer=optimizer)
    assert np.array_equal(vectors(resumed.propose()), pending)
    assert np.array_equal(pending, vectors(reference.propose()))
    for answer in ANSWERS[4:]:
        p, q = resumed.propose(), reference.propose()
        assert np.array_equal(vectors(p), vectors(q))
        resumed.answer(p.id, answer)
        reference.answer(q.id, answer)
    assert np.array_equal(resumed.best.vector, reference.best.vector)
    resumed.close()


@pytest.mark.parametrize("stored", [True, False])
def test_undo_takes_back_the_last_answer_as_if_never_given(tmp_path: Path, stored: bool) -> None:
    path = tmp_path / "s.sqlite" if stored else None
    reference = session(None)  # never saw the mistaken answer
    for answer in ANSWERS[:3]:
        reference.answer(reference.propose().id, answer)
    s = session(path)
    for answer in ANSWERS[:2]:
        s.answer(s.propose().id, answer)
    mistaken = s.propose()
    s.answer(mistaken.id, Best(0))  # a mistaken click
    assert s.undo() == mistaken.id
    reopened = s.propose()
    assert reopened.id == mistaken.id and np.array_equal(vectors(reopened), vectors(mistaken))
    assert s.progress().answers == 2
    s.answer(reopened.id, ANSWERS[2])
    assert np.array_equal(vectors(s.propose()), vectors(reference.propose()))
    assert np.array_equal(s.best.vector, reference.best.vector)
    if stored:
        s.close()
        restarted = session(path)  # the undo is replayed: nothing of the mistaken answer remains
        assert restarted.progress().answers == 3
        assert np.array_equal(vectors(restarted.propose()), vectors(reference.propose()))
        assert [h[1] for h in restarted.history()] == [h[1] for h in reference.history()]
        with Store.open(path, readonly=True) as reader:
            undone = reader.undone(0)
        assert len(undone) == 1 and undone[0]["answer"] == {"kind": "best", "choice": 0}
        assert undone[0]["first_idx"] == 7 and len(undone[0]["losses"]) == 3
        restarted.close()


def test_undo_with_nothing_to_undo_is_refused() -> None:
    from afterlearner.online import SessionError

    with pytest.raises(SessionError, match="no answer to undo"):
        session(None).undo()


def test_show_reads_a_feedback_store_of_a_plain_parameter(tmp_path: Path, capsys) -> None:
    from afterlearner.cli import main

    path = tmp_path / "s.sqlite"
    s = session(path)
    for answer in ANSWERS[:3]:
        s.answer(s.propose().id, answer)
    s.close()
    assert main(["show", str(path)]) == 0
    assert main(["show", str(path), "--values"]) == 0
    assert main(["show", str(path), "--csv", str(tmp_path / "e.csv")]) == 0
    import csv

    header = next(csv.reader((tmp_path / "e.csv").open()))
    assert header[7:] == ["value[0]", "value[1]", "value[2]", "value[3]"]  # one column per scalar
    assert "Traceback" not in capsys.readouterr().err
