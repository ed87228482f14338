"""Patch files: loadable without afterlearner, bit for bit; applied only to the model they came from.

Also the best candidate of finished, interrupted and SIGKILLed stores, and ``afterlearner export``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import patch_model
import pytest
import torch
from paths import SUPPORT, TASKS
from safetensors.torch import load_file, save_file

import afterlearner as al
from afterlearner.bound import bound_from_log_outcomes
from afterlearner.cli import main
from afterlearner.cli.export import first_space_difference, verify
from afterlearner.errors import PatchError, StoreError
from afterlearner.online.task import load_feedback_task
from afterlearner.patch import bound_metadata, model_fingerprint, result_metadata
from afterlearner.report import store_rows

PATCH_TASK = f"{TASKS / 'patch_task.py'}:task"
QUADRATIC_TASK = TASKS / "quadratic_task.py"


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal dtype, shape and raw bytes (-0.0 and NaN payloads included)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(
        a.detach().contiguous().reshape(-1).view(torch.uint8),
        b.detach().contiguous().reshape(-1).view(torch.uint8),
    )


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return list(a) == list(b) and all(_same_bits(a[name], b[name]) for name in a)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every tensor of the model, the non-persistent gain included."""
    state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    state["gain"] = model.gain.detach().clone()
    return state


def _aleph(model: torch.nn.Module, sampler: types.SimpleNamespace | None = None, knobs: dict | None = None):
    aleph = al.Aleph(model)
    aleph.add("fc.bias").add("body.weight", mode="scale", per="row").add("norm.running_mean")
    if sampler is not None:
        aleph.hyper(sampler, "temperature", low=0.25, high=4.0, log=True, name="temperature")
    if knobs is not None:
        aleph.hyper(knobs, "beam", low=1, high=8, name="beam")
    return aleph


def _candidate(aleph: al.Aleph, seed: int = 0) -> np.ndarray:
    """A candidate away from the identity (hyperparameter coordinates kept inside their ranges)."""
    vector = aleph.identity() + np.random.default_rng(seed).normal(0.0, 0.2, len(aleph))
    return vector


def _retrofitted_state(seed: int, vector: np.ndarray, dtype: str = "float32") -> dict[str, torch.Tensor]:
    """What ``aleph.write(vector)`` makes of a fresh model: the reference every patch must reproduce."""
    model = patch_model.build(seed, dtype=dtype)
    aleph = _aleph(model)
    aleph.write(vector[: len(aleph)])  # the tensor entries come first; hyperparameters do not touch the model
    return _state(model)


@pytest.fixture
def saved(tmp_path):
    """A patch of a float32 PatchNet (seed 0) with two hyperparameters, and what made it."""
    model = patch_model.build(0)
    sampler, knobs = types.SimpleNamespace(temperature=1.0), {"beam": 4}
    aleph = _aleph(model, sampler, knobs)
    vector = _candidate(aleph)
    vector[-2:] = [1.7, 6.2]  # temperature 1.7, beam 6
    path = al.save_patch(aleph, vector, tmp_path / "retrofit.safetensors", settings={"seed": 3})
    return types.SimpleNamespace(path=path, aleph=aleph, vector=vector, model=model)


# -- the file, read by anyone ------------------------------------------------------------------------
LOADER = """
import json, sys
import torch
from safetensors.torch import load_file
sys.path.insert(0, {support!r})
import patch_model
for job in json.loads(sys.argv[1]):
    model = patch_model.build(job["seed"], dtype=job["dtype"])
    keys = model.load_state_dict(load_file(job["patch"]), strict=False)
    assert keys.unexpected_keys == [], keys.unexpected_keys
    with torch.no_grad():
        output = model(patch_model.inputs(job["dtype"]))
    torch.save({{"state": model.state_dict(), "output": output}}, job["out"])
assert "afterlearner" not in sys.modules, "the loader imported afterlearner"
print("loaded", len(json.loads(sys.argv[1])))
"""


