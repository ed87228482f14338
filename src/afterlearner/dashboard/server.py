"""The dashboard's web app: stores read-only, the page, and a small JSON API.

Same stack and rules as the feedback page (:class:`afterlearner.online.server.Guard`): the token on
every request, bodies over the limit refused unread, security headers on every response. Nothing
here writes a store: each is opened with SQLite's read-only mode (``Store.open(readonly=True)``)
and only read, so runs can write them meanwhile.

API (every request with the token):

* ``GET /`` the page (uPlot and its CSS inlined: the page needs no network);
* ``GET /api/runs``: every store and its runs (:func:`data.describe_store`);
* ``GET /api/series?run=KEY@CURSOR&...``: the new evaluations of each run, and the y axis of the
  chart of those runs together (:func:`data.new_evaluations`, :func:`data.axis`);
* ``GET /api/parameters?run=KEY``: the run's best candidate by name, the per-scalar view;
* ``GET /api/stores/{i}/csv``: every evaluation of store ``i`` as CSV (a download).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from afterlearner.dashboard import data
from afterlearner.online.server import SECURITY_HEADERS, Guard, error
from afterlearner.store import Store

#: At most this many runs are charted together (each is one query per poll).
MAX_SELECTED = 12


class Stores:
    """The stores given on the command line, each opened read-only once it exists (thread-safe)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._open: list[Store | None] = [None] * len(paths)
        self._problems: list[str | None] = [None] * len(paths)
        self._lock = threading.Lock()

    @contextmanager
    def reading(self) -> Iterator[list[Store | None]]:
        """The stores (None: not readable yet, see :meth:`problem`), one reader at a time."""
        with self._lock:
            for i, path in enumerate(self.paths):
                if self._open[i] is None:
                    self._open[i], self._problems[i] = data.open_store(path)
            yield self._open

    def problem(self, index: int) -> str | None:
        return self._problems[index]

    def close(self) -> None:
        with self._lock:
            for store in self._open:
                if store is not None:
                    store.close()
            self._open = [None] * len(self.paths)


def page() -> str:
    """The page with uPlot's script and style inlined (one response, no other request, no network)."""
    static = files("afterlearner.dashboard").joinpath("static")
    html = files("afterlearner.dashboard").joinpath("page.html").read_text(encoding="utf-8")
    script = static.joinpath("uPlot.iife.min.js").read_text(encoding="utf-8")
    style = static.joinpath("uPlot.min.css").read_text(encoding="utf-8")
    if "</script" in script.lower() or "</style" in style.lower():
        raise ValueError("the vendored uPlot cannot be inlined: it contains a closing tag")
    return html.replace("/*UPLOT_CSS*/", style).replace("/*UPLOT_JS*/", script)


def parse_key(key: str, count: int) -> tuple[int, int] | None:
    """``"<store>-<run>"`` as (store index, run index), or None if it names no store given."""
    store, _, run = key.partition("-")
    if not (store.isdigit() and run.isdigit()) or int(store) >= count:
        return None
    return int(store), int(run)


def create_app(stores: Stores, token: str) -> Guard:
    """The ASGI app of the dashboard over ``stores``; every request must carry ``token``."""
    app = FastAPI(title="afterlearner dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    html = page()
    count = len(stores.paths)

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(html)

    @app.get("/api/runs")
    def get_runs() -> JSONResponse:
        with stores.reading() as opened:
            listed = [
                data.describe_store(path, store, i, stores.problem(i))
                for i, (path, store) in enumerate(zip(stores.paths, opened, strict=True))
            ]
        return JSONResponse({"stores": listed})

    @app.get("/api/series")
    def get_series(run: list[str] = Query(default=[])) -> JSONResponse:  # noqa: B008
        wanted: list[tuple[str, tuple[int, int], data.Cursor]] = []
        for item in run[:MAX_SELECTED]:
            key, _, cursor = item.partition("@")
            parsed = parse_key(key, count)
            if parsed is None:
                return error(404, f"no run {key!r}", "unknown")
            wanted.append((key, parsed, data.Cursor.parse(cursor)))
        with stores.reading() as opened:
            series, held_out, selected = {}, [], []
            for key, (store_index, run_index), cursor in wanted:
                store = opened[store_index]
                if store is None:
                    continue
                series[key] = data.new_evaluations(store, run_index, cursor)
                row = store.run(run_index) or {}
                held_out += [row.get("test_initial"), row.get("test_best")]
                selected.append((store_index, run_index))
            readable: list[Any] = opened
            chart_axis = data.axis(readable, selected, held_out)
        return JSONResponse({"runs": series, "axis": chart_axis})

    @app.get("/api/parameters")
    def get_parameters(run: str = "") -> JSONResponse:
        parsed = parse_key(run, count)
        if parsed is None:
            return error(404, f"no run {run!r}", "unknown")
        with stores.reading() as opened:
            store = opened[parsed[0]]
            if store is None:
                return error(404, f"store {parsed[0]} is not readable yet", "unknown")
            return JSONResponse(data.parameters(store, parsed[1]))

    @app.get("/api/stores/{index}/csv")
    async def get_csv(index: int) -> Response:
        def read() -> str | None:
            with stores.reading() as opened:
                store = opened[index] if 0 <= index < count else None
                return None if store is None else data.write_csv(store)

        text = await run_in_threadpool(read)
        if text is None:
            return error(404, f"no readable store {index}", "unknown")
        name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(stores.paths[index]).stem) + "-evaluations.csv"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(text, media_type="text/csv; charset=utf-8", headers=headers)

    return Guard(app, token, headers=SECURITY_HEADERS)
