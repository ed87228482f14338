"""The feedback web server: token on every request, every rejection case, no double counting."""

from __future__ import annotations

import threading
from pathlib import Path

import nevergrad as ng
import numpy as np
import pytest
from fastapi.testclient import TestClient

from afterlearner.online import FeedbackSession, text
from afterlearner.online.render import sound
from afterlearner.online.server import MAX_BODY, create_app, new_token
from afterlearner.online.task import FeedbackTask
from afterlearner.store import Store


def render(vector: np.ndarray) -> object:
    return text(" ".join(f"{x:.2f}" for x in vector))


@pytest.fixture
def served(tmp_path: Path) -> tuple[TestClient, FeedbackSession, dict[str, str]]:
    task = FeedbackTask(ng.p.Array(init=np.zeros(2)), render, k=3, budget=4, prompt="Pick one")
    session = task.session(store=tmp_path / "s.sqlite")
    token = new_token()
    client = TestClient(create_app(session, task, token))
    yield client, session, {"Authorization": f"Bearer {token}"}
    session.close()


def answers_in_store(session: FeedbackSession) -> int:
    journal = session._engine.journal
    assert journal is not None
    with Store.open(journal.path, readonly=True) as reader:
        return len(reader.answers(0))


def test_state_and_a_vote(served: tuple) -> None:
    client, session, auth = served
    state = client.get("/api/state", headers=auth).json()
    assert state["task"]["prompt"] == "Pick one"
    assert state["progress"] == {"answers": 0, "budget": 4, "improvements": 0, "done": False}
    assert state["best"] == {"kind": "text", "text": "0.00 0.00"}
    assert [c["index"] for c in state["proposal"]["candidates"]] == [0, 1, 2]
    vote = {"proposal": 1, "feedback": {"kind": "best", "choice": 2}}
    response = client.post("/api/answer", headers=auth, json=vote)
    assert response.status_code == 200
    after = response.json()
    assert after["progress"]["answers"] == 1 and after["proposal"]["id"] == 2
    assert after["best"]["text"] == state["proposal"]["candidates"][2]["text"]
    assert answers_in_store(session) == 1


@pytest.mark.parametrize("path", ["/", "/api/state", "/favicon.ico", "/docs"])
@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"params": {"token": "wrong-token-wrong-token"}},
        {"headers": {"Authorization": "Bearer wrong-token-wrong"}},
        {"headers": {"Authorization": "Basic abc"}},
    ],
)
def test_every_request_needs_the_token(served: tuple, path: str, credentials: dict) -> None:
    client, _, _ = served
    response = client.get(path, **credentials)
    assert response.status_code == 401
    assert "access token" in response.json()["error"]


def test_token_in_the_address_opens_the_page(served: tuple) -> None:
    client, _, auth = served
    token = auth["Authorization"].split()[1]
    page = client.get("/", params={"token": token})
    assert page.status_code == 200 and "None of these is better" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    assert client.get("/api/state", params={"token": token}).status_code == 200
    vote = {"proposal": 1, "feedback": {"kind": "none"}}
    assert client.post("/api/answer", params={"token": token}, json=vote).status_code == 200


def test_vote_without_token_changes_nothing(served: tuple) -> None:
    client, session, auth = served
    client.get("/api/state", headers=auth)
    response = client.post("/api/answer", json={"proposal": 1, "feedback": {"kind": "none"}})
    assert response.status_code == 401 and session.progress().answers == 0 and answers_in_store(session) == 0


REJECTIONS = [
    # (body or raw bytes, status, message part)
    (b"{not json", 400, "must be JSON"),
    (b"\xff\xfe", 400, "must be JSON"),
    ([1, 2], 422, "keys 'proposal' and 'feedback'"),
    ({"proposal": 1}, 422, "keys 'proposal' and 'feedback'"),
    ({"proposal": 1, "feedback": {"kind": "none"}, "extra": 1}, 422, "keys 'proposal' and 'feedback'"),
    ({"proposal": 1, "feedback": "none"}, 422, "must be an object"),
    ({"proposal": 1, "feedback": {"kind": "best", "choice": 3}}, 422, "not a candidate"),
    ({"proposal": 1, "feedback": {"kind": "best", "choice": "0"}}, 422, "candidate index"),
    ({"proposal": 1, "feedback": {"kind": "best"}}, 422, "exactly the fields"),
    ({"proposal": 1, "feedback": {"kind": "vote", "choice": 0}}, 422, "kind must be one of"),
    ({"proposal": 1, "feedback": {"kind": "ranking", "order": [0, 1, 2]}}, 422, "exactly once"),
    ({"proposal": 1, "feedback": {"kind": "pair", "winner": 0, "loser": 0}}, 422, "must differ"),
    ({"proposal": "1", "feedback": {"kind": "none"}}, 422, "integer id"),
    ({"proposal": None, "feedback": {"kind": "none"}}, 422, "integer id"),
    ({"proposal": 99, "feedback": {"kind": "none"}}, 404, "no proposal 99"),
    ({"proposal": -1, "feedback": {"kind": "none"}}, 404, "no proposal -1"),
]


