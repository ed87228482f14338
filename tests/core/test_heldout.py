"""Is a held-out gain real: intervals and p-values checked against hand computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

import afterlearner as al
from afterlearner import heldout
from afterlearner.cli import main
from afterlearner.losses import DatasetLoss, error_rate


def test_clopper_pearson_for_zero_one_losses() -> None:
    losses = np.array([1.0] * 13 + [0.0] * 87)
    interval = heldout.loss_interval(losses)
    exact = stats.binomtest(13, 100).proportion_ci(confidence_level=0.95, method="exact")
    assert interval.value == 0.13 and interval.method == "Clopper-Pearson"
    assert interval.low == pytest.approx(exact.low, abs=1e-12) and interval.high == pytest.approx(exact.high)
    none = heldout.loss_interval(np.zeros(50))
    assert (none.low, none.high) == (0.0, pytest.approx(1 - 0.025 ** (1 / 50)))


def test_a_bootstrap_interval_for_other_losses_matches_the_normal_one() -> None:
    losses = np.random.default_rng(3).gamma(2.0, 0.5, size=2000)
    interval = heldout.loss_interval(losses)
    half = 1.96 * losses.std(ddof=1) / math.sqrt(losses.size)
    assert interval.method == "bootstrap"
    assert interval.low == pytest.approx(losses.mean() - half, abs=0.15 * half)
    assert interval.high == pytest.approx(losses.mean() + half, abs=0.15 * half)


def test_the_paired_gain_interval_and_the_sign_flip_p_value() -> None:
    rng = np.random.default_rng(1)
    before = rng.normal(1.0, 0.3, size=400)
    after = before - 0.05 + rng.normal(0, 0.1, size=400)  # better by 0.05, paired noise 0.1
    gain = heldout.per_sample_gain(before, after)
    differences = before - after
    half = 1.96 * differences.std(ddof=1) / math.sqrt(differences.size)
    assert gain.value == pytest.approx(differences.mean())
    assert gain.low == pytest.approx(differences.mean() - half, abs=0.15 * half)
    assert gain.high == pytest.approx(differences.mean() + half, abs=0.15 * half)
    assert gain.verdict == "holds" and gain.p_value < 0.001 and gain.n == 400
    assert str(gain).startswith(f"{gain.value:.4g} [")


def test_the_sign_flip_p_value_equals_the_exact_enumeration_on_a_small_set() -> None:
    differences = np.array([0.3, -0.1, 0.25, 0.4, -0.05, 0.2, 0.15, -0.2, 0.35, 0.1])
    observed = abs(differences.mean())
    flips = np.array(list(itertools.product((-1.0, 1.0), repeat=differences.size)))
    exact = float((np.abs((flips * differences).mean(axis=1)) >= observed - 1e-15).mean())
    gain = heldout.per_sample_gain(differences, np.zeros_like(differences))
    assert gain.p_value == pytest.approx(exact, abs=0.01)


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        ([1, 1, 1, 0] * 50, [0, 1, 0, 0] * 50, "holds"),
        ([0, 1, 0, 0] * 50, [1, 1, 1, 0] * 50, "worse"),
        ([1, 0, 0, 0] * 50, [0, 1, 0, 0] * 50, "not significant"),
    ],
)
def test_the_verdict_says_holds_only_when_the_interval_excludes_zero(before, after, verdict) -> None:
    gain = heldout.per_sample_gain(np.array(before, dtype=float), np.array(after, dtype=float))
    assert gain.verdict == verdict
    assert (gain.low > 0) == (verdict == "holds") and (gain.high < 0) == (verdict == "worse")


def test_a_corpus_metric_is_bootstrapped_over_items_and_agrees_with_the_per_sample_form() -> None:
    rng = np.random.default_rng(2)
    targets = rng.integers(0, 3, size=600)
    before = torch.nn.functional.one_hot(
        torch.as_tensor(np.where(rng.random(600) < 0.3, (targets + 1) % 3, targets)), 3
    )
    after = torch.nn.functional.one_hot(
        torch.as_tensor(np.where(rng.random(600) < 0.2, (targets + 1) % 3, targets)), 3
    )
    by_metric = heldout.metric_comparison(error_rate, before.float(), after.float(), targets)
    wrong = lambda outputs: (outputs.argmax(1).numpy() != targets).astype(float)  # noqa: E731
    by_sample = heldout.per_sample_gain(wrong(before), wrong(after))
    assert by_metric.gain.value == pytest.approx(by_sample.value)
    assert by_metric.gain.low == pytest.approx(by_sample.low, abs=0.01)
    assert by_metric.gain.high == pytest.approx(by_sample.high, abs=0.01)
    assert by_metric.gain.verdict == by_sample.verdict == "holds"
    assert by_metric.before.low < by_metric.before.value < by_metric.before.high


def _classifier_task():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    x = torch.randn(500, 5, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] > 0.3).long() + (x[:, 1] > 0.5).long()
    aleph = al.Aleph(model).add("bias")
    return model, aleph, DatasetLoss(x[:200], y[:200]), x[200:], y[200:]


def test_retrofit_reports_the_gain_of_a_dataset_loss_and_of_per_sample_losses(tmp_path) -> None:
    model, aleph, loss, x_test, y_test = _classifier_task()
    result = al.retrofit(aleph, loss, budget=60, progress=False, test_loss=DatasetLoss(x_test, y_test))
    gain = result.test_gain
    assert gain is not None and gain.method == "paired bootstrap of the metric" and gain.n == 300
    assert gain.value == pytest.approx(result.test_initial - result.test_best)
    result.restore()

    def per_sample(m) -> np.ndarray:
        return (m(x_test).argmax(1) != y_test).float().numpy()

    store = tmp_path / "s.sqlite"
    result = al.retrofit(aleph, loss, budget=60, progress=False, test_loss=per_sample, store=store)
    assert result.test_gain.method == "paired bootstrap, sign-flip test"
    assert result.held_out.before.method == "Clopper-Pearson"
    assert result.test_initial == pytest.approx(float(per_sample_before(model, aleph, x_test, y_test)))
    result.restore()
    again = al.retrofit(aleph, loss, budget=60, progress=False, test_loss=per_sample, store=store)
    assert again.already_complete and again.test_gain == result.test_gain  # journaled, read back


def per_sample_before(model, aleph, x_test, y_test) -> float:
    with aleph.applied(aleph.identity()):
        return float((model(x_test).argmax(1) != y_test).float().mean())


def test_the_cli_table_prints_the_gain_with_its_interval_and_verdict(tmp_path, capsys) -> None:
    task_file = tmp_path / "gain_task.py"
    task_file.write_text(
        "import torch, afterlearner as al\n"
        "def task():\n"
        "    torch.manual_seed(0)\n"
        "    model = torch.nn.Linear(5, 3)\n"
        "    x = torch.randn(500, 5, generator=torch.Generator().manual_seed(1))\n"
        "    y = (x[:, 0] > 0.3).long() + (x[:, 1] > 0.5).long()\n"
        "    aleph = al.Aleph(model).add('bias')\n"
        "    return al.Task(aleph=aleph, loss=al.DatasetLoss(x[:200], y[:200]),\n"
        "                   test_loss=al.DatasetLoss(x[200:], y[200:]), n=200, budget=60)\n"
    )
    assert main(["run", str(task_file), "--quiet"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "held-out gain" in line)
    assert "[" in row and ("p =" in row or "p < 0.001" in row)  # a p-value below 0.001 reads "p < 0.001"
    assert any(v in row for v in ("holds", "not significant", "worse"))
