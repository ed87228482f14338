"""The ``afterlearner`` command. Each subcommand is a module here with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

from afterlearner.errors import AfterlearnerError

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ["demo", "run", "init", "show", "optimizers", "reproduce", "feedback"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afterlearner", description="Evolutionary retrofitting of trained models (AfterLearnER)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"afterlearner.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except AfterlearnerError as error:
        print(f"afterlearner: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
