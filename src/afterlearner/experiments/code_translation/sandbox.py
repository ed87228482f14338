"""Running untrusted generated code: one process per program, inside a bubblewrap sandbox.

A translation model's output is code nobody has read. :func:`run_functions` runs such programs so
that none can harm the caller, see anything of the machine, or change another program's result.
The boundary is the kernel's, set up by bubblewrap (``bwrap``, Debian package ``bubblewrap``); no
guard inside the Python process is relied on.

* **A sandbox.** ``bwrap`` starts a *runner* in new user, mount, PID, network, IPC, UTS and cgroup
  namespaces, with no capabilities, ``no_new_privs`` and no further user namespaces. Its filesystem
  is an empty read-only root holding only the Python runtime (the interpreter, its standard library
  and the system's shared libraries, all read-only) and ``/dev/null``: no ``/etc``, ``/tmp``,
  ``/proc`` or home, nothing writable. Its network namespace has only a loopback that is down. A
  seccomp filter refuses System V IPC (memory outside ``RLIMIT_AS``), kernel keyrings and tracing.
  As root, the sandbox is entered as user ``nobody`` (``RLIMIT_NPROC`` does not bind root), with
  an interpreter that user can run (the system's ``python3`` if the caller's is private).
* **A process per program.** The runner (PID 1 of the sandbox) forks a child for each program. The
  child keeps no descriptor but ``/dev/null`` and its own result pipe, lowers its kernel limits
  (``RLIMIT_AS``, ``RLIMIT_CPU``, ``RLIMIT_NPROC`` = 0 so no process or thread can start,
  ``RLIMIT_FSIZE`` = 0, ``RLIMIT_NOFILE``, ``RLIMIT_MSGQUEUE`` = 0), runs the program and writes its
  outcome to the pipe. The runner passes on, unread, what the child wrote and how it ended, or that
  it killed it at its wall-clock deadline; the caller accepts exactly one well-formed line and
  exit status 0. A child cannot reach the
  runner: a signal sent from inside a PID namespace to its PID 1 is dropped unless PID 1 handles it
  (it handles none), and the runner is not dumpable, so it cannot be traced nor its memory read.
* **One program at a time per sandbox**; a batch is spread over two sandboxes per core (a
  program's path through one sandbox is serial; see :data:`SANDBOXES_PER_CORE`). The
  caller, outside, judges each report itself (:func:`judge`). From one thread it keeps each sandbox
  a job ahead (:data:`PIPELINE`), reads the reports in order, and kills and replaces a sandbox that
  breaks or misses the deadline of the program it runs (running that program once more). Idle
  sandboxes are kept for the next batch; each one ends when the caller closes its stdin or dies,
  and is killed at exit.
"""

from __future__ import annotations

import atexit
import collections
import functools
import json
import math
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

#: Limits of one program.
CALL_TIMEOUT = 0.25  # seconds per function call (the reference functions take microseconds)
MEMORY_BYTES = 256 * 1024 * 1024
CPU_SECONDS = 20
#: Wall-clock allowance of a program beyond its calls (compiling and defining it).
STARTUP_SECONDS = 1.0
#: Extra time the caller waits for a sandbox's answer before it kills the sandbox.
ANSWER_GRACE = 5.0
#: Time a new sandbox has to say it is ready.
READY_TIMEOUT = 30.0
#: Most bytes the caller buffers from one sandbox; more means a broken sandbox.
MAX_ANSWER = 1 << 20
#: Most bytes a program's child may write (the runner kills it beyond; see RUNNER).
RESULT_LIMIT = 65536
#: Jobs handed to a sandbox ahead of its answers, so that its runner never waits for the caller.
PIPELINE = 2
#: Sandboxes per core. With each sandbox a job ahead (PIPELINE), one per core keeps a quiet machine's
#: cores busy, and more only add switching; on a machine whose other programs keep a core busy, more
#: sandboxes win more of the CPU. Measured (batches of 100, programs/s, 1 / 2 / 4 per core): quiet
#: 1255 / 1211 / 1128; one core kept busy 834 / 948 / 983. Two per core is within 4% of the best of
#: both.
SANDBOXES_PER_CORE = 2
NOBODY = 65534