@pytest.mark.parametrize(("body", "status", "message"), REJECTIONS)
def test_rejections_are_clear_and_change_nothing(
    served: tuple, body: object, status: int, message: str
) -> None:
    client, session, auth = served
    before = client.get("/api/state", headers=auth).json()
    if isinstance(body, bytes):
        headers = {**auth, "Content-Type": "application/json"}
        response = client.post("/api/answer", headers=headers, content=body)
    else:
        response = client.post("/api/answer", headers=auth, json=body)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert client.get("/api/state", headers=auth).json() == before
    assert answers_in_store(session) == 0


def test_stale_votes_and_replays_are_refused(served: tuple) -> None:
    client, session, auth = served
    client.get("/api/state", headers=auth)
    vote = {"proposal": 1, "feedback": {"kind": "best", "choice": 0}}
    assert client.post("/api/answer", headers=auth, json=vote).status_code == 200
    before = client.get("/api/state", headers=auth).json()
    for replay in (vote, {"proposal": 1, "feedback": {"kind": "none"}}):
        response = client.post("/api/answer", headers=auth, json=replay)
        assert response.status_code == 409
        assert response.json()["error"] == "proposal 1 was already answered; the open proposal is 2"
    assert client.get("/api/state", headers=auth).json() == before and answers_in_store(session) == 1


def test_finished_session(served: tuple) -> None:
    client, session, auth = served
    for proposal in range(1, 5):
        client.get("/api/state", headers=auth)
        assert (
            client.post(
                "/api/answer", headers=auth, json={"proposal": proposal, "feedback": {"kind": "none"}}
            ).status_code
            == 200
        )
    state = client.get("/api/state", headers=auth).json()
    assert state["progress"]["done"] and state["proposal"] is None
    response = client.post("/api/answer", headers=auth, json={"proposal": 5, "feedback": {"kind": "none"}})
    assert response.status_code == 409 and "finished" in response.json()["error"]
    assert answers_in_store(session) == 4


def test_oversized_bodies_are_refused(served: tuple) -> None:
    client, session, auth = served
    body = b'{"proposal": 1, "feedback": {"kind": "none", "pad": "' + b"x" * MAX_BODY + b'"}}'
    response = client.post("/api/answer", headers={**auth, "Content-Type": "application/json"}, content=body)
    assert response.status_code == 413 and session.progress().answers == 0


