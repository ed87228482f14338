"""A real browser (Debian's Chromium, headless, driven by Playwright) on ``afterlearner dashboard``.

The dashboard is the real command in a child process; a real ``afterlearner run`` writes one of its
stores meanwhile. The page must draw more points as the run goes on (within 2 s of a commit),
overlay two runs, download the CSV, and redraw 2 × 10,000 evaluations in under a second.
``AFTERLEARNER_SCREENSHOTS=DIR`` also writes the screenshots of docs/dashboard.md there.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from paths import TASKS
from test_online_page_limits import dashboard

from afterlearner.store import Evaluation, Store

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[online]'")
expect = playwright_api.expect

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TASK = TASKS / "quadratic_task.py"
SCREENSHOTS = os.environ.get("AFTERLEARNER_SCREENSHOTS")


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian packages with `bash scripts/setup-system.sh`")
    with playwright_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


def run(store: Path, budget: int, sleep: float = 0.0, optimizer: str = "OnePlusOne") -> subprocess.Popen:
    """``afterlearner run`` of the quadratic task writing ``store`` (each evaluation takes ``sleep`` s)."""
    command = [sys.executable, "-m", "afterlearner", "run", f"{TASK}:task", "--store", str(store)]
    command += ["--budget", str(budget), "--optimizer", optimizer, "--quiet"]
    env = {**os.environ, "AFTERLEARNER_TEST_SLEEP": str(sleep)}
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def evaluations_in(store: Path) -> int:
    with Store.open(store, readonly=True) as reader:
        return len(reader.evaluations())


def points(page: object) -> int:
    return int(page.get_by_test_id("chart").get_attribute("data-points"))


def test_live_run_two_runs_overlaid_and_the_csv(browser: object, tmp_path: Path) -> None:
    done, live = tmp_path / "done.sqlite", tmp_path / "live.sqlite"
    assert run(done, 60, optimizer="TwoPointsDE").wait(timeout=300) == 0
    writer = run(live, 400, sleep=0.05)
    server = dashboard(live.name, done.name, cwd=tmp_path)  # as a person types them, in their folder
    try:
        deadline = time.monotonic() + 60
        while not live.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page.goto(server.url)
        chart = page.get_by_test_id("chart")
        expect(chart).to_have_attribute("data-runs", "2")  # the first run of each store, overlaid
        expect(page.locator("#legend .swatch")).to_have_count(2)
        expect(page.get_by_test_id("run-0-0")).to_contain_text("running")
        expect(page.get_by_test_id("run-1-0")).to_contain_text("finished")
        expect(page.get_by_test_id("run-1-0")).to_contain_text("60 / 60")
        # the number of points drawn grows while the run writes, each new one within 2 s of its commit
        first = points(page)
        for _ in range(3):
            committed = evaluations_in(live) + 60
            started = time.monotonic()
            shown = "(n) => Number(document.getElementById('chart').dataset.points) >= n"
            page.wait_for_function(shown, arg=committed, timeout=2500)
            lag = time.monotonic() - started
            assert lag < 2.0, f"the page showed the evaluations {lag:.2f} s after they were committed"
        assert points(page) > first
        if SCREENSHOTS:
            page.wait_for_timeout(2500)  # the best candidate's view follows every 2 s
            page.screenshot(path=f"{SCREENSHOTS}/dashboard-desktop.png", full_page=True)
        # the best candidate of the live run, by name, with the export command
        expect(page.get_by_test_id("values")).to_contain_text("fc.weight[3,:]")
        expect(page.get_by_test_id("params")).to_have_attribute("data-charts", "8")
        expect(page.get_by_test_id("export")).to_contain_text("afterlearner export live.sqlite --task")
        # one run alone: unticking the live one leaves the finished run's 60 points
        page.get_by_test_id("select-0-0").uncheck()
        expect(chart).to_have_attribute("data-runs", "1")
        expect(chart).to_have_attribute("data-points", "60")
        page.get_by_test_id("select-0-0").check()
        expect(chart).to_have_attribute("data-runs", "2")
        # the CSV of the finished store, downloaded
        with page.expect_download() as download:
            page.get_by_test_id("csv-1").click()
        saved = tmp_path / "downloaded.csv"
        download.value.save_as(saved)
        rows = list(csv.DictReader(saved.open()))
        assert download.value.suggested_filename == "done-evaluations.csv"
        assert len(rows) == 60 and rows[0]["index"] == "0" and "fc.bias[0]" in rows[0]
        if SCREENSHOTS:
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.goto(server.url)
            expect(phone.get_by_test_id("params")).to_have_attribute("data-charts", "8")
            phone.wait_for_timeout(1500)
            phone.screenshot(path=f"{SCREENSHOTS}/dashboard-phone.png", full_page=True)
    finally:
        writer.kill()
        writer.wait(timeout=30)
        server.stop()
    assert server.process.returncode == 0 and "the stores were only read" in server.printed()


def big_store(path: Path, runs: int, size: int = 10_000) -> None:
    """A store of ``runs`` runs of ``size`` evaluations each (a few failed), written directly."""
    space = [{"kind": "tensor", "mode": "offset", "name": "w", "per": "element", "shape": [6], "size": 6}]
    settings = {"space": space, "optimizer": "OnePlusOne", "budget": size, "workers": 1, "runs": runs}
    rng = np.random.default_rng(0)
    with Store.open(path) as store:
        store.bind({**settings, "seed": 0, "task": "big"})
        for run_index in range(runs):
            store.start_run(run_index, seed=run_index)
            losses = np.exp(-np.arange(size) / 2000) * rng.lognormal(0, 0.5, size)
            store.record_batch(
                [
                    Evaluation(run_index, i, rng.normal(0, 0.1, 6), None, "failed", "boom", 0.0)
                    if i % 997 == 5
                    else Evaluation(run_index, i, rng.normal(0, 0.1, 6), float(losses[i]), "ok", None, 0.0)
                    for i in range(size)
                ]
            )
            store.finish_run(run_index, "finished")


def test_ten_thousand_evaluations_redraw_in_under_a_second(browser: object, tmp_path: Path) -> None:
    big_store(tmp_path / "big.sqlite", runs=2)
    server = dashboard(str(tmp_path / "big.sqlite"))
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.url)
        page.get_by_test_id("select-0-1").check()
        chart = page.get_by_test_id("chart")
        expect(chart).to_have_attribute("data-points", "20000", timeout=15000)
        expect(page.get_by_test_id("params")).to_have_attribute("data-charts", "6", timeout=15000)
        timings = page.evaluate(
            """async () => {
                const times = [];
                for (let i = 0; i < 5; i++) {
                    const started = performance.now();
                    state.chartKeys = "";          // rebuild the chart, then draw every point
                    drawChart();
                    await new Promise((done) => requestAnimationFrame(() => done()));
                    times.push(performance.now() - started);
                }
                return times;
            }"""
        )
        worst = max(timings)
        print(f"redraw of 2 x 10,000 evaluations: {', '.join(f'{t:.0f}' for t in timings)} ms")
        assert worst < 1000, f"redrawing 20,000 evaluations took {worst:.0f} ms"
        assert page.get_by_test_id("chart-note").inner_text().startswith("20000 evaluations drawn, 2 runs")
    finally:
        server.stop()
