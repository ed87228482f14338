"""Throughput of the code sandbox: programs per second, this version against an earlier one.

Why: the sandbox runs every generated program of every evaluation of the code-translation
experiment, so isolating each program must not make the experiment much slower. The batch is what
the experiment runs: the grammar's programs (the ℵ-set has 100) on 6 unit inputs each, a few of
them broken as a model's output can be. Both versions run the same batches, interleaved (the order
alternates each repeat) so that load on a shared machine hits both alike; the medians are printed
with the load average, and the outcomes of both versions must be equal.

    PYTHONPATH=src python bench/speed_sandbox.py --baseline 613a10a --programs 100 16 --repeats 9

``--floor`` measures what any design with a process per program costs here, with no sandbox at all:
a warmed ``python3 -I -S`` forks a child per program that only compiles it, calls it on its inputs
and writes its outputs to a pipe (no limits, no namespaces), or a child that does nothing; CPU of
parent and children per program, and the programs/s that 2 busy cores could reach at that cost.

``--experiment N`` also times what the sandbox serves: N evaluations of the code-translation experiment
(CA on its 100-program ℵ-set: translate with the committed model, then run the translations), each
version in turn on the same candidate, interleaved; their losses must be equal.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

from afterlearner.experiments.code_translation import grammar, sandbox
from afterlearner.experiments.code_translation.task import UNIT_INPUTS

SANDBOX_PATH = "src/afterlearner/experiments/code_translation/sandbox.py"


def baseline_module(revision: str) -> types.ModuleType:
    """The sandbox module as it was at git ``revision``, loaded under another name."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "-C", str(root), "show", f"{revision}:{SANDBOX_PATH}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType(f"sandbox_at_{revision}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{revision}:{SANDBOX_PATH}", "exec"), module.__dict__)  # noqa: S102 - our own code
    return module


def batch(count: int, seed: int = 1) -> tuple[list[str], list[list[list[int]]]]:
    """``count`` grammar programs with their unit inputs; every tenth is broken like a bad translation."""
    programs = grammar.generate(count, seed=seed)
    codes = [p.python for p in programs]
    for index in range(0, count, 10):
        codes[index] = codes[index].replace(":", "", 1) if index % 20 == 0 else codes[index].replace("a", "q")
    return codes, [grammar.unit_inputs(p.arity, UNIT_INPUTS) for p in programs]


def measure(run: Callable, codes: list[str], inputs: list) -> tuple[float, list]:
    started = time.perf_counter()
    outcomes = run(codes, inputs)
    return len(codes) / (time.perf_counter() - started), outcomes


def cpu_per_program(module: types.ModuleType, codes: list[str], inputs: list, repeats: int) -> float:
    """CPU milliseconds per program, of this process and of every sandbox process (ended and reaped).

    Less sensitive to other users' load than wall-clock rates: it counts the work, not the waiting.
    """

    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    close = getattr(module, "close_sandboxes", lambda: None)
    close()
    started = cpu()
    for _ in range(repeats):
        module.run_functions(codes, inputs)
    close()  # reaps the sandboxes, so that their CPU time is counted
    return (cpu() - started) / (repeats * len(codes)) * 1000


# Run by the interpreter the sandbox uses (``-I -S``), outside any sandbox: the batch arrives as JSON on
# stdin; it forks one child per program (``empty``: a child that exits at once), and prints the CPU
# milliseconds per program of itself and its children.
FLOOR = r"""
import gc, json, os, resource, sys
codes, inputs, empty, repeats = json.loads(sys.stdin.read())

def child(code, values, write_end):
    try:
        namespace = {"__name__": "untrusted"}
        exec(compile(code, "<untrusted>", "exec"), namespace)
        outputs = [repr(namespace["f"](*args))[:200] for args in values]
        entry = {"ok": True, "outputs": outputs, "error": ""}
    except BaseException as error:
        entry = {"ok": False, "outputs": None, "error": type(error).__name__}
    os.write(write_end, (json.dumps(entry) + "\n").encode())

namespace = {"__name__": "untrusted"}
exec(compile(codes[1], "<warm-up>", "exec"), namespace)
json.dumps({"ok": True, "outputs": [repr(namespace["f"](*inputs[1][0]))], "error": ""})
del namespace
gc.collect()
gc.freeze()
def cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
start = cpu()
for _ in range(repeats):
    for code, values in zip(codes, inputs):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            if not empty:
                child(code, values, write_end)
            os._exit(0)
        os.close(write_end)
        while os.read(read_end, 65536):
            pass
        os.close(read_end)
        os.waitpid(pid, 0)
print((cpu() - start) / (repeats * len(codes)) * 1000)
"""


