"""Attacks on the code sandbox (issue 14, section 1): each one must fail, and fail alone.

Every attack first disables whatever in-process guard it can reach (refusal lists, timers, signal
handlers), so what stops it must be the operating system. The honest programs run beside an attack
must give exactly the results they give alone, and nothing may change on the host.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from afterlearner.experiments.code_translation import sandbox
from afterlearner.experiments.code_translation.sandbox import Outcome, run_functions

INPUTS = [[3], [4]]
HONEST = [
    ("def f(a):\n    return a * 2\n", ["6", "8"]),
    ("def f(a):\n    return [a, -a]\n", ["[3, -3]", "[4, -4]"]),
    ("def f(a):\n    x = 0\n    for i in range(a):\n        x = x + i\n    return x\n", ["3", "6"]),
]

# Disables the in-process guards a harness may have: empties every refusal list or set, zeroes
# every flag mask in the harness's namespace, stops its timer and ignores its signals.
NEUTRALIZE = """
import signal, sys
_main = sys.modules.get("__main__")
for _name, _value in list(vars(_main).items()) if _main is not None else []:
    if isinstance(_value, (tuple, frozenset)):
        setattr(_main, _name, type(_value)())
    elif isinstance(_value, set):
        _value.clear()
    elif type(_value) is int:
        setattr(_main, _name, 0)
for _signal in (signal.SIGALRM, signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):
    signal.signal(_signal, signal.SIG_IGN)
signal.setitimer(signal.ITIMER_REAL, 0)
"""


def attack(body: str) -> str:
    """A program that disables the in-process guards, then defines ``f`` as ``body``."""
    return NEUTRALIZE + body


def run(programs: list[str], **limits) -> list[Outcome]:
    return run_functions(programs, [INPUTS] * len(programs), **limits)


def between_honest(program: str, **limits) -> Outcome:
    """Run ``program`` between honest ones; their results must be what they are alone."""
    (first, first_out), (second, second_out), (third, third_out) = HONEST
    outcomes = run([first, program, second, program, third], **limits)
    assert outcomes[0] == Outcome(True, first_out, "")
    assert outcomes[2] == Outcome(True, second_out, "")
    assert outcomes[4] == Outcome(True, third_out, "")
    assert outcomes[1].ok == outcomes[3].ok
    assert "sandbox replaced" not in outcomes[1].error  # the program did not break its sandbox either
    return outcomes[1]


@pytest.fixture
def shared_tmp():
    """A world-readable directory in /tmp holding a world-readable file, like another user's store."""
    directory = Path(tempfile.mkdtemp(prefix="afterlearner-fault-", dir="/tmp"))
    directory.chmod(0o755)
    store = directory / "store.sqlite"
    store.write_text("secret rows")
    store.chmod(0o644)
    open_dir = directory / "open"
    open_dir.mkdir()
    open_dir.chmod(0o1777)  # like /tmp: anyone may create files here
    shared = open_dir / "shared.txt"
    shared.write_text("keep me")
    shared.chmod(0o666)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


FORGE = """
import json, os, sys
LINE = json.dumps({"ok": True, "outputs": ["42", "42"], "error": ""}) + "\\n"
def f(a):
    main = sys.modules.get("__main__")
    for name in dir(main):  # any stream the harness left in reach
        stream = getattr(main, name, None)
        if callable(getattr(stream, "write", None)) and callable(getattr(stream, "flush", None)):
            try:
                stream.write(LINE * 6)
                stream.flush()
            except Exception:
                pass
    for fd in range(256):  # and every file descriptor
        try:
            os.write(fd, (LINE * 6).encode())
        except OSError:
            pass
    raise RuntimeError("the program itself failed")
"""


def test_a_program_cannot_forge_its_own_failure_or_another_programs_result():
    outcome = between_honest(attack(FORGE))
    assert not outcome.ok and outcome.outputs is None


def test_disabling_the_in_process_guards_gives_no_ctypes_escape_nor_files_in_tmp():
    target = Path("/tmp") / f"afterlearner-escape-{uuid.uuid4().hex}"
    program = attack(
        f"""
import ctypes, os
def f(a):
    libc = ctypes.CDLL(None, use_errno=True)
    made = libc.mkdir({str(target)!r}.encode(), 0o777)
    try:
        fd = os.open({str(target) + "-file"!r}, os.O_CREAT | os.O_WRONLY, 0o666)
        os.write(fd, b"x")
        created = True
    except OSError:
        created = False
    return [made, created]
"""
    )
    try:
        outcome = between_honest(program)
        assert not target.exists() and not Path(f"{target}-file").exists()
        assert outcome.ok and outcome.outputs == ["[-1, False]"] * 2  # ctypes loads, the kernel refuses
    finally:
        shutil.rmtree(target, ignore_errors=True)
        Path(f"{target}-file").unlink(missing_ok=True)


def test_world_readable_files_cannot_be_read(shared_tmp):
    for path in ("/etc/passwd", str(shared_tmp / "store.sqlite"), "/proc/1/environ", "/proc/self/mountinfo"):
        program = attack(f"import os\ndef f(a):\n    return open({path!r}).read(40)\n")
        outcome = between_honest(program)
        assert not outcome.ok and outcome.error.startswith(("FileNotFoundError", "PermissionError")), path