# The trusted runner, PID 1 of a sandbox. It reads one job per line on stdin and reports, for each
# in turn, how its forked child ended and the bytes it wrote (``exit CODE LENGTH``, a newline, the
# bytes), or ``timeout`` (killed at the wall-clock limit) or ``long`` (more than 64 kB written).
# The caller, outside the sandbox, judges the report (:func:`judge`).
RUNNER = r"""
import ctypes, gc, json, os, resource, select, signal, sys, time

libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE = 0: no child may trace us or read our memory
    sys.exit("sandbox runner: prctl(PR_SET_DUMPABLE) failed")
if os.getpid() != 1:
    sys.exit("sandbox runner: not PID 1 of its own PID namespace")
for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(number, signal.SIG_DFL)  # PID 1 without a handler: unreachable from inside
NULL = os.open("/dev/null", os.O_RDWR)
READ_ONLY_NULL = open(os.devnull)  # what programs print to, as before: it fails
CHANNEL_IN, CHANNEL_OUT = sys.stdin.buffer, sys.stdout.buffer
LIMITS = (("RLIMIT_NPROC", 0), ("RLIMIT_FSIZE", 0), ("RLIMIT_CORE", 0), ("RLIMIT_NOFILE", 16),
          ("RLIMIT_MSGQUEUE", 0), ("RLIMIT_MEMLOCK", 0))


class Timeout(BaseException):
    pass


def alarm(signum, frame):
    raise Timeout()


def depth():
    frame, count = sys._getframe(1), 0
    while frame is not None:
        frame, count = frame.f_back, count + 1
    return count


def child(job, write_end):
    # Only /dev/null and the result pipe stay open: the runner's channels are gone.
    for fd in (0, 1, 2):
        os.dup2(NULL, fd)
    os.dup2(write_end, 3)
    os.closerange(4, 1 << 16)
    limits = job["limits"]
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory"], limits["memory"]))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu"], limits["cpu"] + 1))
    for name, value in LIMITS:
        resource.setrlimit(getattr(resource, name), (value, value))
    signal.signal(signal.SIGALRM, alarm)
    # As in the earlier harness, so that honest programs behave exactly as before: a read-only
    # stdout (a print fails), and a recursion limit of 400 frames counted from a module's level.
    sys.stdout = sys.stderr = READ_ONLY_NULL
    sys.setrecursionlimit(400 + depth() - 1)
    entry = {"ok": False, "outputs": None, "error": ""}
    try:
        namespace = {"__name__": "untrusted"}
        signal.setitimer(signal.ITIMER_REAL, limits["call"])
        try:
            exec(compile(job["code"], "<untrusted>", "exec"), namespace)
            function = namespace[job["function"]]
            outputs = []
            for args in job["inputs"]:
                signal.setitimer(signal.ITIMER_REAL, limits["call"])
                outputs.append(repr(function(*args))[:200])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        entry = {"ok": True, "outputs": outputs, "error": ""}
    except Timeout:
        entry["error"] = "timeout"
    except BaseException as error:
        entry["error"] = f"{type(error).__name__}: {str(error)[:200]}"[:300]
    data = (json.dumps(entry) + "\n").encode()
    while data:
        data = data[os.write(3, data):]


def run(job):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            child(job, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    pidfd = os.pidfd_open(pid)
    deadline = time.monotonic() + job["limits"]["wall"]
    data, reading, running, failure = b"", True, True, ""
    while reading or running:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            failure = b"timeout\n"
            break
        waiting = [fd for fd, on in ((read_end, reading), (pidfd, running)) if on]
        ready = select.select(waiting, [], [], remaining)[0]
        if read_end in ready:
            chunk = os.read(read_end, 65536)
            reading = bool(chunk)
            data += chunk
            if len(data) > 65536:
                failure = b"long\n"
                break
        if pidfd in ready:
            running = False
    if failure:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(read_end)
    os.close(pidfd)
    if failure:
        return failure
    # What the child wrote, as it wrote it, and how it ended: the caller judges both.
    return b"exit %d %d\n" % (os.waitstatus_to_exitcode(status), len(data)) + data


# Warm up on a harmless program of our own, then freeze the heap: a forked child then writes to
# (and so copies) far fewer of the runner's pages, which makes each program much cheaper.
WARM_UP = (
    "def f(a, b):\n    x = max(a, b)\n    for i in range(a):\n        if i < b and not i == 2:\n"
    "            x = x + abs(i - b)\n        else:\n            x = min(x, i) * 2\n"
    "    return [x, a if a > b else -b]\n"
)
namespace = {"__name__": "untrusted"}
exec(compile(WARM_UP, "<warm-up>", "exec"), namespace)
json.loads(json.dumps({"ok": True, "outputs": [repr(namespace["f"](5, 3))], "error": ""}))
del namespace
gc.collect()
gc.freeze()
CHANNEL_OUT.write(json.dumps({"ready": True, "uid": os.getuid()}).encode() + b"\n")
CHANNEL_OUT.flush()
for line in iter(CHANNEL_IN.readline, b""):
    CHANNEL_OUT.write(run(json.loads(line)))
    CHANNEL_OUT.flush()
"""