def test_a_patch_loads_without_afterlearner_bit_for_bit(tmp_path) -> None:
    jobs, expected = [], {}
    for dtype in ("float32", "bfloat16", "float64"):
        aleph = _aleph(patch_model.build(0, dtype=dtype))
        vector = _candidate(aleph, seed=1)
        path = al.save_patch(aleph, vector, tmp_path / f"{dtype}.safetensors")
        assert set(load_file(path)) == {"fc.bias", "body.weight", "norm.running_mean"}
        reference = patch_model.build(0, dtype=dtype)
        _aleph(reference).write(vector)
        with torch.no_grad():
            expected[dtype] = (reference.state_dict(), reference(patch_model.inputs(dtype)))
        jobs.append({"seed": 0, "dtype": dtype, "patch": str(path), "out": str(tmp_path / f"{dtype}.pt")})
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", LOADER.format(support=str(SUPPORT)), json.dumps(jobs)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "loaded 3" in done.stdout
    for job in jobs:
        loaded = torch.load(job["out"])
        state, output = expected[job["dtype"]]
        assert _same_state(loaded["state"], state)
        assert _same_bits(loaded["output"], output)
        assert not torch.equal(
            loaded["output"], patch_model.build(0, dtype=job["dtype"])(patch_model.inputs(job["dtype"]))
        )


def test_the_metadata_says_what_the_patch_is_and_where_it_came_from(saved) -> None:
    patch = al.read_patch(saved.path)
    meta = patch.metadata
    assert meta["format"] == "afterlearner-patch" and meta["format_version"] == 1
    assert meta["created_by"].startswith("afterlearner ")
    assert patch.hyperparameters == {"temperature": 1.7, "beam": 6}
    assert isinstance(patch.hyperparameters["beam"], int)
    assert meta["trained_hyperparameters"] == {"temperature": 1.0, "beam": 4}
    assert np.array_equal(patch.vector, saved.vector)  # JSON floats round-trip exactly
    assert meta["space"] == json.loads(json.dumps(saved.aleph.signature()))
    assert meta["settings"] == {"seed": 3} and meta["losses"] is None and meta["bound"] is None
    trained = meta["fingerprint"]
    assert set(trained["tensors"]) == set(saved.model.state_dict())  # num_batches_tracked (int64) too
    assert {k: v for k, v in trained["tensors"]["body.weight"].items() if k != "sha256"} == {
        "dtype": "float32",
        "shape": [8, 6],
    }
    assert trained["tensors"]["norm.num_batches_tracked"]["dtype"] == "int64"
    assert len(trained["sha256"]) == 64 and len(trained["tensors"]["fc.bias"]["sha256"]) == 16
    assert set(meta["patched_fingerprint"]["tensors"]) == {"fc.bias", "body.weight", "norm.running_mean"}
    assert meta["patched_fingerprint"]["sha256"] != trained["sha256"]
    for name, tensor in patch.tensors.items():
        assert tensor.is_contiguous() and tensor.device.type == "cpu"
        assert _same_bits(tensor, saved.aleph.tensors(saved.vector)[name])


def test_the_fingerprint_is_of_the_trained_model_whatever_it_holds_now(tmp_path) -> None:
    model = patch_model.build(0)
    aleph = _aleph(model)
    fresh = model_fingerprint(_aleph(patch_model.build(0)))
    aleph.write(_candidate(aleph))  # the model now carries a candidate
    carried = _state(model)
    first = al.save_patch(aleph, _candidate(aleph, seed=2), tmp_path / "a.safetensors")
    assert _same_state(_state(model), carried)  # saving touched nothing
    assert al.read_patch(first).fingerprint == fresh == model_fingerprint(aleph)
    assert model_fingerprint(_aleph(patch_model.build(1)))["sha256"] != fresh["sha256"]


