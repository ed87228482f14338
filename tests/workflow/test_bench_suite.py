"""The optimizer suite's machinery (bench/suite.py) on tiny tasks: records, ranks, tables."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from paths import ROOT  # noqa: E402

import afterlearner as al

sys.path.insert(0, str(ROOT / "bench"))
import suite  # noqa: E402
from suite_tasks import SuiteTask  # noqa: E402


def tiny_task(seed: int) -> al.Task:
    """A 4-class linear classifier on random data, its bias retrofitted for error rate (4 scalars)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(120, 5, generator=generator)
    y = (x[:, :4] + 0.8 * torch.randn(120, 4, generator=generator)).argmax(1).numpy()
    torch.manual_seed(seed)
    model = torch.nn.Linear(5, 4)

    def error(m: torch.nn.Module, part: slice) -> float:
        return float((m(x[part]).argmax(1).numpy() != y[part]).mean())

    return al.Task(
        aleph=al.Aleph(model).add("bias", step=0.5),
        loss=lambda m: error(m, slice(0, 60)),
        test_loss=lambda m: error(m, slice(60, 120)),
        name=f"tiny-{seed}",
        n=60,
    )


TINY = [SuiteTask(f"tiny-{s}", "tiny linear classifier", s == 0, lambda s=s: tiny_task(s)) for s in (0, 1)]
BUDGETS = (6, 10)
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    runners = [suite.EngineRunner("OnePlusOne"), suite.EngineRunner("DiagonalCMA")]
    runners += [suite.RuleRunner("DiagonalCMA", ("mean", "top5")), suite.HandCMARunner()]
    journal = tmp_path_factory.mktemp("suite") / "records.jsonl"
    records, facts, skips = suite.run_suite(TINY, runners, SEEDS, BUDGETS, journal, log=lambda _: None)
    return records, facts, skips, journal, runners


def test_records_cover_every_task_method_budget_and_seed(ran):
    records, facts, skips, _, _ = ran
    methods = {"OnePlusOne", "DiagonalCMA", "DiagonalCMA+mean", "DiagonalCMA+top5", suite.HAND_CMA}
    cells = {(r.task, r.method, r.budget, r.seed) for r in records if not r.method.endswith(suite.LOOP)}
    assert cells == {(t.name, m, b, s) for t in TINY for m in methods for b in BUDGETS for s in SEEDS}
    assert set(facts) == {"tiny-0", "tiny-1"} and facts["tiny-0"]["dimension"] == 4 and not skips
    assert all(math.isfinite(r.held_out) and math.isfinite(r.aleph) and r.ms_per_eval > 0 for r in records)
    best = [r for r in records if r.method == "OnePlusOne"]
    assert all(r.aleph <= facts[r.task]["trained_aleph"] for r in best)  # the engine never returns worse


def test_bench_loop_reproduces_the_engine(ran):
    records = ran[0]
    loop = [r for r in records if r.method == "DiagonalCMA" + suite.LOOP]
    engine = {(r.task, r.budget, r.seed): r for r in records if r.method == "DiagonalCMA"}
    assert len(loop) == len(engine) == len(TINY) * len(BUDGETS) * len(SEEDS)
    for record in loop:
        twin = engine[(record.task, record.budget, record.seed)]
        assert (twin.aleph, twin.held_out) == (record.aleph, record.held_out)
    assert suite.loop_check(records) == (len(loop), len(loop))


def test_one_run_gives_every_budget(ran):
    """The engine runs once at the largest budget: its prefix is a run of each smaller budget (checked by
    the runner on the first seed); the hand CMA loop's recommendation after b evaluations too."""
    engine_runners = ran[4][:2]
    assert all(runner.per_budget == {"tiny-0": False, "tiny-1": False} for runner in engine_runners)
    built = suite.build(TINY[1])
    once = suite.HandCMARunner().run(built, 1, BUDGETS)
    each = [record for b in BUDGETS for record in suite.HandCMARunner().run(built, 1, [b])]
    assert [(r.budget, r.aleph, r.held_out) for r in once] == [(r.budget, r.aleph, r.held_out) for r in each]


def test_auto_runs_at_every_budget_even_without_the_prefix_check():
    """auto's last evaluation is a final centroid that depends on the budget, so no smaller budget is a
    prefix of its longest run: the runner runs it at every budget (also in --quick, which skips the
    check), and each record is what al.retrofit at that budget returns."""
    built = suite.build(TINY[0])
    records = suite.EngineRunner("auto", check_prefix=False).run(built, 4, (10, 14))  # centroids at both
    for record in records:
        task = built.task
        result = al.retrofit(
            task.aleph, task.loss, budget=record.budget, optimizer="auto", seed=4, test_loss=task.test_loss
        )
        result.restore()
        assert (record.aleph, record.held_out) == (result.best_loss, result.test_best)


