"""Where things are, for tests in any folder and the scripts they run in fresh interpreters.

pyproject's ``[tool.pytest.ini_options] pythonpath`` puts this folder (``SUPPORT``) on ``sys.path``, so
a test imports a helper by its module name (``import patch_model``, ``from paths import TASKS``)
wherever the test file sits; a script run in a fresh interpreter inserts ``SUPPORT`` itself.
"""

from __future__ import annotations

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
TESTS = SUPPORT.parent
TASKS = TESTS / "tasks"  # task files, used through their paths (``afterlearner run TASKS/...``)
ROOT = TESTS.parent
SRC = ROOT / "src"
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
