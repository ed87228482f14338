"""The feedback web page: a small FastAPI app over one :class:`FeedbackSession`.

Security model (a local tool, possibly reachable by other local users or web pages):

* binds 127.0.0.1 unless told otherwise (:func:`serve`);
* a random access token (``secrets.token_urlsafe``) is required on **every** request, as the
  ``token`` query parameter or an ``Authorization: Bearer`` header, compared in constant time;
  wrong or missing → 401. The printed address carries it; the page sends it as a header;
* an answer must name the open proposal: an unknown id → 404, an answered one (a replay, a
  second tab, a double click) → 409, a malformed body → 400/422, a finished session → 409; each
  with a JSON ``{"error": message}`` and no change of state. The session's lock and the store's
  primary key make two concurrent answers to one proposal count once;
* bodies over 16 kB are refused (413); responses are ``no-store``, with a restrictive
  Content-Security-Policy, ``nosniff`` and ``no-referrer`` (the token is in the page's URL).

API: ``GET /`` the page; ``GET /api/state``; ``POST /api/answer`` with
``{"proposal": id, "feedback": {"kind": "best", "choice": i}}`` (or ``none``, ``ranking``, ``pair``;
see :mod:`afterlearner.online.feedback`); it returns the new state.
"""

from __future__ import annotations

import json
import secrets
import socket
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from afterlearner.online.feedback import FeedbackError
from afterlearner.online.render import Rendering
from afterlearner.online.session import (
    FeedbackSession,
    SessionFinished,
    StaleProposal,
    UnknownProposal,
)
from afterlearner.online.task import FeedbackTask

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


def new_token() -> str:
    """A fresh random access token (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def _output(rendering: Rendering) -> dict[str, Any]:
    if rendering.kind == "text":
        return {"kind": "text", "text": rendering.as_text()}
    return {"kind": rendering.kind, "url": rendering.data_url()}


def state(session: FeedbackSession, task: FeedbackTask) -> dict[str, Any]:
    """What the page shows: the open proposal, the current best, progress, and the task's texts."""
    proposal = session.propose()
    progress = session.progress()
    return {
        "task": {"name": task.name, "prompt": task.prompt, "description": task.description},
        "progress": {
            "answers": progress.answers,
            "budget": progress.budget,
            "improvements": progress.improvements,
            "done": progress.done,
        },
        "best": _output(session.best.rendering),
        "proposal": None
        if proposal is None
        else {
            "id": proposal.id,
            "candidates": [{"index": c.index, **_output(c.rendering)} for c in proposal.candidates],
        },
    }


def create_app(session: FeedbackSession, task: FeedbackTask, token: str) -> FastAPI:
    """The FastAPI app serving ``session``; every request must carry ``token``."""
    if len(token) < 16:
        raise ValueError("the access token must have at least 16 characters")
    app = FastAPI(title="afterlearner feedback", docs_url=None, redoc_url=None, openapi_url=None)
    page = files("afterlearner.online").joinpath("page.html").read_text(encoding="utf-8")

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        given = request.query_params.get("token", "")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            given = header[7:].strip()
        length = request.headers.get("content-length") or "0"
        if not secrets.compare_digest(given.encode(), token.encode()):
            response = error(401, "missing or wrong access token: use the address printed by the server")
        elif not length.isdigit():
            response = error(400, "invalid Content-Length header")
        elif int(length) > MAX_BODY:
            response = error(413, f"request body too large (limit {MAX_BODY} bytes)")
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/state")
    def get_state() -> JSONResponse:
        return JSONResponse(state(session, task))

    @app.post("/api/answer")
    async def post_answer(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY:
            return error(413, f"request body too large (limit {MAX_BODY} bytes)")
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(400, 'the body must be JSON: {"proposal": id, "feedback": {"kind": ...}}')
        if not isinstance(payload, dict) or set(payload) != {"proposal", "feedback"}:
            return error(422, "the body must be a JSON object with the keys 'proposal' and 'feedback' only")
        return await _answer(payload["proposal"], payload["feedback"])

    async def _answer(proposal: Any, feedback: Any) -> JSONResponse:
        def apply() -> JSONResponse:
            try:
                if not isinstance(feedback, dict):
                    raise FeedbackError('\'feedback\' must be an object, e.g. {"kind": "none"}')
                session.answer(proposal, feedback)
            except FeedbackError as exc:
                return error(422, str(exc))
            except UnknownProposal as exc:
                return error(404, str(exc))
            except (StaleProposal, SessionFinished) as exc:
                return error(409, str(exc))
            return JSONResponse(state(session, task))

        return await run_in_threadpool(apply)

    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), so the address is known before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    return sock


def address(sock: socket.socket, token: str) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def serve(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on an already bound socket until interrupted (Ctrl-C or SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
