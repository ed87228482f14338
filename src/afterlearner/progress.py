"""A progress bar for long work, showing the best loss so far (rich), or nothing when quiet."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

#: Seconds between two updates of a bar (rich redraws at 10 Hz anyway).
REFRESH_S = 0.1
#: Seconds before a bar appears (tqdm's ``delay``): work that ends sooner draws none, and does not
#: pay for starting and stopping the live display, which cost more than a short run of a cheap loss.
DELAY_S = 0.5


class RunProgress:
    """``with RunProgress(total, label) as bar: bar.update(done, best_loss)``; ``enabled=False`` prints
    nothing, and neither does work that ends within :data:`DELAY_S` seconds."""

    def __init__(self, total: int, label: str, enabled: bool = True, delay: float = DELAY_S) -> None:
        self.total = total
        self.label = label
        self.enabled = enabled
        self.delay = delay
        self._progress: Progress | None = None
        self._task = None
        self._last = -math.inf
        self._entered = math.inf

    def __enter__(self) -> RunProgress:
        self._entered = time.monotonic()
        if self.enabled and self.delay <= 0:
            self._start()
        return self

    def _start(self) -> None:
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("best {task.fields[best]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.label, total=self.total, best="-")

    def update(self, completed: int, best: float | None | Callable[[], float | None]) -> None:
        """Show ``completed`` steps done and the best loss so far (replayed steps included); ``best``
        may be a function, called only when the bar is drawn.

        At most every :data:`REFRESH_S` seconds (and always at the end): the bar is for people, and
        updating it on every evaluation of a fast loss cost more than the evaluation.
        """
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < REFRESH_S and completed < self.total:
            return
        self._last = now
        if self._progress is None:
            if now - self._entered < self.delay:
                return
            self._start()
        if callable(best):
            best = best()
        text = "-" if best is None else f"{best:.6g}"
        self._progress.update(self._task, completed=completed, best=text)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(kind, error, trace)
