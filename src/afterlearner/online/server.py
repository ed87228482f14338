"""The feedback web page: a small FastAPI app over one :class:`FeedbackSession`.

Security model (a local tool, possibly reachable by other local users or web pages), shared with
the dashboard (:mod:`afterlearner.dashboard.server`) through :class:`Guard`:

* binds 127.0.0.1 unless told otherwise (:func:`serve`);
* a random access token (``secrets.token_urlsafe``) is required on **every** request, as the
  ``token`` query parameter or an ``Authorization: Bearer`` header, compared in constant time;
  wrong or missing → 401. The printed address carries it; the page sends it as a header;
* a request body is read by :class:`Guard` before the app sees it, at most :data:`MAX_BODY` bytes:
  a larger one is refused (413) as soon as it passes the limit, whether or not it announced its
  length (a chunked body is never read whole into memory);
* deeply nested JSON is a 400, like any other body that is not the expected JSON;
* an answer must name the open proposal: an unknown id → 404, an answered one (a replay, a
  second tab, a double click) → 409, a malformed body → 400/422, a finished session → 409; each
  with a JSON ``{"error": message, "reason": ...}`` and no change of state. The session's lock and
  the store's primary key make two concurrent answers to one proposal count once;
* every response, errors included, is ``no-store``, with a restrictive Content-Security-Policy,
  ``nosniff`` and ``no-referrer`` (the token is in the page's URL).

API: ``GET /`` the page; ``GET /api/state``; ``POST /api/answer`` with
``{"proposal": id, "feedback": {"kind": "best", "choice": i}}`` (or ``none``, ``ranking``, ``pair``;
see :mod:`afterlearner.online.feedback`); ``POST /api/undo`` with ``{"answers": n}`` (takes back
answer ``n``, the last one: refused with 409 if the session has another number of answers, so a
stale tab or a double click never undoes two). Both return the new state.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams

from afterlearner.online.feedback import FeedbackError
from afterlearner.online.render import Rendering
from afterlearner.online.session import (
    FeedbackSession,
    SessionError,
    SessionFinished,
    StaleProposal,
    UnknownProposal,
)
from afterlearner.online.task import FeedbackTask, answer_kind

MAX_BODY = 16 * 1024
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'"
    ),
}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def new_token() -> str:
    """A fresh random access token (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


class BadBody(ValueError):
    """A request body that is not the JSON expected (its message says why, for a 400)."""


def parse_json(body: bytes) -> Any:
    """``body`` as JSON; :class:`BadBody` for invalid UTF-8, invalid JSON or JSON nested too deeply."""
    try:
        return json.loads(body)
    except RecursionError:
        raise BadBody("the JSON body is nested too deeply") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadBody("the body must be JSON") from None


def _error_body(message: str, reason: str) -> bytes:
    return json.dumps({"error": message, "reason": reason}).encode()


class Guard:
    """ASGI wrapper of a page's app: the token, the body limit and the security headers.

    Every HTTP request must carry ``token`` (else 401, nothing read). Its body is read here, chunk
    by chunk, up to ``max_body`` bytes: past that the request is answered 413 at once and the rest
    is never read (so memory stays bounded whatever the client sends, chunked or not); otherwise
    the app receives the body as one message. Every response gets ``headers``.
    """

    def __init__(
        self, app: ASGIApp, token: str, max_body: int = MAX_BODY, headers: dict[str, str] | None = None
    ) -> None:
        if len(token) < 16:
            raise ValueError("the access token must have at least 16 characters")
        self.app, self.token, self.max_body = app, token, max_body
        added = headers if headers is not None else SECURITY_HEADERS
        self._names = {name.lower().encode() for name in added}
        self._headers = [(name.lower().encode(), value.encode()) for name, value in added.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in self._names]
                message = {**message, "headers": kept + self._headers}
            await send(message)

        if not self.authorised(scope):
            message = "missing or wrong access token: use the address printed by the server"
            await self._refuse(send_secured, 401, message, "token")
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and not length.isdigit():
            await self._refuse(send_secured, 400, "invalid Content-Length header", "body")
            return
        if length is not None and int(length) > self.max_body:
            await self._refuse(send_secured, 413, self._too_large(), "body")
            return
        body = await self._read_body(receive)
        if body is None:
            await self._refuse(send_secured, 413, self._too_large(), "body")
            return
        await self.app(scope, _replay(body, receive), send_secured)

    def authorised(self, scope: Scope) -> bool:
        """True when the request carries the token (query parameter or bearer header)."""
        given = QueryParams(scope.get("query_string", b"").decode("latin-1")).get("token", "")
        header = Headers(scope=scope).get("authorization", "")
        if header.lower().startswith("bearer "):
            given = header[7:].strip()
        return secrets.compare_digest(given.encode(), self.token.encode())

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes ``max_body`` (the rest is left unread)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)  # the client went away; the app sees a short body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> str:
        return f"request body too large (limit {self.max_body} bytes)"

    @staticmethod
    async def _refuse(send: Send, status: int, message: str, reason: str) -> None:
        body = _error_body(message, reason)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then waits on the real one (for the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def error(status: int, message: str, reason: str) -> JSONResponse:
    """The JSON error every refusal uses: ``{"error": message, "reason": reason}``."""
    return JSONResponse({"error": message, "reason": reason}, status_code=status)


def _output(rendering: Rendering) -> dict[str, Any]:
    if rendering.kind == "text":
        return {"kind": "text", "text": rendering.as_text()}
    return {"kind": rendering.kind, "url": rendering.data_url()}


def state(session: FeedbackSession, task: FeedbackTask, keep: list[str] | None = None) -> dict[str, Any]:
    """What the page shows: the open proposal, the current best, progress, the task's texts, and
    ``keep``: what to do with the result (shown when the session is finished)."""
    proposal = session.propose()
    progress = session.progress()
    return {
        "task": {
            "name": task.name,
            "prompt": task.prompt,
            "description": task.description,
            "answer": answer_kind(task.answer, session.k),
        },
        "progress": {
            "answers": progress.answers,
            "budget": progress.budget,
            "improvements": progress.improvements,
            "done": progress.done,
        },
        "best": _output(session.best.rendering),
        "keep": keep or [],
        "proposal": None
        if proposal is None
        else {
            "id": proposal.id,
            "candidates": [{"index": c.index, **_output(c.rendering)} for c in proposal.candidates],
        },
    }


def create_app(
    session: FeedbackSession, task: FeedbackTask, token: str, keep: list[str] | None = None
) -> Guard:
    """The ASGI app serving ``session``; every request must carry ``token``.

    ``keep``: lines saying where the answers are kept and how to export the result (the finished
    page shows them).
    """
    app = FastAPI(title="afterlearner feedback", docs_url=None, redoc_url=None, openapi_url=None)
    page = files("afterlearner.online").joinpath("page.html").read_text(encoding="utf-8")
    changing = threading.Lock()  # an answer and an undo are checked and applied one at a time

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/state")
    def get_state() -> JSONResponse:
        return JSONResponse(state(session, task, keep))

    @app.post("/api/answer")
    async def post_answer(request: Request) -> JSONResponse:
        try:
            payload = parse_json(await request.body())
        except BadBody as exc:
            return error(400, f'{exc}: {{"proposal": id, "feedback": {{"kind": ...}}}}', "body")
        if not isinstance(payload, dict) or set(payload) != {"proposal", "feedback"}:
            return error(
                422, "the body must be a JSON object with the keys 'proposal' and 'feedback' only", "body"
            )
        return await run_in_threadpool(apply_answer, payload["proposal"], payload["feedback"])

    def apply_answer(proposal: Any, feedback: Any) -> JSONResponse:
        with changing:
            try:
                if not isinstance(feedback, dict):
                    raise FeedbackError('\'feedback\' must be an object, e.g. {"kind": "none"}')
                session.propose()  # the open proposal exists before it is answered (a fresh session)
                session.answer(proposal, feedback)
            except FeedbackError as exc:
                return error(422, str(exc), "answer")
            except UnknownProposal as exc:
                return error(404, str(exc), "unknown")
            except StaleProposal as exc:
                return error(409, str(exc), "stale")
            except SessionFinished as exc:
                return error(409, str(exc), "finished")
            return JSONResponse(state(session, task, keep))

    @app.post("/api/undo")
    async def post_undo(request: Request) -> JSONResponse:
        try:
            payload = parse_json(await request.body())
        except BadBody as exc:
            return error(400, f'{exc}: {{"answers": n}}', "body")
        count = payload.get("answers") if isinstance(payload, dict) and set(payload) == {"answers"} else None
        if isinstance(count, bool) or not isinstance(count, int):
            message = 'the body must be {"answers": n}, n the number of answers the page shows'
            return error(422, message, "body")
        return await run_in_threadpool(apply_undo, count)

    def apply_undo(count: int) -> JSONResponse:
        with changing:
            answers = session.progress().answers
            if count != answers:
                message = f"the page shows {count} answers but the session has {answers}: nothing undone"
                return error(409, message, "stale")
            try:
                session.undo()
            except SessionError as exc:
                return error(409, str(exc), "nothing")
            return JSONResponse(state(session, task, keep))

    return Guard(app, token)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), so the address is known before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    return sock


def address(sock: socket.socket, token: str) -> str:
    """The page's address on ``sock``, with the token."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def is_loopback(host: str) -> bool:
    """True for the addresses only this machine reaches (no warning needed)."""
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def serve(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on an already bound socket until interrupted (Ctrl-C or SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