# -- applying -------------------------------------------------------------------------------------
def test_a_model_built_with_another_seed_is_refused_and_left_alone(saved) -> None:
    other = patch_model.build(1)
    before = _state(other)
    with pytest.raises(PatchError, match=r"^body\.bias differs from the trained model retrofit\.safetensors"):
        al.apply_patch(other, saved.path)
    assert _same_state(_state(other), before)
    aleph = _aleph(other, types.SimpleNamespace(temperature=1.0), {"beam": 4})
    with pytest.raises(PatchError, match=r"body\.bias differs"):
        al.apply_patch(aleph, saved.path)
    assert _same_state(_state(other), before)


def test_apply_round_trips_bit_for_bit_and_twice_is_a_no_op(saved, tmp_path) -> None:
    expected = _retrofitted_state(0, saved.vector)
    # a bare module: tensors written, hyperparameters returned for the user to set
    bare = patch_model.build(0)
    assert al.apply_patch(bare, saved.path) == {"temperature": 1.7, "beam": 6}
    assert _same_state(_state(bare), expected)
    assert al.apply_patch(bare, saved.path) == {"temperature": 1.7, "beam": 6}  # already patched: accepted
    assert _same_state(_state(bare), expected)
    # an Aleph: tensors and hyperparameters written, and restore() still gives the trained model
    model = patch_model.build(0)
    sampler, knobs = types.SimpleNamespace(temperature=1.0), {"beam": 4}
    aleph = _aleph(model, sampler, knobs)
    aleph.write(_candidate(aleph, seed=5))  # whatever it holds now
    assert al.apply_patch(aleph, saved.path) == {"temperature": 1.7, "beam": 6}
    assert _same_state(_state(model), expected)
    assert sampler.temperature == 1.7 and knobs["beam"] == 6 and isinstance(knobs["beam"], int)
    al.apply_patch(aleph, saved.path)
    assert _same_state(_state(model), expected) and sampler.temperature == 1.7
    # re-saving the same candidate gives the same file contents
    again = al.save_patch(aleph, saved.vector, tmp_path / "again.safetensors")
    first, second = al.read_patch(saved.path), al.read_patch(again)
    assert list(first.tensors) == list(second.tensors)
    assert all(_same_bits(first.tensors[name], second.tensors[name]) for name in first.tensors)
    assert first.fingerprint == second.fingerprint
    assert first.patched_fingerprint == second.patched_fingerprint
    aleph.restore()
    assert _same_state(_state(model), _state(patch_model.build(0))) and sampler.temperature == 1.0
    # an Aleph built on a model that already holds the patch: recognised, accepted
    patched = patch_model.build(0)
    al.apply_patch(patched, saved.path)
    sampler = types.SimpleNamespace(temperature=1.7)
    al.apply_patch(_aleph(patched, sampler, {"beam": 6}), saved.path)
    assert _same_state(_state(patched), expected)


def test_a_model_holding_part_of_the_patch_is_refused(saved) -> None:
    model = patch_model.build(0)
    al.apply_patch(model, saved.path)
    with torch.no_grad():
        model.fc.bias.copy_(patch_model.build(0).fc.bias)  # one tensor back to its trained value
    before = _state(model)
    with pytest.raises(PatchError, match="some of the patch's tensors at their patched values"):
        al.apply_patch(model, saved.path)
    assert _same_state(_state(model), before)


def test_a_wrong_shape_or_name_is_refused_before_anything_is_written(saved, tmp_path) -> None:
    wider = patch_model.build(0, outputs=5)  # body.weight (checked first) fits, fc.bias does not
    before = _state(wider)
    with pytest.raises(PatchError, match=r"fc\.bias: the patch holds float32 of shape \(4,\), the model has"):
        al.apply_patch(wider, saved.path)
    assert _same_state(_state(wider), before)
    double = patch_model.build(0, dtype="float64")
    with pytest.raises(PatchError, match="body.weight: the patch holds float32 .* the model has float64"):
        al.apply_patch(double, saved.path)
    renamed = torch.nn.Sequential(patch_model.build(0))
    with pytest.raises(
        PatchError, match="holds body.weight, which the model has no parameter or buffer named"
    ):
        al.apply_patch(renamed, saved.path)
    # the same tensors under the same names, but a model with one more tensor
    extended = patch_model.build(0)
    extended.register_buffer("extra", torch.zeros(2))
    with pytest.raises(
        PatchError, match="the model has a tensor extra, which the patch's model did not have"
    ):
        al.apply_patch(extended, saved.path)
    assert not extended.extra.any() and _same_bits(extended.fc.bias, patch_model.build(0).fc.bias)


