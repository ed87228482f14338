"""Command-line options shared by the subcommands that run a retrofit."""

from __future__ import annotations

import argparse


def add_retrofit_options(parser: argparse.ArgumentParser, budget: int | None = None) -> None:
    parser.add_argument("--budget", type=int, default=budget, help="evaluations per run (default: the task's)")
    parser.add_argument("--optimizer", default=None, help="a Nevergrad optimizer name (default: the task's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="candidates asked at a time, λ (default 1)")
    parser.add_argument("--runs", type=int, default=1, help="independent runs, best kept (default 1)")
    parser.add_argument("--store", default=None, help="SQLite journal; an existing one is resumed")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
