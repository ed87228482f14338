"""``python -m afterlearner`` is the ``afterlearner`` command."""

import sys

from afterlearner.cli import main

sys.exit(main())