def test_hyperparameters_are_checked_against_the_aleph(saved) -> None:
    model = patch_model.build(0)
    before = _state(model)
    changed = types.SimpleNamespace(temperature=1.5)  # not the trained 1.0
    with pytest.raises(
        PatchError, match="hyperparameter temperature is 1.5 in this Aleph.*trained value 1.0"
    ):
        al.apply_patch(_aleph(model, changed, {"beam": 4}), saved.path)
    with pytest.raises(PatchError, match="sets hyperparameter beam, which this Aleph does not have"):
        al.apply_patch(_aleph(model, types.SimpleNamespace(temperature=1.0)), saved.path)
    assert _same_state(_state(model), before) and changed.temperature == 1.5


def test_a_hyperparameter_only_patch(tmp_path) -> None:
    sampler, knobs = types.SimpleNamespace(temperature=1.0), {"beam": 4}
    aleph = al.Aleph().hyper(sampler, "temperature", low=0.25, high=4.0, log=True).hyper(knobs, "beam", 1, 8)
    path = al.save_patch(aleph, np.array([0.5, 2.0]), tmp_path / "knobs.safetensors")
    assert load_file(path) == {}
    patch = al.read_patch(path)
    assert patch.tensors == {} and patch.fingerprint is None
    assert patch.hyperparameters == {"SimpleNamespace.temperature": 0.5, "dict.beam": 2}
    target = al.Aleph().hyper(
        types.SimpleNamespace(temperature=1.0), "temperature", low=0.25, high=4.0, log=True
    )
    fresh_knobs = {"beam": 4}
    target.hyper(fresh_knobs, "beam", 1, 8)
    assert al.apply_patch(target, path) == patch.hyperparameters
    assert target.entries[0].owner.temperature == 0.5 and fresh_knobs["beam"] == 2
    assert al.apply_patch(patch_model.build(0), path) == patch.hyperparameters  # nothing to write there
    # two hyperparameters with one name cannot be told apart in a patch
    twins = (
        al.Aleph()
        .hyper(types.SimpleNamespace(t=1.0), "t", 0.5, 2.0)
        .hyper(types.SimpleNamespace(t=1.0), "t", 0.5, 2.0)
    )
    with pytest.raises(PatchError, match="two hyperparameters are named 'SimpleNamespace.t'"):
        al.save_patch(twins, np.array([1.0, 1.0]), tmp_path / "twins.safetensors")


def test_a_non_persistent_buffer_is_warned_about_and_applied(tmp_path) -> None:
    model = patch_model.build(0)
    aleph = al.Aleph(model).add("gain", mode="scale", per="element").add("fc.bias")
    vector = _candidate(aleph)
    with pytest.warns(UserWarning, match=r"gain is a non-persistent buffer.*al\.apply_patch"):
        path = al.save_patch(aleph, vector, tmp_path / "gain.safetensors")
    plain = patch_model.build(0)
    keys = plain.load_state_dict(load_file(path), strict=False)
    assert keys.unexpected_keys == ["gain"]  # what load_state_dict does with it: nothing
    assert _same_bits(plain.gain, patch_model.build(0).gain)
    aleph.write(vector)
    bare = patch_model.build(0)
    al.apply_patch(bare, path)
    assert _same_state(_state(bare), _state(model))
    assert "gain" in al.read_patch(path).fingerprint["tensors"]
    other = al.Aleph(patch_model.build(0)).add("gain", mode="scale", per="element").add("fc.bias")
    al.apply_patch(other, path)
    assert _same_state(_state(other.model), _state(model))