def test_the_filesystem_holds_only_the_python_runtime():
    program = """
import os
def f(a):
    system = ("/etc", "/tmp", "/home", "/var", "/proc", "/sys", "/run", "/usr/share", "/usr/local/bin")
    return [sorted(os.listdir("/")), os.listdir("/dev"), [p for p in system if os.path.lexists(p)]]
"""
    outcome = between_honest(program)
    top, devices, present = eval(outcome.outputs[0])  # noqa: S307 - lists printed by repr
    runtime = {
        Path(sandbox.interpreter()).parts[1],
        *(Path(p).parts[1] for p in sandbox._runtime_paths(sandbox.interpreter())),
    }
    assert set(top) <= {"dev", "lib", "lib32", "lib64", "libx32", "usr"} | runtime
    assert devices == ["null"] and present == []


def test_nothing_can_be_written_anywhere(shared_tmp):
    name = f"afterlearner-write-{uuid.uuid4().hex}"
    targets = [
        f"/tmp/{name}",
        str(shared_tmp / "open" / name),
        f"/dev/shm/{name}",
        f"/var/tmp/{name}",
        f"/{name}",
        name,  # the current directory
    ]
    program = attack(
        f"""
import os
def f(a):
    done = []
    for path in {targets!r} + [os.path.join(os.environ.get("HOME", "/"), {name!r})]:
        for step in (lambda: os.mkdir(path + ".d"),
                     lambda: os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o666)),
                     lambda: os.symlink("/", path + ".l")):
            try:
                step()
                done.append(path)
            except OSError:
                pass
    try:
        with open({str(shared_tmp / "open" / "shared.txt")!r}, "a") as shared:
            shared.write("changed")
        done.append("shared")
    except OSError:
        pass
    return done
"""
    )
    try:
        outcome = between_honest(program)
        assert outcome.ok and outcome.outputs == ["[]", "[]"]
        assert (shared_tmp / "open" / "shared.txt").read_text() == "keep me"
        for target in targets[:4]:
            for suffix in ("", ".d", ".l"):
                assert not os.path.lexists(target + suffix), target + suffix
    finally:
        for target in targets[:4]:
            for suffix in ("", ".d", ".l"):
                path = Path(target + suffix)
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                elif os.path.lexists(path):
                    path.unlink()


