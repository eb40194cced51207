"""The demo team end to end, as a newcomer meets it: `steadyhand demo` writes real emails
into the Maildir outbox, `steadyhand serve --demo` serves their links, and every link used
here is taken out of those emails: the first reflection answered in headless Chromium and
found on "Your last 30 days"; an unsubscribe through the page; the RFC 8058 one-click POST
from the List-Unsubscribe header (with `requests`); a mail scanner's GET of every link
changes nothing; tampered, other-person and expired links and a POST without its CSRF
field are refused in words."""

from __future__ import annotations

import email
import email.policy
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from sqlalchemy import select

from tests.test_web_browser import click, open_page, phone, words  # noqa: F401 (fixture)
from tests.web_server import demo_served
from worker.cli.run import DEMO_NOW
from worker.links import Links, Purpose
from worker.store import Store
from worker.store.tables import answers, preferences, unsubscribes

KEY = "end-to-end-" + "k" * 33
LINK = re.compile(r"https?://127\.0\.0\.1:8080/[A-Za-z]+/[A-Za-z0-9_.\-]+(?:\?[A-Za-z0-9=&]*)?")


@dataclass
class Demo:
    var: Path
    port: int
    log: Path

    def local(self, url: str) -> str:
        """A link of the emails (made for web.base_url, port 8080) on the test's own port."""
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.port}"))

    def store(self) -> Store:
        return Store(f"sqlite:///{self.var / 'steadyhand.db'}")

    def emails(self) -> dict[str, EmailMessage]:
        """The outbox's emails by recipient address."""
        out = {}
        for path in sorted((self.var / "outbox" / "new").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            out[str(message["To"]).split("<")[-1].rstrip(">")] = message
        return out

    def state(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row a link could change."""
        store = self.store()
        try:
            with store.engine.connect() as conn:
                return {
                    t.name: sorted(tuple(r) for r in conn.execute(select(t)))
                    for t in (answers, preferences, unsubscribes)
                }
        finally:
            store.close()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def links_of(message: EmailMessage) -> list[str]:
    """Every web link in the email: the text part's, the HTML part's hrefs, List-Unsubscribe."""
    page = message.get_body(("html",))
    assert page is not None
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]*)"', str(page.get_content()))]
    header = str(message.get("List-Unsubscribe", "")).strip("<>")
    found = LINK.findall(text_of(message)) + [h for h in hrefs if LINK.fullmatch(h)]
    return sorted(set(found + ([header] if header else [])))


def score_link(message: EmailMessage, score: int) -> str:
    (url,) = [u for u in LINK.findall(text_of(message)) if u.endswith(f"?score={score}")]
    return url


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`steadyhand demo` run once in a folder, then `steadyhand serve --demo` over it."""
    with demo_served(tmp_path_factory.mktemp("demo"), KEY) as served:
        assert "steadyhand serve --demo" in served.said
        yield Demo(served.folder / "var", served.port, served.log)


def test_the_demo_teams_first_reflection_is_answered_and_found_in_your_last_30_days(
    demo: Demo,
    phone: Any,  # noqa: F811 (the fixture)
) -> None:
    from selenium.webdriver.common.by import By

    ana = demo.emails()["ana@example.com"]
    assert "How was today?" in text_of(ana)
    open_page(phone, demo.local(score_link(ana, 2)))
    assert phone.find_element(By.CSS_SELECTOR, "input[name=score][value='2']").is_selected()
    phone.find_element(By.ID, "moved").send_keys("The roadmap review went well")
    phone.find_element(By.ID, "dampened").send_keys("Back-to-back calls after lunch")
    click(phone, "Save")
    assert words(phone).startswith("Saved.")
    click(phone, "Your last 30 days")
    entry = " ".join(phone.find_element(By.ID, "day-2026-11-05").text.split())
    assert "Score 2 of 5" in entry
    assert "The roadmap review went well" in entry
    assert "Back-to-back calls after lunch" in entry
    assert re.search(r"Meetings \d+\.\d h", entry), entry  # the day's load, from the analysis
    stored = {r[3]: r[4] or r[5] for r in demo.state()["answers"] if r[0] == "ana@example.com"}
    assert stored == {
        "score": 2,
        "moved": "The roadmap review went well",
        "dampened": "Back-to-back calls after lunch",
    }


def test_unsubscribe_through_the_page_of_an_emails_footer(
    demo: Demo,
    phone: Any,  # noqa: F811 (the fixture)
) -> None:
    bo = demo.emails()["bo@example.com"]
    (url,) = [u for u in LINK.findall(text_of(bo)) if "/unsubscribe/" in u]
    open_page(phone, demo.local(url))
    assert ("bo@example.com", "reflection") not in {r[:2] for r in demo.state()["unsubscribes"]}
    assert words(phone).startswith("Fewer emails What should stop? Only")
    click(phone, "Confirm")
    assert words(phone).startswith("You are unsubscribed")
    assert ("bo@example.com", "reflection") in {r[:2] for r in demo.state()["unsubscribes"]}


def test_the_one_click_post_of_the_list_unsubscribe_header_opts_out(demo: Demo) -> None:
    cy = demo.emails()["cy@example.com"]
    assert cy["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(cy["List-Unsubscribe"]).strip("<>")
    answer = requests.post(
        demo.local(url), data={"List-Unsubscribe": "One-Click"}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 200, answer.text
    assert ("cy@example.com", "reflection") in {r[:2] for r in demo.state()["unsubscribes"]}


def test_a_scanner_opening_every_link_of_every_email_changes_nothing(demo: Demo) -> None:
    before = demo.state()
    opened = 0
    for message in demo.emails().values():
        for url in links_of(message):
            answer = requests.get(demo.local(url), allow_redirects=True, timeout=10)
            assert answer.status_code == 200, (url, answer.status_code)
            opened += 1
    assert opened >= 3 * 9  # three emails, each with score, note, journal, footer links
    assert demo.state() == before


def refused(answer: requests.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.status_code
    shown = " ".join(re.sub(r"<[^>]+>", " ", answer.text).split())
    assert words in shown, shown


def test_tampered_other_person_and_expired_links_are_refused_in_words(demo: Demo) -> None:
    before = demo.state()
    eli_or_cy = demo.emails()["cy@example.com"]
    url = score_link(eli_or_cy, 5)
    head, _, token = url.partition("/answer/")
    token = token.partition("?")[0]
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    refused(requests.get(demo.local(f"{head}/answer/{tampered}"), timeout=10), 400, "not valid")
    # Ana's payload with Cy's signature: someone editing a link to reach another person
    ana_token = score_link(demo.emails()["ana@example.com"], 5).partition("/answer/")[2]
    swapped = ana_token.split(".")[0] + "." + ".".join(token.split(".")[1:])
    swapped = swapped.partition("?")[0]
    refused(requests.get(demo.local(f"{head}/answer/{swapped}"), timeout=10), 400, "not valid")
    old = Links(KEY, "http://127.0.0.1:8080").url(
        Purpose.ANSWER, "cy@example.com", "reflection", "2026-10-20", DEMO_NOW - timedelta(days=15)
    )
    assert old is not None
    refused(
        requests.get(demo.local(old), timeout=10),
        400,
        "This link has expired; the next email will bring a fresh one",
    )
    assert demo.state() == before


def test_a_post_without_its_csrf_field_is_refused_and_records_nothing(demo: Demo) -> None:
    before = demo.state()
    url = demo.local(score_link(demo.emails()["cy@example.com"], 3).partition("?")[0])
    answer = requests.post(
        url,
        data={"score": "3", "moved": "x", "dampened": "y"},
        headers={"Origin": f"http://127.0.0.1:{demo.port}"},
        timeout=10,
    )
    assert answer.status_code == 403
    assert demo.state() == before
