"""Run in a subprocess by the ask/tell crash test: tell K losses, ask one more, say so, then hang.

``python asktell_process.py STORE K MARKER`` — the parent kills this process with SIGKILL once
MARKER exists, i.e. between an ask and its tell.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from asktell_task import SETTINGS, build, loss_of  # noqa: E402

import afterlearner as al  # noqa: E402


def main(store: str, told: int, marker: str) -> None:
    aleph = build()
    retrofitter = al.Retrofitter(aleph, store=store, **SETTINGS)
    for _ in range(told):
        candidate = retrofitter.ask()
        retrofitter.tell(candidate, loss_of(candidate.values()))
    candidate = retrofitter.ask()
    Path(marker).write_text(f"{candidate.index}\n")
    time.sleep(600)  # killed here, the candidate asked and never told


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
