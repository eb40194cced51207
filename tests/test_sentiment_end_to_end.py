"""Sentiment beside load, end to end: the pulse emails of a real `steadyhand run --once`
are answered through a real `steadyhand serve` from the links in them (GET the page a
score link opens, POST its form), and the leaders who sign in by the link of their real
sign-in email see on /dashboard: the mean where 5 of 6 answered, "Not enough answers"
where 4 of 6 did, and one of two overlapping teams' figures withheld. Then the demo:
`steadyhand demo --weeks 12` seeds twelve weeks, `steadyhand serve --demo` serves them, and
the Research team's leader sees twelve weeks of charts in headless Chromium."""

from __future__ import annotations

import email
import email.policy
import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.dashboard_web import TEAMS, Board, csrf_of, serve_at, text_of
from tests.test_serve import KEY
from tests.test_web_browser import click, open_page, phone, words  # noqa: F401 (fixture)
from tests.tz import BERLIN
from tests.waiting import wait_for
from tests.web_server import demo_served

#: Friday 6 November 2026: the pulse goes at 14:00 (the default), the server runs at 17:00.
PULSE_AT = datetime(2026, 11, 6, 14, 5, tzinfo=BERLIN)
SERVED_AT = datetime(2026, 11, 6, 17, 0, tzinfo=BERLIN)
WEEK = "2026-W45"
RUN_ONCE = [sys.executable, "-m", "worker.cli", "run", "--once", "-c", "steadyhand.yaml"]
SCORE_LINK = re.compile(r"http://127\.0\.0\.1:\d+/answer/[A-Za-z0-9_.\-]+\?q=workload&score=\d+")


