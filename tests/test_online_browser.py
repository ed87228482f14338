"""A real browser (Debian's Chromium, headless, driven by Playwright) clicks through a feedback session.

The server is the real command, ``python -m afterlearner feedback serve``, started by the test on a
free port of 127.0.0.1 and killed (SIGKILL) in the middle: the page at the new address must show the
same pending proposal and the answers already given, and the session must run to its end.
Chromium comes from apt (``bash scripts/setup-system.sh``); Playwright never downloads a browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from online_process import DEMO, Server

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[online]'")
expect = playwright_api.expect

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BUDGET = 4


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian packages with `bash scripts/setup-system.sh`")
    with playwright_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


def candidate_images(page: object) -> list[str]:
    return [page.get_by_test_id(f"candidate-{i}").locator("img").get_attribute("src") for i in range(4)]


def test_click_through_a_session_with_a_server_restart(browser: object, tmp_path: Path) -> None:
    store = tmp_path / "clicks.sqlite"
    server = Server("serve", DEMO, "--store", str(store), "--budget", str(BUDGET), "--seed", "7")
    try:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(server.url)
        expect(page.get_by_test_id("progress")).to_have_text(f"0 / {BUDGET} answers")
        start = page.get_by_test_id("best").locator("img").get_attribute("src")
        first = candidate_images(page)
        assert all(src.startswith("data:image/png;base64,") for src in first) and len(set(first)) == 4

        page.get_by_test_id("candidate-2").click()  # one click: option 3 is the best
        expect(page.get_by_test_id("progress")).to_have_text(f"1 / {BUDGET} answers")
        expect(page.get_by_test_id("best").locator("img")).to_have_attribute("src", first[2])
        assert page.get_by_test_id("best").locator("img").get_attribute("src") != start

        # a second tab shows the same proposal; the first tab answers it; the second tab's vote is refused
        other = browser.new_page(viewport={"width": 390, "height": 844})
        other.goto(server.url)
        expect(other.get_by_test_id("progress")).to_have_text(f"1 / {BUDGET} answers")
        second = candidate_images(page)
        assert candidate_images(other) == second
        page.get_by_test_id("none").click()
        expect(page.get_by_test_id("progress")).to_have_text(f"2 / {BUDGET} answers")
        other.get_by_test_id("candidate-0").click()
        expect(other.get_by_test_id("status")).to_have_text(re.compile("proposal 2 was already answered"))
        # the refused tab was refreshed and its vote not counted; "none" kept the best
        expect(other.get_by_test_id("progress")).to_have_text(f"2 / {BUDGET} answers")
        expect(page.get_by_test_id("best").locator("img")).to_have_attribute("src", first[2])
        pending = candidate_images(page)
        assert candidate_images(other) == pending
        # the phone-sized tab fits its width: no card sticks out
        for i in range(4):
            box = other.get_by_test_id(f"candidate-{i}").bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        other.screenshot(path=str(tmp_path / "phone.png"), full_page=True)

        server.kill()  # the process dies with a proposal on screen
        server = Server("serve", DEMO, "--store", str(store), "--budget", str(BUDGET), "--seed", "7")
        page.goto(server.url)
        expect(page.get_by_test_id("progress")).to_have_text(f"2 / {BUDGET} answers")
        assert candidate_images(page) == pending  # same proposal, not a new one: nothing asked twice
        expect(page.get_by_test_id("best").locator("img")).to_have_attribute("src", first[2])
        page.goto(server.url.replace("token=", "token=x"))
        assert "access token" in page.content()
        page.goto(server.url)

        page.get_by_test_id("candidate-1").click()
        expect(page.get_by_test_id("progress")).to_have_text(f"3 / {BUDGET} answers")
        expect(page.get_by_test_id("best").locator("img")).to_have_attribute("src", pending[1])
        page.get_by_test_id("none").click()
        expect(page.get_by_test_id("progress")).to_have_text(f"{BUDGET} / {BUDGET} answers")
        expect(page.get_by_test_id("done")).to_be_visible()
        expect(page.get_by_test_id("candidates")).to_be_hidden()
        expect(page.get_by_test_id("best").locator("img")).to_have_attribute("src", pending[1])
    finally:
        server.stop()
    assert server.process.returncode is not None


def test_sound_candidates_get_audio_players_and_choose_buttons(browser: object, tmp_path: Path) -> None:
    tone = Path(__file__).parent / "tasks" / "feedback_tone_task.py"
    server = Server("serve", f"{tone}:factory", "--store", str(tmp_path / "tone.sqlite"), "--seed", "1")
    try:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(server.url)
        expect(page.get_by_test_id("progress")).to_have_text("0 / 2 answers")
        expect(page.locator("#candidates audio")).to_have_count(3)
        sources = [page.locator("#candidates audio").nth(i).get_attribute("src") for i in range(3)]
        assert all(src.startswith("data:audio/wav;base64,") for src in sources)
        page.get_by_role("button", name="Choose option 2").click()
        expect(page.get_by_test_id("progress")).to_have_text("1 / 2 answers")
        expect(page.get_by_test_id("best").locator("audio")).to_have_attribute("src", sources[1])
        page.get_by_test_id("none").click()
        expect(page.get_by_test_id("done")).to_be_visible()
        expect(page.get_by_test_id("best").locator("audio")).to_have_attribute("src", sources[1])
    finally:
        server.stop()
