"""The ``afterlearner`` command. Each subcommand is a module here with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

from afterlearner.errors import AfterlearnerError

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = [
    "demo",
    "run",
    "init",
    "suggest",
    "show",
    "export",
    "optimizers",
    "reproduce",
    "feedback",
    "dashboard",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afterlearner", description="Evolutionary retrofitting of trained models (AfterLearnER)."
    )
    parser.add_argument("--version", action="version", version=f"afterlearner {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"afterlearner.cli.{name}").register(subparsers)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("afterlearner")
    except PackageNotFoundError:  # running from a source tree that is not installed
        from afterlearner import __version__

        return __version__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except AfterlearnerError as error:
        print(f"afterlearner: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