def test_two_tabs_voting_at_once_count_once(served: tuple) -> None:
    client, session, auth = served
    for proposal in (1, 2, 3):
        client.get("/api/state", headers=auth)
        statuses: list[int] = []
        barrier = threading.Barrier(6)

        def vote(
            choice: int,
            proposal: int = proposal,
            barrier: threading.Barrier = barrier,
            statuses: list[int] = statuses,
        ) -> None:
            barrier.wait()
            body = {"proposal": proposal, "feedback": {"kind": "best", "choice": choice}}
            statuses.append(client.post("/api/answer", headers=auth, json=body).status_code)

        threads = [threading.Thread(target=vote, args=(i % 3,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200, 409, 409, 409, 409, 409]
    assert session.progress().answers == 3 and answers_in_store(session) == 3


def test_sound_candidates_are_served_as_wav(tmp_path: Path) -> None:
    def tone(vector: np.ndarray) -> object:
        t = np.arange(800) / 8000
        return sound(0.5 * np.sin(2 * np.pi * (440 + 100 * vector[0]) * t), rate=8000)

    task = FeedbackTask(ng.p.Array(init=np.zeros(1)), tone, k=2, budget=2)
    session = FeedbackSession(task.space, task.render, k=2, budget=2)
    token = new_token()
    client = TestClient(create_app(session, task, token))
    state = client.get("/api/state", params={"token": token}).json()
    assert state["best"]["kind"] == "sound" and state["best"]["url"].startswith("data:audio/wav;base64,")
    assert all(c["kind"] == "sound" for c in state["proposal"]["candidates"])


def test_short_tokens_are_refused() -> None:
    task = FeedbackTask(ng.p.Array(init=np.zeros(1)), render)
    with pytest.raises(ValueError, match="at least 16"):
        create_app(FeedbackSession(task.space, task.render), task, "short")
    assert len(new_token()) >= 32 and new_token() != new_token()


@pytest.mark.slow
def test_the_demo_command_serves_on_loopback_with_a_token(tmp_path: Path) -> None:
    import httpx
    from online_process import Server

    server = Server("demo", "--no-browser", "--store", str(tmp_path / "demo.sqlite"), "--budget", "3")
    try:
        assert "feedback session on digit generator: 0/3 answers so far" in "".join(server.output)
        base, token = server.url.split("/?token=")
        assert base.startswith("http://127.0.0.1:")
        assert httpx.get(f"{base}/api/state").status_code == 401
        state = httpx.get(f"{base}/api/state", headers={"Authorization": f"Bearer {token}"}).json()
        assert len(state["proposal"]["candidates"]) == 4 and state["best"]["kind"] == "image"
        page = httpx.get(server.url)
        assert page.status_code == 200 and "<title>afterlearner feedback</title>" in page.text
    finally:
        server.stop()
    assert server.process.returncode == 0  # SIGTERM: a clean shutdown that closes the store


# -- undo, answer kinds, what the finished page says ------------------------------------------------
def test_undo_takes_back_the_last_answer_once(served: tuple) -> None:
    client, session, auth = served
    first = client.get("/api/state", headers=auth).json()
    client.post("/api/answer", headers=auth, json={"proposal": 1, "feedback": {"kind": "best", "choice": 1}})
    client.post("/api/answer", headers=auth, json={"proposal": 2, "feedback": {"kind": "none"}})
    undone = client.post("/api/undo", headers=auth, json={"answers": 2})
    assert undone.status_code == 200
    state = undone.json()
    assert state["progress"]["answers"] == 1 and state["proposal"]["id"] == 2
    assert state["best"]["text"] == first["proposal"]["candidates"][1]["text"]
    # a second click, or a stale tab that still shows 2 answers, undoes nothing more
    again = client.post("/api/undo", headers=auth, json={"answers": 2})
    assert again.status_code == 409 and again.json()["reason"] == "stale"
    assert session.progress().answers == 1 and answers_in_store(session) == 1
    assert client.post("/api/undo", headers=auth, json={"answers": 1}).status_code == 200
    nothing = client.post("/api/undo", headers=auth, json={"answers": 0})
    assert nothing.status_code == 409 and nothing.json()["reason"] == "nothing"
    assert client.get("/api/state", headers=auth).json()["best"] == first["best"]


@pytest.mark.parametrize(
    "body", [b"", b"[", b'{"answers": "2"}', b'{"answers": true}', b'{"answers": 1, "x": 1}', b"[1]"]
)
def test_malformed_undo_is_refused(served: tuple, body: bytes) -> None:
    client, session, auth = served
    client.post("/api/answer", headers=auth, json={"proposal": 1, "feedback": {"kind": "none"}})
    response = client.post("/api/undo", headers={**auth, "Content-Type": "application/json"}, content=body)
    assert response.status_code in (400, 422) and response.json()["reason"] == "body"
    assert session.progress().answers == 1


def test_stale_answers_say_why_in_a_reason(served: tuple) -> None:
    client, _, auth = served
    client.post("/api/answer", headers=auth, json={"proposal": 1, "feedback": {"kind": "none"}})
    stale = client.post("/api/answer", headers=auth, json={"proposal": 1, "feedback": {"kind": "none"}})
    assert stale.status_code == 409 and stale.json()["reason"] == "stale"
    unknown = client.post("/api/answer", headers=auth, json={"proposal": 9, "feedback": {"kind": "none"}})
    assert unknown.status_code == 404 and unknown.json()["reason"] == "unknown"


@pytest.mark.parametrize(
    ("asked", "k", "shown"),
    [("best", 3, "best"), ("pair", 3, "pair"), ("ranking", 6, "ranking"), ("ranking", 7, "best")],
)
def test_the_page_asks_as_the_task_says(tmp_path: Path, asked: str, k: int, shown: str) -> None:
    task = FeedbackTask(ng.p.Array(init=np.zeros(2)), render, k=k, budget=2, answer=asked)
    session = task.session()
    token = new_token()
    client = TestClient(create_app(session, task, token, keep=[{"say": "kept"}]))
    state = client.get("/api/state", params={"token": token}).json()
    assert state["task"]["answer"] == shown and state["keep"] == [{"say": "kept"}]
    order = ["current", *range(k)][::-1]
    vote = {"proposal": 1, "feedback": {"kind": "ranking", "order": order}}
    assert (
        client.post("/api/answer", params={"token": token}, json=vote).status_code == 200
    )  # API takes any kind
    session.close()


def test_a_task_refuses_an_unknown_answer_kind() -> None:
    from afterlearner.errors import ConfigError

    with pytest.raises(ConfigError, match="answer must be one of best, ranking, pair"):
        FeedbackTask(ng.p.Array(init=np.zeros(1)), render, answer="slider")


def test_the_stop_summary_and_the_finished_lines(tmp_path: Path) -> None:
    from afterlearner.cli.feedback import keep_lines, summary

    task = FeedbackTask(ng.p.Array(init=np.zeros(2)), render, k=2, budget=3)
    session = task.session(store=tmp_path / "my clicks.sqlite")
    assert "the starting point" in summary(session, "s.sqlite")
    chosen = session.propose().candidates[1].vector
    session.answer(1, {"kind": "best", "choice": 1})
    session.answer(session.propose().id, {"kind": "none"})
    text_ = summary(session, str(tmp_path / "my clicks.sqlite"))
    assert "stopped: 2/3 answers given (1 answers left), 1 improvement\n" in text_
    assert "best candidate: chosen at question 1" in text_
    assert f"value[0]={chosen[0]:.4g}, value[1]={chosen[1]:.4g}" in text_
    assert f"afterlearner dashboard '{tmp_path}/my clicks.sqlite'" in text_
    lines = keep_lines("s.sqlite")
    assert [line.get("command") for line in lines] == [
        None,
        "afterlearner dashboard s.sqlite",
        "afterlearner show s.sqlite --values",  # values by name, a plain parameter's too
    ]
    session.close()


# -- robustness: nested JSON, bodies without a length ---------------------------------------------
@pytest.mark.parametrize("path", ["/api/answer", "/api/undo"])
def test_deeply_nested_json_is_a_400_with_the_usual_headers(served: tuple, path: str) -> None:
    client, session, auth = served
    body = b"[" * 8000 + b"]" * 8000
    assert len(body) <= MAX_BODY
    response = client.post(path, headers={**auth, "Content-Type": "application/json"}, content=body)
    assert response.status_code == 400 and "nested too deeply" in response.json()["error"]
    assert (
        response.headers["cache-control"] == "no-store"
        and "default-src 'none'" in response.headers["content-security-policy"]
    )
    assert session.progress().answers == 0


def test_a_chunked_body_is_refused_past_the_limit_without_reading_it_all(served: tuple) -> None:
    client, session, auth = served
    sent = []

    def chunks() -> object:
        for _ in range(1000):  # 64 MB if it were all read
            sent.append(1)
            yield b"x" * 65536

    response = client.post(
        "/api/answer", headers={**auth, "Content-Type": "application/json"}, content=chunks()
    )
    assert response.status_code == 413 and "too large" in response.json()["error"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert session.progress().answers == 0


def test_an_invalid_length_is_refused(served: tuple) -> None:
    client, _, auth = served
    response = client.post("/api/answer", headers={**auth, "Content-Length": "12x"}, content=b"{}")
    assert response.status_code == 400


def test_the_finished_lines_give_the_export_command_for_a_models_space() -> None:
    from afterlearner.cli.feedback import keep_lines

    lines = keep_lines("s.sqlite", "tasks/clicks.py:factory")
    assert (
        lines[-1]["command"]
        == "afterlearner export s.sqlite --task tasks/clicks.py:factory --out best.safetensors"
    )
