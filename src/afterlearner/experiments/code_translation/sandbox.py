"""Running untrusted generated code: a separate, limited, isolated process.

A translation model's output is code nobody has read. :func:`run_functions` runs such programs in
a child Python process that cannot harm the caller:

* a fresh **process** (its own session, killed with its whole process group on a wall-clock limit),
  a **CPU-time** limit, and a per-call timer inside it: an infinite loop costs a fraction of a second;
* an **address-space** limit (``RLIMIT_AS``), so a huge allocation fails with ``MemoryError``;
* **no new processes**: ``RLIMIT_NPROC`` = 0, and the audit hook refuses ``fork``/``exec``/``spawn``,
  so a fork bomb stops at the first fork (when run as root, whom ``RLIMIT_NPROC`` does not bind,
  the child drops to user ``nobody`` with ``setpriv`` first);
* **no files**: it runs in an empty temporary directory with an isolated interpreter (``-I -S``:
  no site packages, no environment, no current directory on the path) and a minimal environment;
  ``RLIMIT_FSIZE`` = 0 and an audit hook refuse every write, rename or removal;
* **no network**: a new network namespace (``unshare --net``) where the system allows it, and the
  audit hook refuses sockets in any case.

The audit hook is a second line of defence (Python audit hooks can be bypassed by native code,
and ``ctypes`` is refused for that reason); the process limits and the unprivileged user are the
first.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Limits of one sandboxed run (all programs of one call).
CALL_TIMEOUT = 0.25  # seconds per function call (the reference functions take microseconds)
MEMORY_BYTES = 256 * 1024 * 1024
CPU_SECONDS = 20
NOBODY = 65534

# The trusted harness: sets the limits, installs the audit hook, then runs the untrusted programs.
HARNESS = r"""
import json, resource, signal, sys
payload = json.loads(sys.stdin.read())
limits = payload["limits"]
for name, value in (("RLIMIT_AS", limits["memory"]), ("RLIMIT_CPU", limits["cpu"]), ("RLIMIT_FSIZE", 0),
                    ("RLIMIT_NPROC", 0), ("RLIMIT_CORE", 0), ("RLIMIT_NOFILE", 8)):
    resource.setrlimit(getattr(resource, name), (value, value))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE then fails with an error

WRITE_FLAGS = 0
import os as _os
for _flag in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"):
    WRITE_FLAGS |= getattr(_os, _flag)
REFUSED = ("os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.kill",
           "os.killpg", "subprocess.Popen", "socket.", "os.remove", "os.rename", "os.rmdir", "os.mkdir",
           "os.chmod", "os.chown", "os.truncate", "os.link", "os.symlink", "os.putenv", "os.unsetenv",
           "shutil.", "ctypes.", "sys.addaudithook", "resource.setrlimit", "signal.", "os.setsid",
           "os.chdir", "mmap.")
REFUSED_MODULES = {"ctypes", "_ctypes", "socket", "_socket", "subprocess", "_posixsubprocess",
                   "multiprocessing"}

def hook(event, args):
    if event.startswith(REFUSED):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args[0].split(".")[0] in REFUSED_MODULES:
        raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
    if event == "open":
        mode, flags = args[1], args[2]
        writes = isinstance(mode, str) and any(c in mode for c in "wax+")
        if writes or (isinstance(flags, int) and flags & WRITE_FLAGS):
            raise PermissionError(f"sandbox: opening {args[0]!r} for writing is not allowed")

class Timeout(BaseException):
    pass

def alarm(signum, frame):
    raise Timeout()