def process_floor(codes: list[str], inputs: list, empty: bool, repeats: int) -> float:
    """CPU ms per program of forking a warmed interpreter per program (see FLOOR), outside any sandbox."""
    answer = subprocess.run(
        [sandbox.interpreter(), "-I", "-S", "-c", FLOOR],
        input=json.dumps([codes, inputs, empty, repeats]),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(answer.stdout)


def floor_report(codes: list[str], inputs: list, before: float, repeats: int) -> None:
    """The process-per-program floor here, against the 2x target (half the earlier programs/s)."""
    cores = len(os.sched_getaffinity(0))
    empty = statistics.median(process_floor(codes, inputs, True, 3) for _ in range(repeats))
    running = statistics.median(process_floor(codes, inputs, False, 3) for _ in range(repeats))
    ceiling = cores / running * 1000
    print(
        f"\na process per program, no sandbox at all ({repeats} runs, medians, load "
        f"{os.getloadavg()[0]:.2f}): fork and exit {empty:.2f} ms of CPU per program; fork, compile, "
        f"call and write back {running:.2f} ms"
    )
    print(
        f"  at that cost {cores} busy cores run at most {ceiling:.0f} programs/s: {ceiling / before:.2f} of "
        f"the earlier version's {before:.0f} (the target is 0.5)"
    )


def experiment_evaluations(modules: dict[str, types.ModuleType], evaluations: int) -> None:
    """Seconds per evaluation of the code-translation experiment with each version's ``run_functions``."""
    import numpy as np
    import torch

    from afterlearner.experiments.code_translation import task as translation

    torch.set_num_threads(1)
    task = translation.make_task(metric="ca")
    trained, generator = task.aleph.identity(), np.random.default_rng(0)
    walls: dict[str, list[float]] = {name: [] for name in modules}
    inside: dict[str, list[float]] = {name: [] for name in modules}
    original, loads = translation.run_functions, [os.getloadavg()[0]]
    try:
        for evaluation in range(evaluations + 1):  # the first round warms up and is not counted
            candidate = trained + generator.normal(scale=0.01, size=trained.shape)
            losses = []
            for name in list(modules) if evaluation % 2 == 0 else list(reversed(modules)):
                spent: list[float] = []

                def timed(*args, run=modules[name].run_functions, spent=spent, **kwargs):
                    started = time.perf_counter()
                    outcomes = run(*args, **kwargs)
                    spent.append(time.perf_counter() - started)
                    return outcomes

                translation.run_functions = timed
                with task.aleph.applied(candidate) as model:
                    started = time.perf_counter()
                    losses.append(task.loss(model))
                    wall = time.perf_counter() - started
                if evaluation:
                    walls[name].append(wall)
                    inside[name].append(sum(spent))
            assert len(set(losses)) == 1, f"the versions disagree on the loss: {losses}"
            loads.append(os.getloadavg()[0])
    finally:
        translation.run_functions = original
    print(
        f"\ncode-translation experiment, CA on its 100-program ℵ-set: {evaluations} interleaved "
        f"evaluations per version (equal losses), load average {min(loads):.2f}–{max(loads):.2f}"
    )
    for name in modules:
        print(
            f"  {name:>24}: median {statistics.median(walls[name]):.3f} s per evaluation, of which "
            f"running the programs {statistics.median(inside[name]):.3f} s"
        )
    before, after = (statistics.median(values) for values in walls.values())
    print(f"  evaluations per second, after / before: {before / after:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="613a10a", help="git revision of the earlier sandbox")
    parser.add_argument("--programs", type=int, nargs="+", default=[100, 16], help="batch sizes")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--experiment", type=int, default=0, metavar="N", help="also time N evaluations of the experiment"
    )
    parser.add_argument("--floor", action="store_true", help="also measure a process per program, no sandbox")
    args = parser.parse_args()
    modules = {f"before ({args.baseline})": baseline_module(args.baseline), "after (this tree)": sandbox}
    versions = {name: module.run_functions for name, module in modules.items()}
    cores = len(os.sched_getaffinity(0))
    print(f"cores available: {cores}; interpreter in the sandbox: {sandbox.interpreter()}")
    for count in args.programs:
        codes, inputs = batch(count)
        for run in versions.values():
            run(codes, inputs)  # warm up: caches, page cache
        rates: dict[str, list[float]] = {name: [] for name in versions}
        results: dict[str, list] = {}
        loads = [os.getloadavg()[0]]
        for repeat in range(args.repeats):
            order = list(versions) if repeat % 2 == 0 else list(reversed(versions))
            for name in order:
                rate, outcomes = measure(versions[name], codes, inputs)
                rates[name].append(rate)
                results[name] = [(o.ok, o.outputs) for o in outcomes]
            loads.append(os.getloadavg()[0])
        first, *others = results.values()
        assert all(other == first for other in others), "the versions disagree on some program"
        ok = sum(okay for okay, _ in first)
        load = f"load average {min(loads):.2f}–{max(loads):.2f}"
        print(f"\nbatch of {count} programs ({ok} run correctly), {args.repeats} interleaved repeats, {load}")
        for name, values in rates.items():
            quartiles = statistics.quantiles(values, n=4)
            work = cpu_per_program(modules[name], codes, inputs, args.repeats)
            print(
                f"  {name:>24}: median {statistics.median(values):7.1f} programs/s"
                f"  (quartiles {quartiles[0]:.1f}–{quartiles[2]:.1f}), CPU {work:.2f} ms per program"
            )
        before, after = (statistics.median(values) for values in rates.values())
        print(f"  after / before: {after / before:.2f}")
        if args.floor and count == max(args.programs):
            floor_report(codes, inputs, before, args.repeats)
    if args.experiment:
        experiment_evaluations(modules, args.experiment)


if __name__ == "__main__":
    main()
