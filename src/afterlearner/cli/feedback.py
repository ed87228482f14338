"""``afterlearner feedback``: retrofit from human feedback in a web page (``serve`` a task, or ``demo``)."""

from __future__ import annotations

import argparse
import signal
import sys

from afterlearner.cli.options import port


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("feedback", help="retrofit from human feedback: a local web page to click")
    commands = parser.add_subparsers(dest="feedback_command", required=True, metavar="{serve,demo}")
    serve = commands.add_parser("serve", help="serve a feedback task file (path/to/task.py:factory)")
    serve.add_argument("task", help="path/to/task.py:factory returning an afterlearner.online.FeedbackTask")
    serve.add_argument("--store", required=True, help="SQLite file of the session (resumed if it exists)")
    _common(serve)
    serve.set_defaults(handler=handle_serve)
    demo = commands.add_parser("demo", help="steer the digit generator by clicks")
    demo.add_argument(
        "--store",
        default="afterlearner-feedback-demo.sqlite",
        help="SQLite file of the session (resumed if it exists)",
    )
    demo.add_argument("--no-browser", action="store_true", help="print the address, open no browser")
    _common(demo)
    demo.set_defaults(handler=handle_demo)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=port, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the optimizer (default 0)")
    parser.add_argument("--k", type=int, default=None, help="candidates per proposal (default: the task's)")
    parser.add_argument("--budget", type=int, default=None, help="answers (default: the task's)")
    parser.add_argument("--optimizer", default=None, help="comparison-based optimizer (default: the task's)")


def handle_serve(args: argparse.Namespace) -> int:
    from afterlearner.online.task import load_feedback_task

    return _run(load_feedback_task(args.task), args, open_browser=False)


def handle_demo(args: argparse.Namespace) -> int:
    from afterlearner.experiments.digits.steering import digit_task

    return _run(digit_task(), args, open_browser=not args.no_browser)


def _run(task, args: argparse.Namespace, open_browser: bool) -> int:  # noqa: ANN001
    from afterlearner.online.server import address, bind, create_app, new_token, serve

    names = ("k", "budget", "optimizer")
    overrides = {key: value for key in names if (value := getattr(args, key)) is not None}
    session = task.session(store=args.store, seed=args.seed, **overrides)
    try:
        token = new_token()
        app = create_app(session, task, token)
        try:
            sock = bind(args.host, args.port)
        except OSError as error:
            print(f"afterlearner: error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
            return 2
        url = address(sock, token)
        progress = session.progress()
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"warning: listening on {args.host}: anyone who can reach it and has the token can vote",
                file=sys.stderr,
            )
        print(
            f"feedback session on {task.name}: {progress.answers}/{progress.budget} answers so far, "
            f"store {args.store}"
        )
        print(f"open {url}", flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal: end normally
        signal.signal(signal.SIGTERM, _exit_normally)
        try:
            serve(app, sock)
        except KeyboardInterrupt:
            pass
        print(f"stopped; {session.progress().answers} answers are in {args.store}")
    finally:
        session.close()
    return 0


def _exit_normally(signum: int, frame: object) -> None:
    raise SystemExit(0)
