"""``afterlearner feedback``: retrofit from human feedback in a web page (``serve`` a task, or ``demo``)."""

from __future__ import annotations

import argparse
import shlex
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
    from afterlearner.space import Aleph

    task = load_feedback_task(args.task)
    return _run(task, args, open_browser=False, spec=args.task if isinstance(task.space, Aleph) else None)


def handle_demo(args: argparse.Namespace) -> int:
    from afterlearner.experiments.digits.steering import digit_task

    return _run(digit_task(), args, open_browser=not args.no_browser)


def _run(task, args: argparse.Namespace, open_browser: bool, spec: str | None = None) -> int:  # noqa: ANN001
    from afterlearner.online.server import address, bind, create_app, is_loopback, new_token, serve

    names = ("k", "budget", "optimizer")
    overrides = {key: value for key in names if (value := getattr(args, key)) is not None}
    session = task.session(store=args.store, seed=args.seed, **overrides)
    try:
        token = new_token()
        app = create_app(session, task, token, keep=keep_lines(args.store, spec))
        try:
            sock = bind(args.host, args.port)
        except OSError as error:
            print(f"afterlearner: error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
            return 2
        url = address(sock, token)
        progress = session.progress()
        if not is_loopback(args.host):
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
        except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM re-raised by uvicorn after its shutdown
            pass
        print(summary(session, args.store, spec), flush=True)
    finally:
        session.close()
    return 0


#: Values of the best candidate printed by name when the server stops (the rest: ``show --values``).
SHOWN_VALUES = 12


def keep_lines(store: str, task_spec: str | None = None) -> list[dict[str, str]]:
    """Where the answers are and how to get the result out, as the finished page says it.

    ``task_spec``: the task file, when its space is a model's ℵ-space (then the best can be exported).
    """
    quoted = shlex.quote(store)
    lines = [
        {"say": f"Your answers are saved in {store}. Run the same command again to go on or change them."},
        {
            "say": "To see the result and download every answer:",
            "command": f"afterlearner dashboard {quoted}",
        },
    ]
    lines.append({"say": "To list its values by name:", "command": f"afterlearner show {quoted} --values"})
    if task_spec is not None:
        command = f"afterlearner export {quoted} --task {shlex.quote(task_spec)} --out best.safetensors"
        lines.append({"say": "To write the model's retrofit as a file anyone can load:", "command": command})
    return lines


def summary(session, store: str, task_spec: str | None = None) -> str:  # noqa: ANN001
    """What the server prints when it stops: answers given, the best candidate, how to get it out."""
    from afterlearner.dashboard.data import space_labels

    progress = session.progress()
    best = session.best.vector
    if progress.improvements == 0:
        where = "the starting point (no answer preferred another)"
    else:
        found = next(p for p, _, vector in session.history() if vector.tobytes() == best.tobytes())
        where = f"chosen at question {found}"
    labels = space_labels(session.space.signature, best.size)
    values = [f"{label}={value:.4g}" for label, value in zip(labels, best.tolist(), strict=True)]
    more = f", … ({len(values) - SHOWN_VALUES} more)" if len(values) > SHOWN_VALUES else ""
    status = "finished" if progress.done else f"{progress.budget - progress.answers} answers left"
    return "\n".join(
        [
            f"stopped: {progress.answers}/{progress.budget} answers given ({status}), "
            f"{progress.improvements} improvement{'s' * (progress.improvements != 1)}",
            f"best candidate: {where}",
            f"    {', '.join(values[:SHOWN_VALUES])}{more}",
            f"answers saved in {store}; run the same command again to continue",
            *(f"{line['say']} {line['command']}" for line in keep_lines(store, task_spec)[1:]),
        ]
    )


def _exit_normally(signum: int, frame: object) -> None:
    raise SystemExit(0)
