"""A feedback server in a child process, started as people do: ``python -m afterlearner feedback ...``."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading

from paths import SRC

DEMO = str(SRC / "afterlearner" / "experiments" / "digits" / "steering.py") + ":digit_task"
START_TIMEOUT = 120


class Server:
    """``afterlearner feedback ARGUMENTS --port 0`` in a child process; ``url`` is the address it printed."""

    def __init__(self, *arguments: str) -> None:
        command = [sys.executable, "-m", "afterlearner", "feedback", *arguments, "--port", "0"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
        self.output: list[str] = []
        while True:
            try:
                line = lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                self.stop()
                message = f"the server printed no address in {START_TIMEOUT} s: {self.output}"
                raise AssertionError(message) from None
            self.output.append(line)
            match = re.search(r"open (http://127\.0\.0\.1:\d+/\?token=[\w-]+)", line)
            if match:
                self.url = match.group(1)
                return

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