def test_files_that_are_not_patches_are_refused(tmp_path, saved) -> None:
    with pytest.raises(PatchError, match="no such patch file"):
        al.read_patch(tmp_path / "missing.safetensors")
    text = tmp_path / "notes.safetensors"
    text.write_text("certainly not tensors\n")
    with pytest.raises(PatchError, match="is not a safetensors file"):
        al.read_patch(text)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(PatchError, match="is not a safetensors file"):
        al.apply_patch(patch_model.build(0), empty)
    plain = tmp_path / "weights.safetensors"
    save_file({"fc.bias": torch.zeros(4)}, plain)
    with pytest.raises(PatchError, match="a safetensors file but not an afterlearner patch .no format tag"):
        al.read_patch(plain)
    foreign = tmp_path / "hf.safetensors"
    save_file({"fc.bias": torch.zeros(4)}, foreign, metadata={"format": "pt"})
    with pytest.raises(PatchError, match="not an afterlearner patch .its format tag is 'pt'"):
        al.read_patch(foreign)
    store = tmp_path / "run.sqlite"
    al.Store.open(store).close()
    with pytest.raises(PatchError, match="is not a safetensors file"):
        al.read_patch(store)
    # a patch whose tensor was changed after it was written
    original = al.read_patch(saved.path)
    altered = tmp_path / "altered.safetensors"
    tensors = {name: tensor.clone() for name, tensor in original.tensors.items()}
    tensors["fc.bias"][0] += 1.0
    save_file(tensors, altered, metadata={key: json.dumps(value) for key, value in original.metadata.items()})
    with pytest.raises(PatchError, match="tensor fc.bias does not match the patch's own fingerprint"):
        al.read_patch(altered)
    newer = tmp_path / "newer.safetensors"
    save_file(
        tensors,
        newer,
        metadata={**{k: json.dumps(v) for k, v in original.metadata.items()}, "format_version": "2"},
    )
    with pytest.raises(PatchError, match="format version 2; this afterlearner reads version 1"):
        al.read_patch(newer)


def test_save_patch_checks_before_writing_and_replaces_whole_files(tmp_path, saved) -> None:
    target = tmp_path / "deep" / "folder" / "p.safetensors"
    with pytest.raises(PatchError, match="cannot be written as JSON"):
        al.save_patch(saved.aleph, saved.vector, target, settings={"optimizer": object()})
    with pytest.raises(al.SpaceError, match="candidate has 3 values"):
        al.save_patch(saved.aleph, np.zeros(3), target)
    assert not target.parent.exists()  # nothing was created
    al.save_patch(saved.aleph, saved.vector, target)
    al.save_patch(saved.aleph, saved.aleph.identity(), target)  # over the first one
    assert np.array_equal(al.read_patch(target).vector, saved.aleph.identity())
    assert [path.name for path in target.parent.iterdir()] == ["p.safetensors"]  # no temporary file left


# -- the best candidate of a store ----------------------------------------------------------------
def _patch_task() -> al.Task:
    return al.load_task(PATCH_TASK)


def test_best_of_store_across_runs_and_its_errors(tmp_path) -> None:
    store = tmp_path / "runs.sqlite"
    task = _patch_task()
    result = al.retrofit(
        task.aleph, task.loss, budget=12, runs=2, seed=4, store=store, progress=False, n=task.n
    )
    run_index, evaluation = al.best_of_store(store)
    assert np.array_equal(evaluation.vector, result.best) and evaluation.loss == result.best_loss
    with al.Store.open(store, readonly=True) as journal:
        per_run = [al.best_of_store(journal, run)[1].loss for run in (0, 1)]
        assert journal.runs()[run_index]["best_loss"] == evaluation.loss
    assert evaluation.loss == min(per_run)
    with pytest.raises(StoreError, match="has no run 5; its runs are 0, 1"):
        al.best_of_store(store, run=5)
    empty = tmp_path / "empty.sqlite"
    al.Store.open(empty).close()
    with pytest.raises(StoreError, match="holds no run yet"):
        al.best_of_store(empty)

    def failing(model):
        raise ValueError("no data today")

    broken = tmp_path / "broken.sqlite"
    task = _patch_task()
    al.retrofit(task.aleph, failing, budget=5, store=broken, progress=False)
    with pytest.raises(StoreError, match="no run has a successful evaluation"):
        al.best_of_store(broken)
    with pytest.raises(StoreError, match="run 0 has no successful evaluation"):
        al.best_of_store(broken, run=0)


