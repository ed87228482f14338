"""The sandbox for generated code: loops, fork bombs, huge allocations, files and sockets fail alone;
sandboxes are reused, replaced when broken, and a sandbox that cannot start is a clear error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from afterlearner.experiments.code_translation import sandbox
from afterlearner.experiments.code_translation.sandbox import (
    NOBODY,
    Outcome,
    SandboxUnavailable,
    close_sandboxes,
    run_functions,
)

GOOD = "def f(a):\n    return a * 2\n"


def run(*programs: str, **limits) -> list:
    return run_functions(list(programs), [[[3], [4]]] * len(programs), **limits)


def test_plain_functions_run():
    outcomes = run(GOOD, "def f(a):\n    return [a, 'x']\n")
    assert outcomes[0].ok and outcomes[0].outputs == ["6", "8"]
    assert outcomes[1].outputs == ["[3, 'x']", "[4, 'x']"]


def test_syntax_errors_and_missing_function_fail_alone():
    outcomes = run("def f(a) return", "def g(a):\n    return a\n", GOOD)
    assert "SyntaxError" in outcomes[0].error and "KeyError" in outcomes[1].error
    assert outcomes[2].ok


def test_an_infinite_loop_times_out_and_the_next_program_runs():
    started = time.perf_counter()
    outcomes = run("def f(a):\n    while True:\n        pass\n", GOOD, call_timeout=0.3)
    assert outcomes[0].error == "timeout" and outcomes[1].ok
    assert time.perf_counter() - started < 10


def test_a_loop_that_swallows_the_timer_is_killed_and_the_caller_goes_on():
    stubborn = (
        "def f(a):\n    while True:\n        try:\n            while True:\n                pass\n"
        "        except BaseException:\n            pass\n"
    )
    started = time.perf_counter()
    outcomes = run(GOOD, stubborn, GOOD, call_timeout=0.2, cpu_seconds=2)
    assert outcomes[0].ok and not outcomes[1].ok and outcomes[2].ok  # only the stubborn program fails
    assert outcomes[1].error == "timeout: killed at the wall-clock limit"
    assert time.perf_counter() - started < 10
    assert run(GOOD)[0].ok  # the next sandbox works


def _processes() -> int:
    return len(subprocess.run(["ps", "-e", "-o", "pid="], capture_output=True, text=True).stdout.split())


@pytest.mark.parametrize(
    "bomb",
    [
        "import os\nwhile True:\n    os.fork()\n",
        "import subprocess\nwhile True:\n    subprocess.Popen(['sleep', '100'])\n",
        "import os\nassert os.system('sleep 100 &') == 0\n",
    ],
)
def test_a_fork_bomb_cannot_start_any_process(bomb):
    before = _processes()
    outcomes = run(bomb + GOOD, GOOD)
    assert not outcomes[0].ok and outcomes[0].error.startswith(("BlockingIOError", "AssertionError"))
    assert outcomes[1].ok
    assert _processes() <= before + 2  # nothing left running (slack for unrelated processes)


def test_kernel_limits_user_and_environment(monkeypatch):
    monkeypatch.setenv("AFTERLEARNER_SECRET", "token")
    probe = (
        "import resource, os\ndef f(a):\n    return [resource.getrlimit(resource.RLIMIT_NPROC), "
        "resource.getrlimit(resource.RLIMIT_FSIZE), os.getuid(), sorted(os.environ)]\n"
    )
    nproc, fsize, uid, environment = eval(run(probe)[0].outputs[0])  # noqa: S307 - a list literal we built
    assert nproc == (0, 0) and fsize == (0, 0)
    if os.geteuid() == 0:
        assert uid == NOBODY  # RLIMIT_NPROC does not bind root: the child runs as nobody
    else:
        assert uid == os.geteuid()
    assert "AFTERLEARNER_SECRET" not in environment and set(environment) <= {"LANG", "PWD"}


def test_a_huge_allocation_fails_alone():
    outcomes = run(
        "def f(a):\n    return len(bytearray(10**11))\n", "def f(a):\n    return len([0] * 10**10)\n", GOOD
    )
    assert "MemoryError" in outcomes[0].error and "MemoryError" in outcomes[1].error
    assert outcomes[2].ok


def test_files_cannot_be_written_removed_or_truncated(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    attacks = [
        f"open({str(target)!r}, 'w').write('gone')",
        f"open({str(target)!r}, 'a').write('more')",
        f"__import__('os').remove({str(target)!r})",
        f"__import__('os').open({str(target)!r}, __import__('os').O_TRUNC | __import__('os').O_WRONLY)",
        "open('here.txt', 'w').write('x')",
        f"open({str(tmp_path / 'new.txt')!r}, 'x')",
    ]
    outcomes = run(*[f"def f(a):\n    {attack}\n    return a\n" for attack in attacks], GOOD)
    assert all(not outcome.ok for outcome in outcomes[:-1]) and outcomes[-1].ok
    assert target.read_text() == "keep me" and not (tmp_path / "new.txt").exists()


def test_the_caller_files_are_not_there(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("token")
    secret.chmod(0o644)
    outcome = run(f"def f(a):\n    return open({str(secret)!r}).read()\n")[0]
    assert not outcome.ok and outcome.error.startswith("FileNotFoundError")


def test_no_network(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        attempts = [
            f"import socket\ndef f(a):\n    return socket.create_connection(('127.0.0.1', {port}), 1)\n",
            f"import _socket\ndef f(a):\n    return _socket.socket().connect(('127.0.0.1', {port}))\n",
            f"def f(a):\n    import urllib.request\n    return urllib.request.urlopen('http://127.0.0.1:{port}/')\n",
        ]
        outcomes = run(*attempts)
        assert all(not outcome.ok for outcome in outcomes)
        server.settimeout(0.5)
        with pytest.raises(TimeoutError):
            server.accept()  # nobody connected
    finally:
        server.close()


def test_inputs_must_match_programs():
    with pytest.raises(ValueError, match="input lists"):
        run_functions([GOOD], [])


def test_results_keep_the_order_of_the_programs_whatever_the_number_of_sandboxes():
    programs = [f"def f(a):\n    return a + {k}\n" for k in range(12)]
    expected = [[str(3 + k), str(4 + k)] for k in range(12)]
    for workers in (1, 3):
        assert [o.outputs for o in run(*programs, workers=workers)] == expected
    assert run_functions([], []) == []


def test_idle_sandboxes_are_reused_and_a_dead_one_is_replaced():
    close_sandboxes()
    assert run(GOOD)[0].ok
    (idle,) = sandbox._POOL.idle
    assert run(GOOD)[0].ok and sandbox._POOL.idle == [idle]  # the same sandbox ran the second batch
    signal.pidfd_send_signal(idle._pidfd, signal.SIGKILL)  # its runner dies while idle
    assert run(GOOD)[0] == Outcome(True, ["6", "8"], "")
    assert sandbox._POOL.idle and sandbox._POOL.idle[0] is not idle


def test_a_sandbox_that_breaks_during_a_program_is_replaced_and_the_program_run_again(monkeypatch):
    close_sandboxes()
    broken = []
    original = sandbox._Sandbox.send

    def break_the_first(self, line):
        if not broken:  # the runner dies just as it gets its first program
            broken.append(self)
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        return original(self, line)

    monkeypatch.setattr(sandbox._Sandbox, "send", break_the_first)
    assert run(GOOD) == [Outcome(True, ["6", "8"], "")]
    assert broken and broken[0] not in sandbox._POOL.idle


def test_without_bubblewrap_the_error_says_what_to_install(monkeypatch):
    close_sandboxes()
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.sandbox_command.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
            run(GOOD)
    finally:
        sandbox.sandbox_command.cache_clear()


def test_a_sandbox_that_cannot_start_is_an_error_not_failed_programs(monkeypatch):
    close_sandboxes()
    command = sandbox.sandbox_command(sandbox.interpreter())
    failing = (command[0], "--no-such-option", *command[1:])
    monkeypatch.setattr(sandbox, "sandbox_command", lambda python: failing)
    with pytest.raises(SandboxUnavailable, match="no-such-option(.|\n)*user namespaces"):
        run(GOOD)


def test_a_bubblewrap_too_old_for_the_sandbox_is_a_clear_error(monkeypatch, tmp_path):
    close_sandboxes()
    old = tmp_path / "bwrap"
    old.write_text("#!/bin/sh\necho 'bubblewrap 0.6.1'\n")
    old.chmod(0o755)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: str(old))
    sandbox.sandbox_command.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="bubblewrap 0.8 or later, found 'bubblewrap 0.6.1'"):
            run(GOOD)
    finally:
        sandbox.sandbox_command.cache_clear()


def test_honest_programs_meet_the_same_limits_as_before():
    """The recursion limit and the read-only stdout of the earlier single-process harness, exactly."""
    recursive = "def f(a):\n    return 0 if a == 0 else 1 + f(a - 1)\n"
    deep, too_deep, printing = run_functions(
        [recursive, recursive, "def f(a):\n    print(a)\n    return a\n"], [[[398]], [[399]], [[1]]]
    )
    assert deep == Outcome(True, ["398"], "")
    assert too_deep.error.startswith("RecursionError") and printing.error.startswith("UnsupportedOperation")


def test_a_sandbox_that_breaks_with_programs_queued_runs_each_of_them_once_more_at_most(monkeypatch):
    close_sandboxes()
    killed = []
    original = sandbox._Sandbox.send

    def break_on_the_second_job(self, line):
        sent = original(self, line)
        if len(killed) < 1 and self.wants_to_write() is False and b"+ 1\\n" in line:
            killed.append(self)  # two jobs are in its hands: it dies with both
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        return sent

    monkeypatch.setattr(sandbox._Sandbox, "send", break_on_the_second_job)
    programs = [f"def f(a):\n    return a + {k}\n" for k in range(5)]
    assert [o.outputs for o in run(*programs, workers=1)] == [[str(3 + k), str(4 + k)] for k in range(5)]
    assert killed and killed[0] not in sandbox._POOL.idle


def _reports(data: bytes) -> list:
    fake = object.__new__(sandbox._Sandbox)
    fake._buffer = data
    found = []
    while (report := fake.report()) is not None:
        found.append(report)
    return found + [fake._buffer]


def test_the_runner_reports_are_read_in_order_and_anything_else_breaks_the_sandbox():
    line = b'{"ok": true, "outputs": ["6"], "error": ""}\n'
    stream = b"exit 0 %d\n%btimeout\nlong\nexit -9 0\nexit 0 5\nab" % (len(line), line)
    assert _reports(stream) == [
        ("exit", 0, line),
        ("timeout", 0, b""),
        ("long", 0, b""),
        ("exit", -9, b""),
        b"exit 0 5\nab",  # incomplete: wait for the rest
    ]
    for garbage in (b"ok\n", b"exit 0\n", b"exit x 1\n", b"exit 0 99999999\n", b"{" * 100, b"exit 0 1 2\n"):
        with pytest.raises(sandbox._Garbled):
            _reports(garbage)


@pytest.mark.parametrize(
    ("report", "error"),
    [
        (("timeout", 0, b""), "timeout: killed at the wall-clock limit"),
        (("long", 0, b""), "sandbox: result too long"),
        (
            ("exit", -9, b'{"ok": true, "outputs": ["1", "2"], "error": ""}\n'),
            "sandbox: program ended with status -9",
        ),
        (("exit", 0, b'{"ok": true, "outputs": ["1", "2"], "error": ""}\n' * 2), "sandbox: malformed result"),
        (("exit", 0, b'{"ok": true, "outputs": ["1"], "error": ""}\n'), "sandbox: malformed result"),
        (("exit", 0, b'{"ok": true, "outputs": [1, 2], "error": ""}\n'), "sandbox: malformed result"),
        (("exit", 0, b'{"ok": false, "outputs": ["1", "2"], "error": ""}\n'), "sandbox: malformed result"),
        (
            ("exit", 0, b'{"ok": true, "outputs": ["1", "2"], "error": "", "x": 1}\n'),
            "sandbox: malformed result",
        ),
        (("exit", 0, b"[" * 30000 + b"]" * 30000 + b"\n"), "sandbox: malformed result"),
        (("exit", 0, b""), "sandbox: malformed result"),
    ],
)
def test_the_caller_judges_what_a_child_wrote_and_how_it_ended(report, error):
    assert sandbox.judge(*report, inputs=2) == Outcome(False, None, error)


def test_a_well_formed_line_and_status_0_is_the_outcome():
    good = b'{"ok": true, "outputs": ["1", "2"], "error": ""}\n'
    assert sandbox.judge("exit", 0, good, inputs=2) == Outcome(True, ["1", "2"], "")
    failed = b'{"ok": false, "outputs": null, "error": "ValueError: x"}\n'
    assert sandbox.judge("exit", 0, failed, inputs=2) == Outcome(False, None, "ValueError: x")
