"""End to end, as a user would: ``afterlearner run ... --save``, then load the file without afterlearner."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from paths import SUPPORT, TASKS

import afterlearner as al

TASK = TASKS / "patch_task.py"

# A fresh interpreter, afterlearner never imported: build the trained model, load the patch with
# plain safetensors + load_state_dict, set the temperature from the file's metadata, print the loss.
LOADER = """
import json, sys
import torch
from safetensors import safe_open
from safetensors.torch import load_file
sys.path.insert(0, {support!r})
import patch_model
path = sys.argv[1]
model = patch_model.build(seed=0)
missing, unexpected = model.load_state_dict(load_file(path), strict=False)
assert unexpected == [], unexpected
with safe_open(path, "pt") as handle:
    temperature = json.loads(handle.metadata()["hyperparameters"])["temperature"]
x = patch_model.inputs()
target = torch.linspace(-1.0, 1.0, 4).expand(16, 4)
loss = float(((model(x) / temperature - target) ** 2).mean())
assert "afterlearner" not in sys.modules
print(json.dumps({{"loss": loss}}))
"""


@pytest.mark.slow
def test_run_save_then_load_without_afterlearner_gives_the_best_loss_exactly(tmp_path) -> None:
    store, patch = tmp_path / "run.sqlite", tmp_path / "retrofit.safetensors"
    command = [sys.executable, "-m", "afterlearner", "run", f"{TASK}:task", "--quiet"]
    done = subprocess.run(
        [*command, "--store", str(store), "--save", str(patch)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert f"retrofit written to {patch}" in done.stdout and "load_state_dict" in done.stdout
    with al.Store.open(store, readonly=True) as journal:
        best_loss = journal.runs()[0]["best_loss"]
        initial_loss = journal.runs()[0]["initial_loss"]
    assert best_loss < initial_loss
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    loaded = subprocess.run(
        [sys.executable, "-c", LOADER.format(support=str(SUPPORT)), str(patch)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["loss"] == best_loss  # exactly, not approximately


def test_values_by_name_match_the_saved_patch(tmp_path) -> None:
    task = al.load_task(f"{TASK}:task")
    result = al.retrofit(task.aleph, task.loss, budget=20, progress=False, n=task.n, name=task.name)
    values = result.values()
    assert set(values) == {"fc.bias", "body.weight", "temperature"}
    assert values["temperature"] == task.aleph.entries[2].owner.temperature  # written into the sampler
    patch = al.read_patch(result.save(tmp_path / "p.safetensors"))
    assert (patch.tensors["fc.bias"].numpy() == values["fc.bias"]).all()
    assert patch.hyperparameters == {"temperature": values["temperature"]}
    assert patch.metadata["settings"]["task"] == "patch-net"
    assert patch.metadata["losses"]["best_loss"] == result.best_loss


def test_result_dataframe_is_the_csv_of_its_store(tmp_path) -> None:
    from afterlearner import history

    task = al.load_task(f"{TASK}:task")
    store = tmp_path / "s.sqlite"
    result = al.retrofit(task.aleph, task.loss, budget=12, progress=False, store=store, name=task.name)
    frame = result.dataframe()
    assert len(frame) == 12 and list(frame.columns[:7]) == list(history.COLUMNS)
    assert "fc.bias[0]" in frame.columns and "temperature" in frame.columns
    with al.Store.open(store, readonly=True) as journal:
        columns, rows = history.table(journal.settings(), journal.evaluations())
    assert list(frame.columns) == columns
    assert frame["loss"].tolist() == [row[3] for row in rows]