@dataclass(frozen=True)
class Outcome:
    """What one program did: its outputs' reprs on each input, or why it failed."""

    ok: bool
    outputs: list[str] | None
    error: str


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be started here (bubblewrap missing, user namespaces refused...)."""


class _Garbled(Exception):
    """The runner wrote something that is not a report: the sandbox is broken."""


def judge(kind: str, code: int, data: bytes, inputs: int) -> Outcome:
    """The outcome of a program from what the runner saw of its child, judged here, outside the sandbox.

    It is what the child wrote if that is exactly one well-formed line (``ok``, ``outputs``: one
    string of at most 200 characters per input, ``error``) and the child then exited with status 0
    before its deadline; otherwise the program failed.
    """
    if kind == "timeout":
        return Outcome(False, None, "timeout: killed at the wall-clock limit")
    if kind == "long":
        return Outcome(False, None, "sandbox: result too long")
    if code != 0:
        return Outcome(False, None, f"sandbox: program ended with status {code}")
    malformed = Outcome(False, None, "sandbox: malformed result")
    if data.count(b"\n") != 1 or not data.endswith(b"\n"):
        return malformed
    try:
        entry = json.loads(data)
        ok, outputs, error = entry.pop("ok"), entry.pop("outputs"), entry.pop("error")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return malformed
    if entry or not isinstance(ok, bool) or not isinstance(error, str) or len(error) > 300:
        return malformed
    if ok:
        if not (isinstance(outputs, list) and len(outputs) == inputs):
            return malformed
        if not all(isinstance(output, str) and len(output) <= 200 for output in outputs):
            return malformed
    elif outputs is not None:
        return malformed
    return Outcome(ok, outputs, error)


def _world_executable(path: str) -> bool:
    """True if every directory above ``path`` and the file itself can be used by any user."""
    real = Path(os.path.realpath(path))
    if not real.is_file() or not real.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)


@functools.lru_cache(maxsize=1)
def interpreter() -> str:
    """The Python interpreter the sandbox runs: the caller's, or as root one that ``nobody`` can run."""
    own = os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)
    if os.geteuid() != 0:
        return own
    for candidate in (own, "/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate) and _world_executable(candidate):
            return os.path.realpath(candidate)
    raise SandboxUnavailable("no Python interpreter usable by user nobody; install python3 in /usr/bin")


# Run by the sandbox's interpreter, outside the sandbox: where its runtime lies. It loads every
# extension module of the standard library, then lists the shared libraries mapped into it.
RUNTIME_PROBE = r"""
import glob, importlib, os, sys, sysconfig
for path in sorted(glob.glob(os.path.join(sysconfig.get_path("platstdlib"), "lib-dynload", "*.so"))):
    try:
        importlib.import_module(os.path.basename(path).split(".")[0])
    except Exception:
        pass
libraries = set()
with open("/proc/self/maps") as maps:
    for line in maps:
        fields = line.split(None, 5)
        path = fields[5].strip() if len(fields) == 6 else ""
        if ".so" in os.path.basename(path) and os.path.isfile(path):
            libraries.add(os.path.dirname(path))
print(sys.base_prefix, sys.base_exec_prefix, sysconfig.get_path("stdlib"), sep="\n")
print(sysconfig.get_path("platstdlib"), *sorted(libraries), sep="\n")
"""


@functools.lru_cache(maxsize=4)
def _runtime_paths(python: str) -> tuple[str, ...]:
    """What the sandbox shows of ``python``: its installation (for the system's /usr, only its standard
    library) and the directories of the shared libraries it and its extension modules load."""
    answer = subprocess.run(
        [python, "-I", "-S", "-c", RUNTIME_PROBE], capture_output=True, text=True, timeout=60
    )
    if answer.returncode != 0:
        raise SandboxUnavailable(f"{python} does not run: {answer.stderr.strip()}")
    prefix, exec_prefix, *directories = answer.stdout.splitlines()
    installations = [p for p in (prefix, exec_prefix) if os.path.realpath(p) not in ("/usr", "/")]
    return tuple(dict.fromkeys(os.path.realpath(p) for p in installations + directories))


def _inside(path: str, directories: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in directories)


def _bind(path: str) -> list[str]:
    """bwrap arguments that show host ``path`` read-only at the same place (a symlink as a symlink)."""
    if os.path.islink(path):
        return ["--symlink", os.readlink(path), path]
    return ["--ro-bind", path, path]


@functools.lru_cache(maxsize=4)
def sandbox_command(python: str) -> tuple[str, ...]:
    """The command that starts one sandbox running the runner with ``python``."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            "the code sandbox needs bubblewrap: install the 'bubblewrap' package (apt-get install bubblewrap)"
        )
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=30).stdout.split()
    numbers = tuple(int(part) for part in (version[-1] if version else "0").split(".")[:2] if part.isdigit())
    if numbers < (0, 8):  # --disable-userns came with 0.8.0
        raise SandboxUnavailable(
            f"the code sandbox needs bubblewrap 0.8 or later, found {' '.join(version)!r}"
        )
    command = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--new-session", "--as-pid-1"]
    command += ["--clearenv", "--setenv", "LANG", "C.UTF-8"]
    # The dynamic loader's directories (whole: they hold little else, or are symlinks into /usr),
    # then the runtime's own directories and the interpreter.
    bound = [p for p in ("/lib", "/lib32", "/lib64", "/libx32") if os.path.islink(p)]
    bound += [p for p in ("/lib64", "/usr/lib64") if os.path.isdir(p) and not os.path.islink(p)]
    for path in (*_runtime_paths(python), python):
        if not _inside(os.path.realpath(path), [p for p in bound if not os.path.islink(p)]):
            bound.append(path)
    for path in dict.fromkeys(bound):
        command += _bind(path)
    command += ["--dev-bind", "/dev/null", "/dev/null", "--remount-ro", "/", "--chdir", "/"]
    command += [python, "-I", "-S", "-B", "-c", RUNNER]
    return tuple(command)


#: Per architecture: its audit number, and the system calls the sandbox refuses (with EPERM). System V
#: shared memory, message queues and semaphores (their memory is outside RLIMIT_AS and would outlive
#: the program), kernel keyrings (shared by all processes of a user), and tracing or reading another
#: process's memory (the runner is not dumpable anyway).
SECCOMP_DENIED = {
    "x86_64": (
        0xC000003E,
        {
            "shmget": 29,
            "msgget": 68,
            "semget": 64,
            "add_key": 248,
            "request_key": 249,
            "keyctl": 250,
            "ptrace": 101,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
        },
    ),
    "aarch64": (
        0xC00000B7,
        {
            "shmget": 194,
            "msgget": 186,
            "semget": 190,
            "add_key": 217,
            "request_key": 218,
            "keyctl": 219,
            "ptrace": 117,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
        },
    ),
}


@functools.lru_cache(maxsize=1)
def seccomp_filter() -> bytes | None:
    """The classic-BPF seccomp program bwrap loads (see SECCOMP_DENIED), or None on other machines.

    A system call of another architecture (32-bit or x32 calls on x86_64) is refused as well.
    """
    import platform
    import struct

    machine = platform.machine()
    if machine not in SECCOMP_DENIED:
        return None
    arch, denied = SECCOMP_DENIED[machine]
    load, jump_eq, jump_ge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, JGE|K, BPF_RET|K
    allow, refuse = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    numbers = sorted(denied.values())
    count = len(numbers)
    program = [(load, 0, 0, 4), (jump_eq, 1, 0, arch), (ret, 0, 0, refuse), (load, 0, 0, 0)]
    program.append((jump_ge, count + 1, 0, 0x40000000))  # x32 system calls, to the refusal
    program += [(jump_eq, count - index, 0, number) for index, number in enumerate(numbers)]
    program += [(ret, 0, 0, allow), (ret, 0, 0, refuse)]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def _read_json(fd: int, timeout: float) -> object | None:
    """The JSON document written on ``fd`` (read until it parses, or None at end or after ``timeout`` s)."""
    deadline, data = time.monotonic() + timeout, b""
    while (remaining := deadline - time.monotonic()) > 0 and select.select([fd], [], [], remaining)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        try:
            return json.loads(data)
        except ValueError:
            continue
    return None


class _Sandbox:
    """One running sandbox: sends it a job at a time and reads its answer before a deadline.

    Its lifetime is bound to the caller's by its stdin: when the caller closes it or dies, the
    runner reads end-of-file and exits, and its PID namespace with it. :meth:`close` kills it at once.
    """

    def __init__(self) -> None:
        as_root = os.geteuid() == 0
        info_read, info_write = os.pipe()
        command = list(sandbox_command(interpreter()))
        command[1:1] = ["--info-fd", str(info_write)]  # bwrap tells the host PID of the runner there
        passed = [info_write]
        rules = seccomp_filter()
        if rules is not None:  # bwrap reads the filter from a pipe and loads it for the whole sandbox
            rules_read, rules_write = os.pipe()
            os.write(rules_write, rules)
            os.close(rules_write)
            command[1:1] = ["--seccomp", str(rules_read)]
            passed.append(rules_read)
        self._stderr = tempfile.TemporaryFile()
        self._errors = ""
        self._buffer = b""
        self._outgoing = b""
        self._pidfd: int | None = None
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env={"PATH": "/usr/bin:/bin"},
                cwd="/",
                start_new_session=True,
                pass_fds=tuple(passed),
                # As root, enter the sandbox as nobody: RLIMIT_NPROC does not bind root.
                user=NOBODY if as_root else None,
                group=NOBODY if as_root else None,
                extra_groups=[] if as_root else None,
            )
        except OSError as error:
            os.close(info_read)
            self._stderr.close()
            raise SandboxUnavailable(f"the code sandbox did not start: {error}") from error
        finally:
            for fd in passed:
                os.close(fd)
        with os.fdopen(info_read, "rb") as info:
            facts = _read_json(info.fileno(), READY_TIMEOUT)
        try:
            pid = facts["child-pid"]
            pidfd = os.pidfd_open(pid)
            # Only if that PID is still bwrap's child, the runner, is the handle the runner's.
            with open(f"/proc/{pid}/stat") as stat_file:
                parent = int(stat_file.read().rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and not select.select([pidfd], [], [], 0)[0]:
                self._pidfd = pidfd
            else:
                os.close(pidfd)
        except (KeyError, TypeError, ValueError, IndexError, OSError):
            pass
        ready = self._answer(READY_TIMEOUT)
        if self._pidfd is None or not isinstance(ready, dict) or ready.get("ready") is not True:
            self.close(grace=1.0)  # bwrap has exited or will: let it finish writing why
            raise SandboxUnavailable(
                f"the code sandbox did not start: {self.errors() or 'no answer'}\n"
                "It needs bubblewrap and user namespaces for unprivileged users (sysctl "
                "kernel.unprivileged_userns_clone=1 where that exists; on Ubuntu 24.04 and later, "
                "kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for bwrap)."
            )
        os.set_blocking(self.process.stdin.fileno(), False)
        os.set_blocking(self.fileno(), False)

    def alive(self) -> bool:
        return self.process.poll() is None and not select.select([self._pidfd], [], [], 0)[0]

    def send(self, line: bytes) -> bool:
        """Queue one job line for the runner and write what the pipe takes now; False if it is gone."""
        self._outgoing += line
        return self.flush()

    def wants_to_write(self) -> bool:
        return bool(self._outgoing)

    def flush(self) -> bool:
        """Write queued job lines without blocking; False if the sandbox's stdin is gone."""
        try:
            while self._outgoing:
                written = os.write(self.process.stdin.fileno(), self._outgoing)
                self._outgoing = self._outgoing[written:]
        except BlockingIOError:
            pass
        except OSError:
            return False
        return True

    def fileno(self) -> int:
        """The runner's report stream, for :func:`select.select`."""
        return self.process.stdout.fileno()

    def receive(self) -> bool:
        """Read what the runner has written; False at end of stream or past :data:`MAX_ANSWER` bytes."""
        try:
            chunk = os.read(self.fileno(), 1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            return False
        self._buffer += chunk
        return bool(chunk) and len(self._buffer) <= MAX_ANSWER

    def report(self) -> tuple[str, int, bytes] | None:
        """The runner's next complete report, ``(kind, exit code, bytes)``, or None if not all there yet.

        ``kind`` is ``"exit"`` (the child ended with that code, having written those bytes),
        ``"timeout"`` or ``"long"``. Raises :class:`_Garbled` on anything else (a broken runner).
        """
        end = self._buffer.find(b"\n")
        if end < 0:
            if len(self._buffer) > 64:
                raise _Garbled
            return None
        header = self._buffer[:end].split(b" ")
        if header in ([b"timeout"], [b"long"]):
            self._buffer = self._buffer[end + 1 :]
            return header[0].decode(), 0, b""
        try:
            kind, code, length = header[0], int(header[1]), int(header[2])
        except (IndexError, ValueError) as error:
            raise _Garbled from error
        if kind != b"exit" or not 0 <= length <= RESULT_LIMIT or len(header) != 3:
            raise _Garbled
        if len(self._buffer) < end + 1 + length:
            return None
        data = self._buffer[end + 1 : end + 1 + length]
        self._buffer = self._buffer[end + 1 + length :]
        return "exit", code, data

    def _answer(self, timeout: float) -> object | None:
        """The next line the sandbox writes, parsed as JSON; None if none in ``timeout`` s, or garbage."""
        deadline = time.monotonic() + timeout
        stdout = self.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or len(self._buffer) > MAX_ANSWER:
                return None
            if not select.select([stdout], [], [], remaining)[0]:
                return None
            chunk = os.read(stdout, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return None

    def has_unread(self) -> bool:
        """True if the runner wrote more than it was asked for."""
        return bool(self._buffer)

    def errors(self) -> str:
        """What bwrap or the runner wrote on stderr (why a sandbox did not start)."""
        return self._errors

    def close(self, grace: float = 0.0) -> None:
        """End the sandbox: let an idle one exit within ``grace`` seconds, then kill what is left.

        Killing its PID 1 kills every process of its PID namespace; bwrap then ends too.
        """
        if grace > 0:
            try:
                self.process.stdin.close()  # the runner reads end-of-file and exits
                self.process.wait(grace)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except OSError:
                pass
        if self.process.returncode is None:  # not reaped yet, so its group cannot be another's
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process.wait()
        self.forget()

    def forget(self) -> None:
        """Close this process's handles on the sandbox (in a forked child: the sandbox is the parent's)."""
        if not self._stderr.closed:
            self._stderr.seek(0)
            self._errors = self._stderr.read(4096).decode(errors="replace").strip()
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            try:
                stream.close()
            except OSError:
                pass
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class _Pool:
    """Idle sandboxes kept between calls, so that a batch does not wait for sandboxes to start."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[_Sandbox] = []

    def take(self) -> _Sandbox:
        with self.lock:
            while self.idle:
                sandbox = self.idle.pop()
                if sandbox.alive():
                    return sandbox
                sandbox.close()
        return _Sandbox()

    def give_back(self, sandbox: _Sandbox) -> None:
        with self.lock:
            if len(self.idle) < most_sandboxes():
                self.idle.append(sandbox)
                return
        sandbox.close(grace=1.0)

    def close(self) -> None:
        """Kill every idle sandbox (at exit; a later call starts new ones)."""
        with self.lock:
            idle, self.idle = self.idle, []
        for sandbox in idle:
            sandbox.close(grace=1.0)

    def forget(self) -> None:
        """In a forked child: drop the parent's sandboxes without touching them."""
        self.lock = threading.Lock()
        idle, self.idle = self.idle, []
        for sandbox in idle:
            sandbox.forget()


_POOL = _Pool()
atexit.register(_POOL.close)
os.register_at_fork(after_in_child=_POOL.forget)


def close_sandboxes() -> None:
    """Stop the idle sandboxes now (they are stopped at exit anyway)."""
    _POOL.close()


def most_sandboxes() -> int:
    """Sandboxes a batch uses at most, and the pool keeps: :data:`SANDBOXES_PER_CORE` per available core."""
    return SANDBOXES_PER_CORE * len(os.sched_getaffinity(0))


def default_workers(programs: int) -> int:
    """Sandboxes for a batch: :func:`most_sandboxes`, but no more than one per 8 programs."""
    return max(1, min(most_sandboxes(), math.ceil(programs / 8)))


def run_functions(
    programs: list[str],
    inputs: list[list[list[object]]],
    function: str = "f",
    call_timeout: float = CALL_TIMEOUT,
    memory: int = MEMORY_BYTES,
    cpu_seconds: int = CPU_SECONDS,
    workers: int | None = None,
) -> list[Outcome]:
    """Run each untrusted program, then call its ``function`` on each of its inputs, in the sandbox.

    Returns one :class:`Outcome` per program. Each program runs in its own process with its own
    limits (``call_timeout`` per call, ``memory`` bytes of address space, ``cpu_seconds`` of CPU
    time); whatever it does, it fails alone. The programs are spread over ``workers`` sandboxes
    running in parallel (by default :func:`default_workers`). Raises :class:`SandboxUnavailable` if no
    sandbox can be started here.
    """
    if len(programs) != len(inputs):
        raise ValueError(f"{len(programs)} programs but {len(inputs)} input lists")
    if not programs:
        return []
    walls = [call_timeout * (len(values) + 1) + STARTUP_SECONDS for values in inputs]
    lines = [
        json.dumps(
            {
                "code": code,
                "inputs": values,
                "function": function,
                "limits": {"call": call_timeout, "memory": memory, "cpu": cpu_seconds, "wall": wall},
            }
        ).encode()
        + b"\n"
        for code, values, wall in zip(programs, inputs, walls, strict=True)
    ]
    count = min(workers or default_workers(len(programs)), len(programs))
    return _Batch(lines, walls, [len(values) for values in inputs]).run(count)


class _Lane:
    """One sandbox of a batch, the programs handed to it (in order) and when its first one must end."""

    def __init__(self, sandbox: _Sandbox) -> None:
        self.sandbox: _Sandbox | None = sandbox
        self.queued: collections.deque[int] = collections.deque()
        self.deadline = math.inf


class _Batch:
    """Runs a batch over a few sandboxes from this one thread: each gets up to :data:`PIPELINE` jobs
    ahead, answers in order, and is replaced if it breaks or misses the deadline of the program it
    is running (that program is then run once more; the others queued there go back to the queue)."""

    def __init__(self, lines: list[bytes], walls: list[float], inputs: list[int]) -> None:
        self.lines, self.walls, self.inputs = lines, walls, inputs
        self.pending = collections.deque(range(len(lines)))
        self.outcomes: list[Outcome | None] = [None] * len(lines)
        self.retried: set[int] = set()
        self.left = len(lines)

    def run(self, count: int) -> list[Outcome]:
        lanes: list[_Lane] = []
        try:
            for _ in range(count):
                lanes.append(_Lane(_POOL.take()))
            while self.left:
                self._hand_out(lanes)
                self._wait(lanes)
        except BaseException:
            for lane in lanes:  # interrupted: a sandbox with programs in hand is in an unknown state
                if lane.sandbox is not None and lane.queued:
                    lane.sandbox.close()
                    lane.sandbox = None
            raise
        finally:
            for lane in lanes:
                if lane.sandbox is not None:
                    _POOL.give_back(lane.sandbox)
        return [outcome for outcome in self.outcomes if outcome is not None]

    def _hand_out(self, lanes: list[_Lane]) -> None:
        for lane in lanes:
            while self.pending and len(lane.queued) < PIPELINE:
                if lane.sandbox is None:
                    lane.sandbox = _POOL.take()
                index = self.pending.popleft()
                if not lane.queued:
                    lane.deadline = time.monotonic() + self.walls[index] + ANSWER_GRACE
                lane.queued.append(index)
                if not lane.sandbox.send(self.lines[index]):
                    self._replace(lane)
                    break

    def _wait(self, lanes: list[_Lane]) -> None:
        busy = [lane for lane in lanes if lane.queued and lane.sandbox is not None]
        if not busy:  # every sandbox broke as it was handed its jobs: hand them out again
            return
        timeout = max(0.0, min(lane.deadline for lane in busy) - time.monotonic())
        sandboxes = [lane.sandbox for lane in busy]
        writing = [sandbox for sandbox in sandboxes if sandbox.wants_to_write()]
        readable, writable, _ = select.select(sandboxes, writing, [], timeout)
        for lane in busy:
            sandbox = lane.sandbox
            assert sandbox is not None
            healthy = sandbox.flush() if sandbox in writable else True
            if healthy and sandbox in readable:
                healthy = sandbox.receive()
                try:
                    while lane.queued and (report := sandbox.report()) is not None:
                        index = lane.queued.popleft()
                        self.outcomes[index] = judge(*report, self.inputs[index])
                        self.left -= 1
                        if lane.queued:
                            lane.deadline = time.monotonic() + self.walls[lane.queued[0]] + ANSWER_GRACE
                except _Garbled:
                    healthy = False
                healthy = healthy and not (not lane.queued and sandbox.has_unread())
            if lane.queued and (not healthy or time.monotonic() > lane.deadline):
                self._replace(lane)
            elif not healthy:
                sandbox.close()
                lane.sandbox = None

    def _replace(self, lane: _Lane) -> None:
        """Close a broken sandbox: its current program runs again once (then fails), the rest go back."""
        assert lane.sandbox is not None
        lane.sandbox.close()
        lane.sandbox = None
        current, *others = lane.queued
        lane.queued.clear()
        self.pending.extendleft(reversed(others))
        if current in self.retried:
            self.outcomes[current] = Outcome(False, None, "sandbox: no answer, sandbox replaced")
            self.left -= 1
        else:
            self.retried.add(current)
            self.pending.appendleft(current)