def test_bound_metadata_matches_the_report_or_says_why_there_is_none(tmp_path) -> None:
    store = tmp_path / "run.sqlite"
    task = _patch_task()
    al.retrofit(
        task.aleph,
        task.loss,
        budget=10,
        store=store,
        progress=False,
        n=task.n,
        name=task.name,
        optimizer="OnePlusOne",
    )
    with al.Store.open(store, readonly=True) as journal:
        reported = store_rows(journal)[0]["bound"]
    recorded = bound_metadata("OnePlusOne", 10, 1, 50)
    assert recorded == {"epsilon": reported, "n": 50, "delta": 0.05, "reason": None}
    assert recorded["epsilon"] == bound_from_log_outcomes(10 * math.log(2), 50, 0.05, 1)
    assert bound_metadata("NGOpt", 10, 1, 50)["reason"] == "NGOpt is not comparison-based"
    assert bound_metadata("OnePlusOne", 10, 1, None) == {
        "epsilon": None,
        "n": None,
        "delta": 0.05,
        "reason": "n, the ℵ-dataset size, is unknown",
    }


def test_a_result_saved_as_a_patch(tmp_path) -> None:
    task = _patch_task()
    result = al.retrofit(
        task.aleph, task.loss, budget=15, seed=2, progress=False, n=task.n, test_loss=task.test_loss
    )
    path = al.save_patch(
        result.aleph, result.best, tmp_path / "result.safetensors", **result_metadata(result)
    )
    meta = al.read_patch(path).metadata
    assert meta["losses"] == {
        "initial_loss": result.initial_loss,
        "best_loss": result.best_loss,
        "test_initial": result.test_initial,
        "test_best": result.test_best,
    }
    assert meta["settings"]["budget"] == 15 and meta["settings"]["seed"] == 2
    assert meta["bound"]["epsilon"] == result.bound()
    model = patch_model.build(0)
    al.apply_patch(model, path)
    assert _same_state(model.state_dict(), result.aleph.model.state_dict())  # retrofit leaves the best in


# -- afterlearner export --------------------------------------------------------------------------
def _export(store: Path, out: Path, *extra: str, task: str = PATCH_TASK) -> int:
    return main(["export", str(store), "--task", task, "--out", str(out), *extra])


def _assert_exported(out: Path, task_spec: str, vector: np.ndarray) -> al.Patch:
    patch = al.read_patch(out)
    expected = al.load_task(task_spec).aleph.tensors(vector)
    assert list(patch.tensors) == sorted(expected)
    assert all(_same_bits(patch.tensors[name], expected[name]) for name in expected)
    assert np.array_equal(patch.vector, vector)
    return patch


