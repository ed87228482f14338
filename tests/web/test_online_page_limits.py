"""Both pages (feedback and dashboard) refuse a 50 MB chunked body without holding it in memory.

The servers are the real commands in child processes; the body is sent by hand on a socket with
``Transfer-Encoding: chunked`` and no Content-Length, as an attacker with the token would. The
server's peak resident memory (``VmHWM``) must grow by less than 10 MB and the answer must be 413.
"""

from __future__ import annotations

import os
import queue
import re
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from online_process import Server
from paths import TASKS

TONE = TASKS / "feedback_tone_task.py"
BODY = 50 * 1024 * 1024
CHUNK = 64 * 1024
START_TIMEOUT = 120


class Command:
    """``afterlearner ARGUMENTS --port 0`` in a child process; ``url`` is the address it printed, and
    :meth:`printed` everything it printed (after :meth:`stop`: its last words too)."""

    def __init__(self, *arguments: str, cwd: Path | None = None) -> None:
        command = [sys.executable, "-m", "afterlearner", *arguments, "--port", "0"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if env.get("PYTHONPATH"):  # a source tree given relatively must still be found from ``cwd``
            paths = env["PYTHONPATH"].split(os.pathsep)
            env["PYTHONPATH"] = os.pathsep.join(str(Path(path).resolve()) for path in paths)
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        stdout = self.process.stdout
        threading.Thread(target=self._pump, args=(stdout,), daemon=True).start()
        self.output: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                self.stop()
                raise AssertionError(f"{arguments[0]} printed no address: {self.output}") from None
            if line is None:
                raise AssertionError(f"{arguments[0]} ended without an address: {self.output}")
            self.output.append(line)
            match = re.search(r"open (http://127\.0\.0\.1:\d+/\?token=[\w-]+)", line)
            if match:
                self.url = match.group(1)
                return

    def _pump(self, stdout: object) -> None:
        for line in stdout:
            self._lines.put(line)
        self._lines.put(None)

    def printed(self) -> str:
        """Everything printed so far (waits for the end of the output once the process has ended)."""
        while True:
            try:
                line = self._lines.get(timeout=0.1 if self.process.poll() is None else 30)
            except queue.Empty:
                return "".join(self.output)
            if line is None:
                return "".join(self.output)
            self.output.append(line)

    def stop(self) -> None:
        """SIGTERM (a clean stop), SIGKILL if it takes more than 30 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def dashboard(*stores: str, cwd: Path | None = None) -> Command:
    """``afterlearner dashboard STORES --no-browser --port 0`` (run in ``cwd``)."""
    return Command("dashboard", *stores, "--no-browser", cwd=cwd)


def peak_memory(pid: int) -> int:
    """The process's peak resident memory in bytes (Linux ``VmHWM``)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def request(url: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """A plain HTTP/1.1 request on a socket: (status, raw response)."""
    parts = urlsplit(url)
    token = parts.query.split("token=")[1]
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        method = "GET" if body is None else "POST"
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n"
        )
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        sock.sendall(head.encode() + b"\r\n" + (body or b""))
        return _read_response(sock)


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    match = re.match(rb"HTTP/1\.1 (\d{3})", received)
    return (int(match.group(1)) if match else 0), received


def post_chunked(url: str, path: str, size: int) -> tuple[int, bytes, int]:
    """POST ``size`` bytes chunked, stopping when the server answers or closes: (status, response, sent)."""
    parts = urlsplit(url)
    token = parts.query.split("token=")[1]
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    sock.sendall(head.encode())
    frame = f"{CHUNK:x}\r\n".encode() + b"[" * CHUNK + b"\r\n"
    sent = 0
    try:
        while sent < size:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before the end of the body
            sock.sendall(frame)
            sent += CHUNK
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    status, response = _read_response(sock)
    sock.close()
    return status, response, sent


@pytest.mark.parametrize("page", ["feedback", "dashboard"])
@pytest.mark.slow
def test_a_50_mb_chunked_body_is_refused_without_holding_it(tmp_path: Path, page: str) -> None:
    from afterlearner.store import Store

    server: Server | Command

    if page == "feedback":
        server = Server("serve", f"{TONE}:factory", "--store", str(tmp_path / "tone.sqlite"))
        path, warm = "/api/answer", b'{"proposal": 99, "feedback": {"kind": "none"}}'
    else:
        Store.open(tmp_path / "empty.sqlite").close()
        server = dashboard(str(tmp_path / "empty.sqlite"))
        path, warm = "/api/runs", b"{}"
    try:
        for _ in range(3):  # warm up: the first requests import and allocate what every request needs
            assert request(server.url, "/")[0] == 200
            request(server.url, path, warm)
            post_chunked(server.url, path, 64 * 1024)
        before = peak_memory(server.process.pid)
        status, response, sent = post_chunked(server.url, path, BODY)
        after = peak_memory(server.process.pid)
        assert status == 413, response[:300]
        assert b"cache-control: no-store" in response.lower()  # the body may be cut by the reset
        grown = after - before
        print(f"{page}: sent {sent / 2**20:.1f} MB before the 413, peak memory grew {grown / 2**20:.2f} MB")
        assert grown < 10 * 2**20, f"the server's peak memory grew {grown / 2**20:.1f} MB"
        assert request(server.url, "/")[0] == 200  # and it still serves
    finally:
        server.stop()