def inbox(folder: Path) -> dict[str, EmailMessage]:
    """The pulse email of each recipient in the Maildir outbox."""
    found = {}
    for path in sorted((folder / "var" / "outbox" / "new").glob("*")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if str(message["X-Steadyhand-Key"]).startswith("pulse:"):
            found[str(message["To"]).split("<")[-1].rstrip(">")] = message
    return found


def score_link(message: EmailMessage, score: int) -> str:
    page = message.get_body(("html",))
    assert page is not None
    hrefs = {html.unescape(h) for h in re.findall(r'href="([^"]*)"', str(page.get_content()))}
    (url,) = [h for h in hrefs if SCORE_LINK.fullmatch(h) and h.endswith(f"score={score}")]
    return url


def answer(board: Board, message: EmailMessage, score: int) -> None:
    """What a person does: click the score in the email, then press Save on the page."""
    url = score_link(message, score)
    session = requests.Session()
    page = session.get(url, timeout=10)
    assert page.status_code == 200, text_of(page.text)
    assert f'value="{score}" checked' in page.text  # the clicked score, chosen, not saved
    assert parse_qs(urlsplit(url).query)["q"] == ["workload"]
    saved = session.post(
        url.partition("?")[0],
        data={"csrf": csrf_of(page.text), "workload": str(score)},
        headers={"Origin": board.base},
        timeout=10,
    )
    assert saved.status_code == 200, text_of(saved.text)
    assert "Saved" in text_of(saved.text)


def this_week(page: str, team: str) -> str:
    section = re.search(rf'<section class="team" id="team-{team}">(.*?)</section>', page, re.S)
    assert section, f"no section of team {team}"
    row = re.search(rf'<tr class="week" data-week="{WEEK}">(.*?)</tr>', section.group(1), re.S)
    assert row, f"no row of {WEEK} for {team}"
    return text_of(row.group(1))


def answer_in_chromium(browser: Any, message: EmailMessage, score: int) -> None:
    """The same in headless Chromium, with a comment kept private."""
    from selenium.webdriver.common.by import By

    open_page(browser, score_link(message, score))
    assert browser.find_element(
        By.CSS_SELECTOR, f"input[name=workload][value='{score}']"
    ).is_selected()
    browser.find_element(By.ID, "workload.comment").send_keys("Too many late calls")
    click(browser, "Save")
    assert words(browser).startswith("Saved.")


@pytest.fixture(scope="module")
def answered(
    tmp_path_factory: pytest.TempPathFactory,
    phone: Any,  # noqa: F811 (the fixture)
) -> Iterator[Board]:
    """The pulse sent by `run --once`, answered from its links: 5 of team Five's 6 people
    (the first in Chromium), 4 of team Four's 6, and all 7 of team Big (of whom team Small
    has 5)."""
    folder = tmp_path_factory.mktemp("pulse")
    with serve_at(folder, SERVED_AT) as board:
        env = {**os.environ, "STEADYHAND_SECRET_KEY": KEY, "COLUMNS": "200"}
        env.pop("STEADYHAND_CONFIG", None)
        env.pop("STEADYHAND_NOW", None)
        done = subprocess.run(
            [*RUN_ONCE, "--now", PULSE_AT.isoformat()],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        sent = inbox(folder)
        five_leader, five = TEAMS["Five"]
        four_leader, four = TEAMS["Four"]
        big_leader, big = TEAMS["Big"]
        answer_in_chromium(phone, sent[five_leader], 1)
        for n, person in enumerate(five[:4]):
            answer(board, sent[person], 2 + n)
        for person in [four_leader, *four][:4]:
            answer(board, sent[person], 4)
        for person in [big_leader, *big]:
            answer(board, sent[person], 3)
        yield board


def test_a_pulse_answered_from_its_emails_by_5_of_6_shows_its_mean_and_by_4_of_6_does_not(
    answered: Board,
) -> None:
    five = answered.sign_in(TEAMS["Five"][0]).get(f"{answered.base}/dashboard", timeout=10)
    row = this_week(five.text, "Five")
    assert "3.0 (5 of 6 answered" in row, row  # scores 1, 2, 3, 4, 5
    four = answered.sign_in(TEAMS["Four"][0]).get(f"{answered.base}/dashboard", timeout=10)
    row = this_week(four.text, "Four")
    assert "Not enough answers to show (n < 5)" in row, row
    assert "4 of 6" not in row
    assert "Too many late calls" not in five.text  # not shared: the person's own


def test_a_leader_of_two_overlapping_teams_sees_one_of_their_figures_withheld(
    answered: Board,
) -> None:
    page = answered.sign_in(TEAMS["Big"][0]).get(f"{answered.base}/dashboard", timeout=10).text
    big, small = this_week(page, "Big"), this_week(page, "Small")
    assert "3.0 (7 of 7 answered" in big, big
    assert "Withheld: beside another figure it would give away someone's answer" in small, small
    assert "5 of 5" not in small


@pytest.fixture(scope="module")
def seeded_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """`steadyhand demo --weeks 12`, then `steadyhand serve --demo` over it."""
    with demo_served(tmp_path_factory.mktemp("demo-weeks"), KEY, "--weeks", "12") as served:
        said = " ".join(served.said.split())
        assert "open http://127.0.0.1:8080/dashboard and sign in as rui@example.com" in said
        yield served.folder, served.port


def sign_in_links(folder: Path, address: str) -> set[str]:
    found = set()
    for path in (folder / "var" / "outbox" / "new").glob("*"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        if address in str(message["To"]) and body is not None:
            found |= set(re.findall(r"http://127\.0\.0\.1:8080/signin/\S+", body.get_content()))
    return found


def test_the_seeded_demo_shows_twelve_weeks_of_charts_to_its_leader_in_chromium(
    seeded_demo: tuple[Path, int],
    phone: Any,  # noqa: F811 (the fixture)
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    folder, port = seeded_demo
    base = f"http://127.0.0.1:{port}"
    leader = "rui@example.com"
    open_page(phone, f"{base}/dashboard")
    phone.find_element(By.ID, "email").send_keys(f"{leader}\n")
    assert wait_for(lambda: sign_in_links(folder, leader), timeout=15)
    (link,) = sign_in_links(folder, leader)
    open_page(phone, link.replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
    click(phone, "Sign in")
    WebDriverWait(phone, 5, poll_frequency=0.05).until(
        lambda d: (
            d.title == "Dashboard · steadyhand"
            and d.execute_script("return document.readyState") == "complete"
        )
    )
    section = phone.find_element(By.ID, "team-Research")
    charts = section.find_elements(By.CSS_SELECTOR, "figure.chart svg")
    assert len(charts) >= 3  # meeting hours, focus hours, a pulse question
    for chart in charts[:2]:
        assert len(chart.find_elements(By.CSS_SELECTOR, "circle.point")) == 12
    assert "Research" in words(phone)
    assert phone.find_elements(By.ID, "team-Platform") == []  # not Rui's team
    assert phone.execute_script("return document.scripts.length") == 0
    # on a phone the weeks' table scrolls inside its box; the page itself does not
    assert phone.execute_script("return document.documentElement.scrollWidth") <= 375