def test_the_journal_resumes_without_running_again(ran):
    records, facts, _, journal, runners = ran

    class Refuse(suite.Runner):
        methods = runners[0].methods

        def run(self, *args):
            raise AssertionError("the journal holds this cell")

    again, facts_again, _ = suite.run_suite(TINY[:1], [Refuse()], SEEDS, BUDGETS, journal, log=lambda _: None)
    assert {r for r in again} == {r for r in records if r.task == "tiny-0" and r.method == "OnePlusOne"}
    assert facts_again["tiny-0"] == facts["tiny-0"]


def test_ranks_by_hand():
    def record(method, seed, held_out):
        return suite.Record("t", method, 50, seed, held_out, 0.0, 1.0)

    records = [
        record("A", 0, 0.1),
        record("B", 0, 0.2),
        record("C", 0, 0.1),  # ties with A: both get (1 + 2) / 2
        record("A", 1, 0.3),
        record("B", 1, 0.2),
        record("C", 1, 0.1),
    ]
    rank = suite.ranks(records)
    assert [rank[("t", m, 50, 0)] for m in "ABC"] == [1.5, 3.0, 1.5]
    assert [rank[("t", m, 50, 1)] for m in "ABC"] == [3.0, 2.0, 1.0]
    summary = suite.summarize(records)
    mean, half = summary.mean_rank("A")
    assert mean == pytest.approx(2.25)
    # the 95% t-interval over the 2 seeds' ranks 1.5 and 3: t(0.975, 1) · sd / √2
    assert half == pytest.approx(12.7062047 * np.std([1.5, 3.0], ddof=1) / math.sqrt(2))
    assert summary.mean_rank("C") == pytest.approx(
        (1.25, 12.7062047 * np.std([1.5, 1.0], ddof=1) / math.sqrt(2))
    )
    assert suite.verdict(-0.5, 0.2) == "lower (holds)" and suite.verdict(-0.5, 0.6) == "not significant"


def test_the_classifier_target_is_judged_on_the_check_when_there_is_one():
    """Seeds 0-1: the default is above the hand loop on the classifier task (target not met); the
    check adds seeds 2-5 where it is below, and the target is judged on all six, seed by seed."""
    common = {"trained_held_out": 0.5, "trained_aleph": 0.5, "kind": "test", "dimension": 3, "build_s": 0}
    facts = {"clf": {**common, "classifier": True}, "reg": {**common, "classifier": False}}

    def record(task, method, seed, held_out):
        return suite.Record(task, method, 50, seed, held_out, 0.0, 1.0)

    suite_records = [record("clf", "auto", s, 0.30) for s in (0, 1)]
    suite_records += [record("clf", suite.HAND_CMA, s, 0.20) for s in (0, 1)]
    suite_records += [record("reg", m, s, 1.0) for m in ("auto", suite.HAND_CMA) for s in (0, 1)]
    suite_records += [record("clf", "OnePlusOne", s, 0.0) for s in (0, 1)]  # not in the check
    summary = suite.summarize(suite_records)
    lines = suite.target_lines(summary, facts, "auto")
    said = "**not met** on 1 of 1: clf (0.3000 against 0.2000; difference 0.1000"
    assert any(said in line for line in lines)
    assert suite.above_on_suite(summary, facts, "auto") == ["clf (0.1000 ± 0.0000)"]  # +0.1 on both seeds

    check_records = [record("clf", "auto", s, 0.10) for s in (2, 3, 4, 5)]
    check_records += [record("clf", suite.HAND_CMA, s, 0.20 + 0.01 * s) for s in (2, 3, 4, 5)]
    check_records += [record("clf", "auto", 0, 0.99)]  # a cell the suite has: the suite's record stands
    check = suite.classifier_check_summary(suite_records, check_records, facts, "auto")
    assert check.methods == ["auto", suite.HAND_CMA] and check.tasks == ["clf"]
    assert check.seeds == [0, 1, 2, 3, 4, 5]
    # per seed: +0.1, +0.1, then 0.1 − (0.22 … 0.25): mean over six seeds
    expected = np.mean([0.1, 0.1, -0.12, -0.13, -0.14, -0.15])
    mean, _ = suite.paired_difference(check, "auto", suite.HAND_CMA, "clf", [50], lambda r: r.held_out)
    assert mean == pytest.approx(expected)
    lines = suite.target_lines(summary, facts, "auto", check)
    heading = "* Classifier tasks against the hand CMA loop (6 seeds, the classifier check): **met**"
    assert lines[-1].startswith(heading)
    assert "within the interval of no difference on 1: clf" in lines[-1]  # six noisy seeds: no verdict
    text = suite.render(
        suite_records, facts, [], "auto", {"load_before": 1, "load_after": 1, "cpus": 2}, check_records
    )
    assert "### The classifier check: auto against the hand CMA loop over 6 seeds" in text
    assert "above the hand loop's on clf (0.1000 ± 0.0000)" in text