def test_export_a_finished_store(tmp_path, capsys) -> None:
    store, out = tmp_path / "run.sqlite", tmp_path / "out" / "retrofit.safetensors"
    assert main(["run", PATCH_TASK, "--budget", "30", "--seed", "1", "--store", str(store), "--quiet"]) == 0
    capsys.readouterr()
    assert _export(store, out) == 0
    printed = capsys.readouterr().out
    with al.Store.open(store, readonly=True) as journal:
        row = journal.runs()[0]
        best = al.best_of_store(journal)[1]
        bound = store_rows(journal)[0]["bound"]
    assert np.array_equal(best.vector, row["best_vector"])
    patch = _assert_exported(out, PATCH_TASK, best.vector)
    meta = patch.metadata
    assert meta["settings"]["optimizer"] == "auto" and meta["settings"]["task"] == "patch-net"
    assert meta["settings"]["run"] == 0 and meta["settings"]["run_status"] == "finished"
    assert meta["losses"] == {
        "initial_loss": row["initial_loss"],
        "best_loss": row["best_loss"],
        "test_initial": row["test_initial"],
        "test_best": row["test_best"],
    }
    assert meta["bound"] == {"epsilon": bound, "n": 50, "delta": 0.05, "reason": None}
    assert f"wrote {out}: 2 tensors (body.weight, fc.bias)" in printed
    assert f"ℵ-loss {best.loss:.6g}" in printed and "hyperparameters: temperature=" in printed
    assert f"model.load_state_dict(load_file('{out}'), strict=False)" in printed
    # what was printed loads: a fresh model gets the retrofit
    model = patch_model.build(0)
    model.load_state_dict(load_file(out), strict=False)
    task = al.load_task(PATCH_TASK)
    task.aleph.write(best.vector)
    assert _same_state(model.state_dict(), task.aleph.model.state_dict())


def test_export_an_interrupted_store(tmp_path) -> None:
    store, out = tmp_path / "interrupted.sqlite", tmp_path / "interrupted.safetensors"
    task = _patch_task()
    calls = {"n": 0}

    def interrupting(model):
        calls["n"] += 1
        if calls["n"] == 13:
            raise KeyboardInterrupt
        return task.loss(model)

    result = al.retrofit(task.aleph, interrupting, budget=30, store=store, progress=False, n=task.n, seed=2)
    assert result.interrupted and result.evaluations == 12
    assert _export(store, out) == 0
    patch = _assert_exported(out, PATCH_TASK, result.best)
    assert patch.metadata["settings"]["run_status"] == "interrupted"
    assert patch.metadata["settings"]["evaluations"] == 12
    assert patch.metadata["losses"]["best_loss"] == result.best_loss


