"""A real browser (Debian's Chromium, headless, driven by Playwright) clicks through a feedback session.

The server is the real command, ``python -m afterlearner feedback serve``, started by the test on a
free port of 127.0.0.1 and killed (SIGKILL) in the middle: the page at the new address must show the
same pending proposal and the answers already given, and the session must run to its end.
Chromium comes from apt (``bash scripts/setup-system.sh``); Playwright never downloads a browser.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from online_process import DEMO, Server
from paths import TASKS
from test_online_page_limits import Command

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
#: ``AFTERLEARNER_SCREENSHOTS=DIR`` also writes the screenshots of docs/online.md there.
SCREENSHOTS = os.environ.get("AFTERLEARNER_SCREENSHOTS")


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
        expect(other.get_by_test_id("status")).to_have_text(
            re.compile("already answered, maybe in another tab")
        )
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
        expect(page.get_by_test_id("final").locator("img")).to_have_attribute("src", pending[1])
    finally:
        server.stop()
    assert server.process.returncode is not None


def test_sound_candidates_get_audio_players_and_choose_buttons(browser: object, tmp_path: Path) -> None:
    tone = TASKS / "feedback_tone_task.py"
    server = Server("serve", f"{tone}:factory", "--store", str(tmp_path / "tone.sqlite"), "--seed", "1")
    try:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(server.url)
        expect(page.get_by_test_id("progress")).to_have_text("0 / 2 answers")
        players = page.locator("#board [data-testid^='candidate-'] audio")
        expect(players).to_have_count(3)
        sources = [players.nth(i).get_attribute("src") for i in range(3)]
        assert all(src.startswith("data:audio/wav;base64,") for src in sources)
        page.get_by_role("button", name="Choose option 2").click()
        expect(page.get_by_test_id("progress")).to_have_text("1 / 2 answers")
        expect(page.get_by_test_id("best").locator("audio")).to_have_attribute("src", sources[1])
        page.get_by_test_id("none").click()
        expect(page.get_by_test_id("done")).to_be_visible()
        expect(page.get_by_test_id("final").locator("audio")).to_have_attribute("src", sources[1])
    finally:
        server.stop()


def test_keyboard_answers_undo_and_restart_agree_with_the_journal(browser: object, tmp_path: Path) -> None:
    """Answer with keys, undo one answer with U, restart the server: the page and the store agree."""
    from afterlearner.store import Store

    store = tmp_path / "keys.sqlite"
    arguments = ("feedback", "serve", DEMO, "--store", store.name, "--budget", "4", "--seed", "3")
    server = Command(*arguments, cwd=tmp_path)  # the store named as a person types it, in their folder
    try:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(server.url)
        expect(page.get_by_test_id("progress")).to_have_text("0 / 4 answers")
        # the current best is drawn at least as large as every candidate
        best_box = page.get_by_test_id("best").locator("img").bounding_box()
        for i in range(4):
            box = page.get_by_test_id(f"candidate-{i}").locator("img").bounding_box()
            assert best_box["width"] >= box["width"] - 0.5 and best_box["height"] >= box["height"] - 0.5
        first = candidate_images(page)
        page.keyboard.press("3")  # option 3 is the best
        expect(page.get_by_test_id("progress")).to_have_text("1 / 4 answers")
        expect(page.get_by_test_id("best").locator("img")).to_have_attribute("src", first[2])
        if SCREENSHOTS:
            page.wait_for_timeout(500)  # the progress bar's transition
            page.screenshot(path=f"{SCREENSHOTS}/online-page-desktop.png", full_page=True)
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.goto(server.url)
            expect(phone.get_by_test_id("progress")).to_have_text("1 / 4 answers")
            phone.wait_for_timeout(500)
            phone.screenshot(path=f"{SCREENSHOTS}/online-page-phone.png", full_page=True)
            phone.close()
        second = candidate_images(page)
        page.keyboard.press("n")  # none is better
        expect(page.get_by_test_id("progress")).to_have_text("2 / 4 answers")
        third = candidate_images(page)
        page.keyboard.press("1")
        expect(page.get_by_test_id("progress")).to_have_text("3 / 4 answers")
        page.keyboard.press("u")  # take back the last answer: the third question is asked again
        expect(page.get_by_test_id("progress")).to_have_text("2 / 4 answers")
        expect(page.get_by_test_id("status")).to_have_text(re.compile("Answer 3 was taken back"))
        assert candidate_images(page) == third
        expect(page.get_by_test_id("best").locator("img")).to_have_attribute("src", first[2])

        server.stop()  # a clean stop prints the summary
        printed = server.printed()
        assert "stopped: 2/4 answers given (2 answers left), 1 improvement" in printed
        assert "best candidate: chosen at question 1" in printed
        assert "afterlearner dashboard keys.sqlite" in printed
        with Store.open(store, readonly=True) as journal:
            answers = journal.answers(0)
            undone = journal.undone(0)
        assert [answer for _, answer in answers] == [{"kind": "best", "choice": 2}, {"kind": "none"}]
        assert [entry["answer"] for entry in undone] == [{"kind": "best", "choice": 0}]

        # the undo is replayed: the same third question, nothing asked twice
        server = Command(*arguments, cwd=tmp_path)
        page.goto(server.url)
        expect(page.get_by_test_id("progress")).to_have_text("2 / 4 answers")
        assert candidate_images(page) == third and second != third
        expect(page.get_by_test_id("best").locator("img")).to_have_attribute("src", first[2])
        page.keyboard.press("0")
        expect(page.get_by_test_id("progress")).to_have_text("3 / 4 answers")
        page.keyboard.press("4")
        expect(page.get_by_test_id("done")).to_be_visible()
        expect(page.get_by_test_id("final").locator("img")).to_be_visible()
        expect(page.get_by_test_id("keep")).to_contain_text("afterlearner dashboard keys.sqlite")
        expect(page.get_by_test_id("final").get_by_role("link")).to_have_attribute("download", "best.png")
        if SCREENSHOTS:
            page.wait_for_timeout(500)
            page.screenshot(path=f"{SCREENSHOTS}/online-page-finished.png", full_page=True)
    finally:
        server.stop()
    with Store.open(store, readonly=True) as journal:
        assert len(journal.answers(0)) == 4 and len(journal.undone(0)) == 1


def test_ranking_by_dragging_and_pairs_side_by_side(browser: object, tmp_path: Path) -> None:
    """A task asking for rankings gets drag-to-rank; one asking for pairs gets two-up comparisons."""
    from afterlearner.store import Store

    ranked = TASKS / "feedback_kinds_task.py"
    server = Server("serve", f"{ranked}:ranking", "--store", str(tmp_path / "rank.sqlite"))
    try:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(server.url)
        board = page.get_by_test_id("candidates")
        expect(board).to_have_attribute("data-order", "current,0,1,2")
        expect(page.get_by_test_id("none")).to_be_hidden()
        source = page.get_by_test_id("candidate-2").bounding_box()
        target = page.get_by_test_id("best").bounding_box()
        page.mouse.move(source["x"] + source["width"] / 2, source["y"] + 20)
        page.mouse.down()
        page.mouse.move(target["x"] + target["width"] / 2, target["y"] + 20, steps=8)
        page.mouse.up()
        expect(board).to_have_attribute("data-order", "2,current,0,1")
        page.get_by_test_id("candidate-1").get_by_title("move earlier").click()
        expect(board).to_have_attribute("data-order", "2,current,1,0")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("progress")).to_have_text("1 / 2 answers")
    finally:
        server.stop()
    with Store.open(tmp_path / "rank.sqlite", readonly=True) as journal:
        assert journal.answers(0)[0][1] == {"kind": "ranking", "order": [2, "current", 1, 0]}

    server = Server("serve", f"{ranked}:pairs", "--store", str(tmp_path / "pair.sqlite"))
    try:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(server.url)
        expect(page.get_by_test_id("candidates").locator(".card")).to_have_count(2)
        expect(page.get_by_test_id("candidate-0")).to_be_visible()
        expect(page.get_by_test_id("candidate-1")).to_be_visible()
        page.keyboard.press("ArrowRight")  # option 2 beats option 1 ...
        expect(page.get_by_test_id("candidate-2")).to_be_visible()
        page.keyboard.press("u")  # ... no: undo the step, nothing was sent
        expect(page.get_by_test_id("candidate-0")).to_be_visible()
        page.keyboard.press("2")
        page.get_by_test_id("candidate-2").click()  # option 3 beats option 2 (the text cards are buttons)
        expect(page.get_by_test_id("best")).to_be_visible()  # now against the current best
        expect(page.get_by_test_id("progress")).to_have_text("0 / 2 answers")
        page.keyboard.press("2")  # option 3 is better than the current best
        expect(page.get_by_test_id("progress")).to_have_text("1 / 2 answers")
    finally:
        server.stop()
    with Store.open(tmp_path / "pair.sqlite", readonly=True) as journal:
        assert journal.answers(0)[0][1] == {"kind": "pair", "winner": 2, "loser": "current"}
