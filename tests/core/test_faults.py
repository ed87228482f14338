"""Faults a careless user or a broken loss causes: each is one clear line, and nothing is corrupted.

Each test reproduces an item of the reliability review (issue 14, sections 2 and 3).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from paths import TASKS

import afterlearner as al
from afterlearner.cli import main
from afterlearner.errors import SpaceError, StoreError
from afterlearner.guard import ModelChanged

TASK = TASKS / "quadratic_task.py"
AFTERLEARNER = [sys.executable, "-m", "afterlearner"]


class NormNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(4, 6)
        self.norm = torch.nn.BatchNorm1d(6)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.norm(self.body(x))))


def _state(model: torch.nn.Module) -> dict[str, bytes]:
    named = dict(model.named_parameters())
    named.update(model.named_buffers())
    return {name: t.detach().reshape(-1).view(torch.uint8).numpy().tobytes() for name, t in named.items()}


def _norm_net() -> NormNet:
    torch.manual_seed(0)
    model = NormNet()
    with torch.no_grad():
        model.norm.running_mean.normal_()
        model.norm.running_var.uniform_(0.5, 2.0)
    return model


X = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))


# -- 2. the model is restored bit for bit, all of it ---------------------------------------------------
def test_a_model_left_in_training_mode_is_caught_named_and_restored(tmp_path) -> None:
    model = _norm_net().train()  # the user forgot model.eval(): every forward pass updates BatchNorm
    trained = _state(model)
    aleph = al.Aleph(model).add("fc.bias")

    def loss(m: NormNet) -> float:
        return float(m(X).pow(2).mean())

    with pytest.raises(ModelChanged, match="norm.running_mean.*training mode.*model.eval"):
        al.retrofit(aleph, loss, budget=20, progress=False, store=tmp_path / "s.sqlite")
    assert _state(model) == trained  # ℵ-tensors and running statistics alike
    with al.Store.open(tmp_path / "s.sqlite", readonly=True) as store:
        assert store.runs()[0]["status"] == "failed" and len(store.evaluations()) == 1


def test_an_in_place_change_of_a_frozen_weight_is_caught_and_restored() -> None:
    model = _norm_net().eval()
    trained = _state(model)
    aleph = al.Aleph(model).add("fc.bias")
    calls = {"n": 0}

    def loss(m: NormNet) -> float:
        calls["n"] += 1
        if calls["n"] == 6:  # a bug that strikes later: found by the sampled checks
            m.body.weight.data.mul_(1.01)
        return float(m(X).pow(2).mean())

    with pytest.raises(ModelChanged, match="body.weight.*in-place operation.*restored"):
        al.retrofit(aleph, loss, budget=40, progress=False)
    assert calls["n"] == 8  # checked after 1, 2, 3, 4, then 8 evaluations
    assert _state(model) == trained


def test_a_clean_loss_passes_the_guard_and_a_large_model_is_checked_by_digest() -> None:
    from afterlearner.guard import ModelGuard

    model = _norm_net().eval()
    aleph = al.Aleph(model).add("fc.bias")
    result = al.retrofit(aleph, lambda m: float(m(X).pow(2).mean()), budget=30, progress=False)
    assert result.best_loss < result.initial_loss
    guard = ModelGuard(aleph, copy_limit=0)  # digests only
    with torch.no_grad():
        model.body.bias.add_(1.0)
    with pytest.raises(ModelChanged, match="body.bias.*too large for the guard to keep a copy"):
        guard.check()


# -- 3. one clear line instead of a traceback, and no half-made files ---------------------------------
def _has_evaluations(path) -> bool:
    """Whether a store another process is creating holds evaluations yet."""
    try:
        with al.Store.open(path, readonly=True) as journal:
            return bool(journal.evaluations())
    except StoreError:  # not there yet, or created and still empty: its writer is setting it up
        return False


@pytest.mark.slow
def test_a_second_run_on_the_same_store_is_refused_at_once_naming_the_holder(tmp_path, capsys) -> None:
    store = tmp_path / "s.sqlite"
    env = {**os.environ, "AFTERLEARNER_TEST_SLEEP": "0.05"}
    first = subprocess.Popen(
        [*AFTERLEARNER, "run", str(TASK), "--budget", "200", "--store", str(store), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not _has_evaluations(store):
            assert time.monotonic() < deadline, "the first run journaled nothing in 60 s"
            time.sleep(0.05)
        started = time.perf_counter()
        assert main(["run", str(TASK), "--budget", "200", "--store", str(store), "--quiet"]) == 2
        assert time.perf_counter() - started < 10  # refused at once, no duplicate work
        err = capsys.readouterr().err
        assert f"being written by process {first.pid} on " in err and "Traceback" not in err
        assert main(["show", str(store)]) == 0  # a live writer: the run is running
        out = capsys.readouterr().out
        assert "running" in out and "killed" not in out
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert main(["show", str(store)]) == 0  # its writer is gone: show says so, not "running"
    assert "run 0: killed (marked running, but no process holds the store)" in capsys.readouterr().out
    # the kernel drops the lock with its process: the store resumes
    assert main(["run", str(TASK), "--budget", "200", "--store", str(store), "--quiet"]) == 0


def test_a_full_disk_mid_run_is_one_line_and_the_run_resumes(tmp_path, monkeypatch) -> None:
    # evaluations of 5 ms: the journal's group commits (50 ms apart) land while the run goes on, so
    # some are committed before the disk fills (a 200-evaluation run of a free loss is one group)
    monkeypatch.setenv("AFTERLEARNER_TEST_SLEEP", "0.005")
    path = tmp_path / "s.sqlite"
    reference = _quadratic_run(None)
    task = al.load_task(str(TASK))
    journal = al.Store.open(path)
    pages = journal.connection.execute("PRAGMA page_count").fetchone()[0]
    journal.connection.execute(f"PRAGMA max_page_count = {pages + 3}")  # the disk fills up soon
    trained = _state(task.aleph.model)
    with pytest.raises(StoreError, match="disk is full.*committed before is kept"):
        al.retrofit(task.aleph, task.loss, budget=200, seed=1, store=journal, progress=False)
    journal.close()
    assert _state(task.aleph.model) == trained
    with al.Store.open(path, readonly=True) as reader:
        kept = len(reader.evaluations())
    assert 0 < kept < 200
    resumed = _quadratic_run(path)  # space freed: the run goes on from what was committed
    assert np.array_equal(resumed.best, reference.best) and resumed.losses() == reference.losses()


def _quadratic_run(store: Path | None) -> al.RetrofitResult:
    task = al.load_task(str(TASK))
    return al.retrofit(task.aleph, task.loss, budget=200, seed=1, store=store, progress=False)


def test_a_full_disk_at_creation_leaves_no_file(tmp_path) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tiny tmpfs (a real full disk)")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(tiny)]).returncode != 0:
        pytest.skip("mounting a tmpfs is not allowed here")
    try:
        filler = tiny / "filler"
        with filler.open("wb") as handle:  # leave too little room for a store
            try:
                handle.write(b"x" * (15 * 1024))
            except OSError:
                pass
        with pytest.raises(StoreError, match="disk is full|cannot be written"):
            al.Store.open(tiny / "new.sqlite")
        assert sorted(p.name for p in tiny.iterdir()) == ["filler"]  # no stub, no -wal, no -shm
    finally:
        subprocess.run(["umount", str(tiny)], check=False)


def test_a_store_path_that_is_a_directory(tmp_path, capsys) -> None:
    assert main(["run", str(TASK), "--budget", "3", "--store", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is a directory, not a store file" in err and "Traceback" not in err


def test_a_read_only_store_is_said_to_be_read_only_not_corrupt(tmp_path, capsys) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    as_root = os.geteuid() == 0  # root writes through permission bits: use a read-only filesystem
    if as_root and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)]).returncode:
        pytest.skip("mounting a tmpfs is not allowed here")
    try:
        store = folder / "s.sqlite"
        assert main(["run", str(TASK), "--budget", "3", "--store", str(store), "--quiet"]) == 0
        if as_root:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        else:
            store.chmod(0o444)
        capsys.readouterr()
        assert main(["run", str(TASK), "--budget", "5", "--store", str(store), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "read-only" in err and "corrupt" not in err and "Traceback" not in err
        assert main(["show", str(store)]) == 0  # it can still be shown
    finally:
        if as_root:
            subprocess.run(["umount", str(folder)], check=False)


def test_a_task_factory_that_raises_shows_the_users_frames_only(tmp_path, capsys) -> None:
    task_file = tmp_path / "broken_task.py"
    task_file.write_text("def helper():\n    return {}['missing']\n\ndef task():\n    return helper()\n")
    assert main(["run", str(task_file), "--quiet"]) == 2
    err = capsys.readouterr().err
    first = next(line for line in err.splitlines() if line.startswith("afterlearner: error:"))
    assert first.startswith("afterlearner: error: the task factory") and "KeyError: 'missing'" in first
    assert "broken_task.py" in err and "in helper" in err and "return helper()" in err
    assert "afterlearner/task.py" not in err and "Traceback" not in err


def test_a_port_out_of_range_is_refused_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["feedback", "demo", "--port", "99999", "--no-browser"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "a port is a number from 0 to 65535, not 99999" in err and "OverflowError" not in err


@pytest.mark.parametrize("step", [-1.0, 0.0, math.nan, math.inf])
def test_a_step_that_is_not_positive_and_finite_is_refused(step) -> None:
    model = _norm_net()
    with pytest.raises(SpaceError, match="step must be a positive finite number"):
        al.Aleph(model).add("fc.bias", step=step)
    holder = {"temperature": 1.0}
    with pytest.raises(SpaceError, match="step must be a positive finite number"):
        al.Aleph().hyper(holder, "temperature", step=step)


def test_a_run_where_every_evaluation_failed_says_so(tmp_path, capsys) -> None:
    task_file = tmp_path / "failing_task.py"
    task_file.write_text(
        "import torch, afterlearner as al\n"
        "def task():\n"
        "    model = torch.nn.Linear(2, 2)\n"
        "    def loss(m):\n"
        "        raise RuntimeError('the metric server is down')\n"
        "    return al.Task(aleph=al.Aleph(model).add('bias'), loss=loss, budget=5)\n"
    )
    with pytest.warns(RuntimeWarning, match="every one of the 5 evaluations failed"):
        assert main(["run", str(task_file), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "every evaluation failed" in err and "the metric server is down" in err


def test_a_second_feedback_session_on_a_store_in_use_is_refused(tmp_path) -> None:
    import nevergrad as ng

    from afterlearner.online import FeedbackSession, text

    path = tmp_path / "clicks.sqlite"
    first = FeedbackSession(ng.p.Array(init=np.zeros(3)), lambda v: text("x"), k=2, budget=3, store=path)
    with pytest.raises(StoreError, match=f"being written by process {os.getpid()}"):
        FeedbackSession(ng.p.Array(init=np.zeros(3)), lambda v: text("x"), k=2, budget=3, store=path)
    first.close()
    FeedbackSession(ng.p.Array(init=np.zeros(3)), lambda v: text("x"), k=2, budget=3, store=path).close()
