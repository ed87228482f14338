"""``afterlearner init``: writes a task file that runs as it is, and never overwrites one unasked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from paths import SRC
from sklearn.metrics import balanced_accuracy_score

import afterlearner as al
from afterlearner.cli import main
from afterlearner.cli.init import template_text
from afterlearner.space import TensorEntry
from afterlearner.templates import task as template


@pytest.mark.slow
def test_init_writes_a_task_file_that_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "my_task.py"
    assert main(["init", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"afterlearner run {path}:task --store {tmp_path / 'my_task.sqlite'}" in out
    written = path.read_text(encoding="utf-8")
    assert written == template_text().replace("THIS_FILE.py", "my_task.py")
    assert "afterlearner run my_task.py:task" in written

    store = tmp_path / "my_task.sqlite"
    command = [sys.executable, "-m", "afterlearner", "run", str(path), "--budget", "20"]
    python_path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    finished = subprocess.run(
        [*command, "--store", str(store), "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": python_path},
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    assert "my_task:task" in finished.stdout  # name=None: named after the file and the factory
    with al.Store.open(store, readonly=True) as journal:
        (run,) = journal.runs()
        settings = journal.settings()
    assert run["status"] == "finished" and run["evaluations"] == 20
    assert run["best_loss"] <= run["initial_loss"] and run["test_best"] is not None
    assert settings is not None and settings["n"] == template.ALEPH_PER_CLASS * template.CLASSES


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "task.py"
    path.write_text("# my own work\n", encoding="utf-8")
    assert main(["init", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--force" in err
    assert path.read_text(encoding="utf-8") == "# my own work\n"
    assert main(["init", str(path), "--force"]) == 0
    assert path.read_text(encoding="utf-8").startswith('"""An afterlearner task file')


@pytest.mark.parametrize(
    ("name", "message"),
    [("my_task", "must end in .py"), ("missing/my_task.py", "does not exist")],
)
def test_init_refuses_paths_it_cannot_use(
    tmp_path: Path, name: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_template_builds_a_task_showing_every_kind_of_aleph_entry() -> None:
    task = template.task()
    assert isinstance(task, al.Task)
    assert task.n == task.loss.n  # n is the ℵ-set's size
    assert task.budget is not None and task.test_loss is not None and task.description
    kinds = {
        (entry.name, entry.mode, entry.per) if isinstance(entry, TensorEntry) else (entry.name, "hyper", None)
        for entry in task.aleph
    }
    assert kinds == {
        ("head.bias", "offset", "element"),
        ("head.weight", "scale", "row"),
        ("Classifier.logit_adjustment", "hyper", None),
    }
    # The opaque loss the template's comment shows computes the same ℵ-loss as its DatasetLoss.
    data = template.make_data()
    with torch.no_grad():
        predicted = task.aleph.model(data.x_aleph).argmax(dim=1).numpy()
    assert task.loss(task.aleph.model) == 1.0 - balanced_accuracy_score(data.y_aleph.numpy(), predicted)
