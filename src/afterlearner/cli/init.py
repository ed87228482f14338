"""``afterlearner init my_task.py``: write a commented task file that runs as it is."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from afterlearner.errors import ConfigError

TEMPLATE = "task.py"
#: How the template's docstring names itself; replaced by the written file's name.
PLACEHOLDER = "THIS_FILE.py"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "init", help="write a commented task file to start from (it runs as it is)"
    )
    parser.add_argument("path", help="the task file to write, e.g. my_task.py")
    parser.add_argument("--force", action="store_true", help="overwrite the file if it exists")
    parser.set_defaults(handler=handle)


def template_text() -> str:
    """The task file ``init`` writes (``afterlearner/templates/task.py``, linted and tested as code)."""
    return resources.files("afterlearner.templates").joinpath(TEMPLATE).read_text(encoding="utf-8")


def write_task_file(path: Path, force: bool = False) -> Path:
    """Write the template to ``path``; refuses an existing file unless ``force``, and a non-.py name."""
    if path.suffix != ".py":
        raise ConfigError(f"{path}: a task file is imported as Python, so its name must end in .py")
    if path.is_dir():
        raise ConfigError(f"{path} is a directory")
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; pass --force to overwrite it")
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write {path}: directory {path.parent} does not exist")
    path.write_text(template_text().replace(PLACEHOLDER, path.name), encoding="utf-8")
    return path


def handle(args: argparse.Namespace) -> int:
    path = write_task_file(Path(args.path), force=args.force)
    store = path.with_suffix(".sqlite")
    print(f"wrote {path}: a toy retrofit that runs as it is; its comments explain every field.")
    print("next:")
    print(f"  afterlearner run {path}:task --store {store}    # retrofit (runs in seconds)")
    print(f"  afterlearner show {store} --plot {path.with_suffix('.png')}    # the runs and their curve")
    print(f"then edit {path}: load your data and trained model, choose the ℵ-parameters and the loss.")
    return 0