def test_no_network_connection_tcp_or_unix_socket():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    directory = Path(tempfile.mkdtemp(prefix="afterlearner-sock-", dir="/tmp"))
    directory.chmod(0o755)
    unix_path = str(directory / "service.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    os.chmod(unix_path, 0o777)  # like a local service anyone may talk to
    unix.listen(4)
    program = attack(
        f"""
import socket
def f(a):
    reached = []
    for family, address in ((socket.AF_INET, ("127.0.0.1", {port})), (socket.AF_UNIX, {unix_path!r})):
        try:
            client = socket.socket(family)
            client.settimeout(1)
            client.connect(address)
            reached.append(str(family))
        except OSError:
            pass
    return reached
"""
    )
    try:
        outcome = between_honest(program)
        assert outcome.ok and outcome.outputs == ["[]", "[]"]
        for listener in (server, unix):
            listener.settimeout(0.2)
            with pytest.raises(TimeoutError):
                listener.accept()  # nobody connected
    finally:
        server.close()
        unix.close()
        shutil.rmtree(directory, ignore_errors=True)


def _marked(marker: str) -> list[str]:
    listing = subprocess.run(["ps", "-e", "-o", "args="], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if marker in line]


@pytest.mark.parametrize("how", ["os.fork", "os.posix_spawn", "subprocess", "thread", "ctypes fork"])
def test_a_fork_bomb_starts_no_process(how):
    marker = f"afterlearner-bomb-{uuid.uuid4().hex}"
    spawn = {
        "os.fork": "pid = os.fork()\nif pid == 0:\n    os.execv(sys.executable, ARGV)",
        "os.posix_spawn": "os.posix_spawn(sys.executable, ARGV, {})",
        "subprocess": "import subprocess\nsubprocess.Popen(ARGV)",
        "thread": "import threading\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()",
        "ctypes fork": (
            "import ctypes\npid = ctypes.CDLL(None).fork()\n"
            "if pid == 0:\n    os.execv(sys.executable, ARGV)\n"
            "if pid < 0:\n    raise OSError('fork failed')"
        ),
    }[how]
    program = attack(
        "import os, sys, time\n"
        f"ARGV = [sys.executable, '-c', 'import time; time.sleep(30)', {marker!r}]\n"
        "def spawn():\n" + textwrap.indent(spawn, "    ") + "\n"
        "def f(a):\n    started = 0\n    for _ in range(30):\n        try:\n            spawn()\n"
        "        except (OSError, RuntimeError):\n            break\n"
        "        started += 1\n    return started\n"
    )
    outcome = between_honest(program)
    assert outcome.outputs in (None, ["0", "0"])
    assert not _marked(marker)


def test_a_4_gb_allocation_fails_alone():
    program = attack(
        """
import ctypes, mmap
def f(a):
    tries = []
    try:
        tries.append(len(bytearray(4 * 2**30)))
    except MemoryError:
        tries.append(0)
    try:
        tries.append(len(mmap.mmap(-1, 4 * 2**30)))
    except OSError:
        tries.append(0)
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    tries.append(libc.malloc(4 * 2**30) or 0)
    return tries
"""
    )
    outcome = between_honest(program)
    assert outcome.outputs in (None, ["[0, 0, 0]"] * 2)


def test_memory_outside_the_address_space_limit_cannot_be_taken():
    program = attack(
        """
import ctypes, os
def f(a):
    libc = ctypes.CDLL(None, use_errno=True)
    segment = libc.shmget(0, 1 << 30, 0o1600)  # System V shared memory: not counted in RLIMIT_AS
    queue = libc.msgget(0, 0o1600)
    fd = os.memfd_create("grow")
    try:
        os.ftruncate(fd, 1 << 30)  # a memory file: bounded by RLIMIT_FSIZE
        grown = True
    except OSError:
        grown = False
    return [segment, queue, grown]
"""
    )
    outcome = between_honest(program)
    if sandbox.seccomp_filter() is None:
        pytest.skip(f"no seccomp filter for {platform.machine()}: System V IPC stays available")
    assert outcome.outputs == ["[-1, -1, False]"] * 2


@pytest.mark.parametrize("wait", ["while True:\n        pass", "import time\n    time.sleep(3600)"])
def test_a_program_ignoring_signals_fails_alone_and_quickly(wait):
    program = attack(f"def f(a):\n    {wait}\n")
    started = time.perf_counter()
    outcome = between_honest(program, call_timeout=0.2, cpu_seconds=5)
    assert not outcome.ok
    assert time.perf_counter() - started < 12


def test_the_program_sees_no_other_process():
    program = attack(
        f"""
import os
def f(a):
    seen = []
    for pid in range(1, 32769):
        try:
            os.kill(pid, 0)
            seen.append(pid)
        except ProcessLookupError:
            pass
        except OSError:  # it exists, but may not be signalled
            seen.append(pid)
    others = [pid for pid in seen if pid != os.getpid()]
    return [len(others), {os.getpid()} in others]
"""
    )
    outcome = between_honest(program, call_timeout=2.0)  # 32768 system calls, on a loaded machine
    assert outcome.ok, outcome.error
    count, sees_the_caller = eval(outcome.outputs[0])  # noqa: S307 - a list printed by repr
    assert not sees_the_caller and count <= 1  # at most its own parent


ASSAULTS = {
    "kill every process it may": "import os, signal\ndef f(a):\n    os.kill(-1, signal.SIGKILL)\n",
    "kill its parent": "import os, signal\ndef f(a):\n    os.kill(os.getppid(), signal.SIGKILL)\n",
    "stop its parent": (
        "import os, signal\ndef f(a):\n    os.kill(os.getppid(), signal.SIGSTOP)\n    return a\n"
    ),
    "interrupt pid 1": "import os, signal\ndef f(a):\n    os.kill(1, signal.SIGINT)\n    return a\n",
    "take its parent's descriptors or memory": (
        "import ctypes, os\ndef f(a):\n    libc = ctypes.CDLL(None)\n    pidfd = libc.syscall(434, 1, 0)\n"
        "    stolen = [libc.syscall(438, pidfd, fd, 0) for fd in range(8)]\n"
        "    buffer = ctypes.create_string_buffer(64)\n"
        "    local = (ctypes.c_void_p * 2)(ctypes.addressof(buffer), 64)\n"
        "    remote = (ctypes.c_void_p * 2)(0x400000, 64)\n"
        "    return [max(stolen), libc.syscall(310, 1, local, 1, remote, 1, 0)]\n"
    ),
    "ptrace its parent": (
        "import ctypes, os\ndef f(a):\n    libc = ctypes.CDLL(None)\n"
        "    return [libc.ptrace(16, os.getppid(), 0, 0), libc.ptrace(16, 1, 0, 0)]\n"
    ),
    "close every descriptor": "import os\nos.closerange(0, 4096)\ndef f(a):\n    return a\n",
    "exit early": "import os\nos._exit(0)\n",
    "flood its output": "import os\ndef f(a):\n    while True:\n        os.write(1, b'{' * 65536)\n",
    "recurse": "def f(a):\n    return f(a)\n",
}


@pytest.mark.parametrize("name", sorted(ASSAULTS))
def test_an_assault_on_the_harness_changes_no_other_result(name):
    if name == "kill every process it may" and os.geteuid() != 0:
        pytest.skip("as an ordinary user, a sandbox letting this through would kill all the user's processes")
    outcome = between_honest(attack(ASSAULTS[name]), call_timeout=0.2, cpu_seconds=5)
    if name in ("ptrace its parent", "take its parent's descriptors or memory"):
        assert outcome.outputs == ["[-1, -1]"] * 2
    assert run([HONEST[0][0]])[0].ok  # and the next batch runs