def test_a_budget_where_the_hand_loop_wins_is_said_even_when_the_mean_meets_the_target():
    common = {"trained_held_out": 0.5, "trained_aleph": 0.5, "kind": "test", "dimension": 3, "build_s": 0}
    facts = {"clf": {**common, "classifier": True}}
    records = [
        suite.Record("clf", method, budget, seed, held_out + 0.001 * seed, 0.0, 1.0)
        for seed in range(4)
        for method, budget, held_out in (
            ("auto", 50, 0.30),
            (suite.HAND_CMA, 50, 0.20),  # the hand loop lower at b=50, by 0.1 on every seed
            ("auto", 100, 0.10),
            (suite.HAND_CMA, 100, 0.25),  # and higher at b=100, by more
        )
    ]
    lines = suite.target_lines(suite.summarize(records), facts, "auto")
    assert "**met**" in lines[-2]
    assert lines[-1].startswith("* At a single budget, the hand loop is lower")
    assert "clf at b=50 (0.1000 ± 0.0000)" in lines[-1] and "b=100" not in lines[-1]


def test_tables_have_their_structure(ran):
    records, facts, skips, _, _ = ran
    summary = suite.summarize(records)
    header, rows = suite.overall_table(summary, facts, "OnePlusOne")
    assert header[:2] == ["method", "mean rank"] and len(rows) == 5
    assert all(len(row) == len(header) for row in rows)
    ranks_shown = [float(row[1].split(" ± ")[0]) for row in rows]
    assert ranks_shown == sorted(ranks_shown)  # best first
    # the mean ranks of the methods, 5 per cell, average to (5 + 1) / 2
    assert np.mean([summary.mean_rank(m)[0] for m in summary.methods]) == pytest.approx(3.0)
    header, rows = suite.task_table(summary, "tiny-0", facts["tiny-0"], "OnePlusOne")
    assert rows[0][0] == "(trained model)" and all(len(row) == len(header) for row in rows)
    header, rows = suite.versus_table(summary, facts, "OnePlusOne", suite.HAND_CMA)
    assert [row[0] for row in rows] == ["tiny-0"]  # the classifier tasks only
    context = {"load_before": 1.0, "load_after": 1.0, "cpus": 2}
    text = suite.render(records, facts, skips, "OnePlusOne", context)
    for heading in ("## Overall", "## Per task", "### tiny-0", "### tiny-1", "## Notes"):
        assert heading in text
    assert "reproduced the engine on 8 of 8" in text


def test_auto_always_picks_a_comparison_based_optimizer():
    from afterlearner import optimizers

    for dimension in (1, 2, 12, 30, 31, 51, 330, 2100, 100_000):
        for budget in (1, 10, 50, 100, 200, 10_000):
            for workers in (1, 4, 64):
                name = optimizers.auto(dimension, budget, workers)
                assert optimizers.get(name).comparison_based, (dimension, budget, workers, name)
    info = optimizers.get("auto")
    assert info.comparison_based and info.outcome_class == "ranking" and "auto" in optimizers.available()
    assert [info.resolve(d, 100) for d in (1, 20, 31, 2100)] == [
        "OnePlusOne",
        "LargeCMA",
        "DiagonalCMA",
        "DiagonalCMA",
    ]


def test_auto_runs_in_the_engine():
    task = tiny_task(0)
    result = al.retrofit(task.aleph, task.loss, budget=12, optimizer="auto", seed=3, progress=False)
    result.restore()
    assert result.optimizer == "auto" and result.evaluations == 12 and result.bound(n=60) is not None
    one = al.Aleph(torch.nn.Linear(2, 1)).add("bias")  # a single scalar: OnePlusOne
    assert (
        al.retrofit(one, lambda m: float(m.bias.abs()), budget=5, optimizer="auto", progress=False).best_loss
        >= 0
    )


@pytest.mark.slow
def test_every_suite_task_builds_with_disjoint_losses():
    """The suite's own tasks build from the library as it is now (a renamed module breaks them)."""
    import suite
    from suite_tasks import TASKS

    for spec in TASKS:
        built = suite.build(spec)
        assert built.dimension == len(built.task.aleph) > 0, spec.name
        assert 0 <= built.trained_aleph < float("inf") and 0 <= built.trained_held_out < float("inf")


def test_docs_optimizers_md_is_what_the_committed_journals_render(tmp_path, monkeypatch):
    """docs/optimizers.md, from its first table on, is exactly what the suite's committed snapshots
    render (a fresh checkout: only the .jsonl.gz files), so the page cannot drift from its data."""
    results = ROOT / "bench" / "results"
    for name in ("suite.jsonl.gz", "classifier_check.jsonl.gz"):
        (tmp_path / name).write_bytes((results / name).read_bytes())
    monkeypatch.setattr(suite, "CHECK_JOURNAL", tmp_path / "classifier_check.jsonl")
    page = tmp_path / "optimizers.md"
    suite.main(["--report-only", "--journal", str(tmp_path / "suite.jsonl"), "--docs", str(page)])

    def body(text: str) -> str:
        return text[text.index("## The target, checked") :]

    assert body(page.read_text()) == body((ROOT / "docs" / "optimizers.md").read_text())
    journal = tmp_path / "suite.jsonl"  # unpacked from the snapshot; packing it again gives the same bytes
    suite.write_snapshot(journal)
    assert suite.snapshot_of(journal).read_bytes() == (results / "suite.jsonl.gz").read_bytes()