@pytest.mark.slow
def test_export_a_store_killed_mid_run(tmp_path) -> None:
    store, out = tmp_path / "killed.sqlite", tmp_path / "killed.safetensors"
    command = [sys.executable, "-m", "afterlearner", "run", f"{QUADRATIC_TASK}:task", "--budget", "200"]
    process = subprocess.Popen(
        [*command, "--store", str(store), "--quiet"],
        env={**os.environ, "AFTERLEARNER_TEST_SLEEP": "0.02"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline, done = time.monotonic() + 90, 0
    while time.monotonic() < deadline and process.poll() is None and done < 15:
        if store.exists():
            try:
                with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
                    done = db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
        time.sleep(0.01)
    assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read()!r}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    with al.Store.open(store, readonly=True) as journal:
        row = journal.runs()[0]
        evaluations = journal.evaluations()
    assert row["status"] == "running" and row["best_vector"] is None  # nothing summarised the run
    assert 15 <= len(evaluations) < 200
    spec = f"{QUADRATIC_TASK}:task"
    assert _export(store, out, "--verify", task=spec) == 0
    best = min((e for e in evaluations if e.ok), key=lambda e: (e.loss, -e.idx))
    patch = _assert_exported(out, spec, best.vector)
    assert patch.metadata["losses"]["best_loss"] == best.loss
    assert patch.metadata["settings"]["run_status"] == "running"
    assert patch.metadata["losses"]["test_best"] is None


def test_export_verify_refuses_when_the_task_loss_changed(tmp_path, capsys, monkeypatch) -> None:
    store = tmp_path / "run.sqlite"
    assert main(["run", PATCH_TASK, "--budget", "20", "--store", str(store), "--quiet"]) == 0
    assert _export(store, tmp_path / "good.safetensors", "--verify") == 0
    assert "verified: the task's ℵ-loss of this candidate is" in capsys.readouterr().out
    monkeypatch.setenv("AFTERLEARNER_TEST_LOSS_SHIFT", "0.25")
    refused = tmp_path / "refused.safetensors"
    assert _export(store, refused, "--verify") == 2
    error = capsys.readouterr().err.strip()
    with al.Store.open(store, readonly=True) as journal:
        journaled = al.best_of_store(journal)[1].loss
    assert len(error.splitlines()) == 1
    assert f"is now {journaled + 0.25!r}, the store journaled {journaled!r}" in error
    assert not refused.exists()
    assert _export(store, refused) == 0  # without --verify nothing is evaluated: the file is written
    # verify puts the trained values back, and reports a loss that fails
    task = _patch_task()
    vector = al.read_patch(refused).vector
    with pytest.raises(PatchError, match="is now"):
        verify(task, vector, journaled)
    assert _same_state(_state(task.aleph.model), _state(patch_model.build(0)))

    def failing(model):
        raise RuntimeError("the data set is gone")

    failing_task = types.SimpleNamespace(aleph=task.aleph, loss=failing)
    with pytest.raises(PatchError, match="failed on the candidate.*the data set is gone"):
        verify(failing_task, vector, journaled)
    assert _same_state(_state(task.aleph.model), _state(patch_model.build(0)))


def test_export_refuses_a_task_with_another_space(tmp_path, capsys) -> None:
    store, out = tmp_path / "run.sqlite", tmp_path / "other.safetensors"
    assert main(["run", PATCH_TASK, "--budget", "5", "--store", str(store), "--quiet"]) == 0
    capsys.readouterr()
    other = PATCH_TASK.replace(":task", ":other_space")
    assert _export(store, out, task=other) == 2
    error = capsys.readouterr().err.strip()
    assert "made with another ℵ-space" in error
    assert "entry 1 is fc.weight in the task and body.weight in the store" in error
    assert not out.exists()
    assert _export(tmp_path / "missing.sqlite", out) == 2
    assert "no such store" in capsys.readouterr().err


def test_first_space_difference_names_the_entry() -> None:
    space = [
        {"kind": "tensor", "name": "fc.bias", "mode": "offset", "per": "element", "shape": [4], "size": 4}
    ]
    assert first_space_difference(space, space) is None
    scaled = [{**space[0], "mode": "scale"}]
    assert (
        first_space_difference(scaled, space) == "fc.bias: the task has mode=scale, the store has mode=offset"
    )
    assert (
        first_space_difference(space + space, space)
        == "the task has entry 1, fc.bias, which the store does not"
    )
    assert first_space_difference([], space) == "the store has entry 0, fc.bias, which the task does not"


def test_export_a_feedback_session_of_a_models_aleph_space(tmp_path, capsys) -> None:
    from afterlearner.online import Best

    task_file = tmp_path / "clicks_task.py"
    task_file.write_text(
        "import torch, afterlearner as al\n"
        "from afterlearner.online import FeedbackTask, text\n"
        "def factory():\n"
        "    torch.manual_seed(0)\n"
        "    model = torch.nn.Linear(2, 2)\n"
        "    aleph = al.Aleph(model).add('bias')\n"
        "    return FeedbackTask(aleph, lambda v: text(str(v)), k=2, budget=3)\n"
    )
    spec = f"{task_file}:factory"
    task = load_feedback_task(spec)
    store, out = tmp_path / "clicks.sqlite", tmp_path / "clicks.safetensors"
    session = task.session(store=store)
    first = session.propose()
    session.answer(first.id, Best(1))
    best = session.best.vector
    session.close()
    assert main(["export", str(store), "--task", spec, "--out", str(out)]) == 0
    patch = al.read_patch(out)
    fresh = load_feedback_task(spec)
    assert torch.equal(patch.tensors["bias"], fresh.space.tensors(best)["bias"])
    assert main(["export", str(store), "--task", spec, "--out", str(out), "--verify"]) == 2
    assert "a person's answers" in capsys.readouterr().err
