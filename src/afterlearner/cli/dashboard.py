"""``afterlearner dashboard STORE [STORE ...]``: a local web page showing runs live, read-only."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard", help="a local web page with every run of the stores, live (reads them, never writes)"
    )
    parser.add_argument(
        "stores", nargs="+", metavar="STORE", help="afterlearner SQLite stores (may not exist yet)"
    )
    parser.add_argument("--port", type=int, default=8766, help="port (default 8766; 0 picks a free one)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)"
    )
    parser.add_argument("--no-browser", action="store_true", help="print the address, open no browser")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from afterlearner.dashboard.server import Stores, create_app
    from afterlearner.online.server import address, bind, is_loopback, new_token, serve

    stores = Stores([Path(path) for path in args.stores])
    try:
        token = new_token()
        app = create_app(stores, token)
        try:
            sock = bind(args.host, args.port)
        except OSError as error:
            print(f"afterlearner: error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
            return 2
        if not is_loopback(args.host):
            print(
                f"warning: listening on {args.host}: anyone who can reach it and has the token sees the runs",
                file=sys.stderr,
            )
        with stores.reading() as opened:
            ready = sum(store is not None for store in opened)
        count = len(stores.paths)
        print(f"dashboard of {count} store{'s' * (count != 1)} ({ready} readable now)")
        for index, (path, store) in enumerate(zip(stores.paths, opened, strict=True)):
            if store is None:
                print(f"  {path}: {stores.problem(index)}")
        url = address(sock, token)
        print(f"open {url}", flush=True)
        if not args.no_browser:
            import webbrowser

            webbrowser.open(url)
        signal.signal(signal.SIGTERM, _exit_normally)
        try:
            serve(app, sock)
        except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM re-raised by uvicorn after its shutdown
            pass
        print("dashboard stopped; the stores were only read")
    finally:
        stores.close()
    return 0


def _exit_normally(signum: int, frame: object) -> None:
    raise SystemExit(0)