signal.signal(signal.SIGALRM, alarm)
sys.addaudithook(hook)
out = sys.stdout
sys.stdout = sys.stderr = open(_os.devnull)  # the programs' own prints go nowhere (reads only)
sys.setrecursionlimit(400)
results = []
for code, inputs in zip(payload["programs"], payload["inputs"]):
    entry = {"ok": False, "outputs": None, "error": ""}
    try:
        namespace = {"__name__": "untrusted"}
        signal.setitimer(signal.ITIMER_REAL, limits["call"])
        try:
            exec(compile(code, "<untrusted>", "exec"), namespace)
            function = namespace[payload["function"]]
            outputs = []
            for args in inputs:
                signal.setitimer(signal.ITIMER_REAL, limits["call"])
                outputs.append(repr(function(*args))[:200])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        entry = {"ok": True, "outputs": outputs, "error": ""}
    except Timeout:
        entry["error"] = "timeout"
    except BaseException as error:
        entry["error"] = f"{type(error).__name__}: {str(error)[:200]}"
    results.append(entry)
    out.write(json.dumps(entry) + "\n")
    out.flush()
"""


@dataclass(frozen=True)
class Outcome:
    """What one program did: its outputs' reprs on each input, or why it failed."""

    ok: bool
    outputs: list[str] | None
    error: str


def _world_executable(path: str) -> bool:
    """True if every directory above ``path`` and the file itself can be used by any user."""
    real = Path(os.path.realpath(path))
    if not real.is_file() or not real.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)


@functools.lru_cache(maxsize=1)
def interpreter() -> str:
    """A Python interpreter the sandbox user can run (this one, or the system's)."""
    candidates = [sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"]
    if os.geteuid() != 0:
        return sys.executable
    for candidate in candidates:
        if candidate and _world_executable(candidate):
            return candidate
    raise RuntimeError("no Python interpreter usable by user nobody; install python3 in /usr/bin")


@functools.lru_cache(maxsize=1)
def isolation() -> tuple[str, ...]:
    """The command prefix that isolates the child: network namespace and, as root, user nobody."""
    prefix: list[str] = []
    for attempt in (["unshare", "--net"], ["unshare", "--user", "--net"]):
        if shutil.which(attempt[0]) and _works(attempt):
            prefix = attempt
            break
    if os.geteuid() == 0:
        setpriv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        if not (shutil.which("setpriv") and _works(setpriv)):
            raise RuntimeError("running as root needs setpriv (util-linux) to drop to user nobody")
        prefix += setpriv
    return tuple(prefix)


def _works(prefix: list[str]) -> bool:
    try:
        return subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def run_functions(
    programs: list[str],
    inputs: list[list[list[object]]],
    function: str = "f",
    call_timeout: float = CALL_TIMEOUT,
    memory: int = MEMORY_BYTES,
    cpu_seconds: int = CPU_SECONDS,
) -> list[Outcome]:
    """Run each untrusted program, then call its ``function`` on each of its inputs, in the sandbox.

    Returns one :class:`Outcome` per program; a program that crashes, loops or misbehaves fails
    alone, and if the whole child has to be killed, the programs not yet run fail too.
    """
    if len(programs) != len(inputs):
        raise ValueError(f"{len(programs)} programs but {len(inputs)} input lists")
    if not programs:
        return []
    payload = json.dumps(
        {
            "programs": programs,
            "inputs": inputs,
            "function": function,
            "limits": {"call": call_timeout, "memory": memory, "cpu": cpu_seconds},
        }
    )
    wall = cpu_seconds + 5 + call_timeout * sum(len(i) + 1 for i in inputs)
    with tempfile.TemporaryDirectory(prefix="afterlearner-sandbox-") as directory:
        if os.geteuid() == 0:
            os.chown(directory, NOBODY, NOBODY)
        command = [*isolation(), interpreter(), "-I", "-S", "-c", HARNESS]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": directory}
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=directory,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        try:
            stdout, _ = process.communicate(payload.encode(), timeout=min(wall, 120))
            reason = f"sandbox process ended with status {process.returncode}"
        except subprocess.TimeoutExpired:
            stdout, reason = b"", "sandbox killed: wall-clock limit"
        finally:
            _kill_group(process)
    outcomes = []
    for line in stdout.decode(errors="replace").splitlines()[: len(programs)]:
        try:
            entry = json.loads(line)
            outcomes.append(Outcome(bool(entry["ok"]), entry["outputs"], str(entry["error"])))
        except (json.JSONDecodeError, KeyError, TypeError):
            break
    return outcomes + [Outcome(False, None, reason)] * (len(programs) - len(outcomes))


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
