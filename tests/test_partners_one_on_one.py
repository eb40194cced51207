"""1:1 commitments shared with an accountability partner, end to end on the demo team:
a real `steadyhand run --once --now …` sends Bo's follow-up of his Monday 1:1 with Ana
into the Maildir outbox, with a link to choose which commitments are his to share; a
real `steadyhand serve --now …` answers it (a GET records nothing, a POST of two ticked
stores them); Thursday's partners email of Bo's partner Cy lists them under Bo's
commitments, and Bo's own has "done" / "still on it" links that record with a POST;
unticking removes them. Without `emails.partners` the follow-up has no such link."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests import test_checkin
from tests.conftest import ROOT
from tests.test_checkin import LINK, Team, csrf_of, page_words, text_of

PARTNERS = """
emails:
  followup: {after: one_on_one, delay: 30m}
  partners: {team: Platform, rotate: weekly, at: "thu 10:00"}
"""
SHARE = "Choose which of these are yours to share with your accountability partner"
#: A share link: a token and nothing else (the commitments are never in a URL).
SHARE_LINK = re.compile(r"http://127\.0\.0\.1:8080/answer/[A-Za-z0-9_.\-]+(?=\s|$)")
BO_1 = "Bo: draft the Q1 roadmap"
BO_2 = "Ana: ask Finance about the conference budget"


class Demo(Team):
    """The demo team's calendars in a folder, with ``emails`` replaced."""

    def __init__(self, folder: Path, programs: str) -> None:
        shutil.copytree(ROOT / "config" / "demo", folder / "demo")
        text = (ROOT / "config" / "demo.yaml").read_text()
        text = text[: text.index("emails:")] + programs.lstrip() + text[text.index("privacy:") :]
        text = text[: text.index("protect:")] if "protect:" in text else text
        super().__init__(folder)
        self.config.write_text(text)

    def emails(self, program: str) -> dict[str, Any]:
        """The outbox's emails of ``program`` by recipient address (keys may be folded)."""
        out = {}
        for path in sorted((self.folder / "var" / "outbox" / "new").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if key_of(message).split(":")[0] == program:
                out[str(message["To"]).split("<")[-1].rstrip(">")] = message
        return out

    @contextmanager
    def serve_on(self, days: pytest.MonkeyPatch, day: str, clock: str) -> Iterator[None]:
        """`steadyhand serve --now` at ``clock`` of ``day`` (the base serves one day)."""
        days.setattr(test_checkin, "DAY", day)
        with self.serve(clock):
            yield

    def at_time(self, moment: str) -> None:
        """`steadyhand run --once --now moment`."""
        done = subprocess.run(
            [sys.executable, "-m", "worker.cli", "run", "--once", "--now", moment],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr


def share_link(message: Any) -> str | None:
    text = text_of(message)
    if SHARE not in text:
        return None
    found = SHARE_LINK.search(text.split(SHARE, 1)[1])
    return found.group(0) if found else None


def key_of(message: Any) -> str:
    return "".join(str(message["X-Steadyhand-Key"]).split())


def key_period(message: Any) -> str:
    return key_of(message).rsplit(":", 1)[-1]


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    demo = Demo(tmp_path_factory.mktemp("one-on-one"), PARTNERS)
    demo.at_time("2026-11-02T11:05:00+01:00")
    followups = demo.emails("followup")
    seen["followups"] = followups
    bo = followups["bo@example.com"]
    period = key_period(bo)
    seen["period"] = period
    url = share_link(bo)
    assert url is not None, text_of(bo)
    with pytest.MonkeyPatch.context() as days, demo.serve_on(days, "2026-11-02", "12:00"):
        before = demo.answers()
        got = requests.get(demo.local(url), timeout=10)
        seen["get_status"] = got.status_code
        seen["get_page"] = got.text
        seen["get_unchanged"] = demo.answers() == before
        assert re.findall(r'name="share:(\d+)"', got.text) == ["1", "2"]
        fields = {"csrf": csrf_of(got.text)}
        ticked = {**fields, "share:1": "1", "share:2": "1"}
        sent = requests.post(demo.local(url), data=ticked, timeout=10)
        seen["post_words"] = page_words(sent.text)
        seen["after_post"] = demo.answers()
    demo.at_time("2026-11-05T10:05:00+01:00")
    seen["partners"] = demo.emails("partners")
    with pytest.MonkeyPatch.context() as days, demo.serve_on(days, "2026-11-05", "10:30"):
        own = text_of(seen["partners"]["bo@example.com"])
        after = own.split(f"- {BO_1} (", 1)[1]
        still = next(u for u in LINK.findall(after) if "status=still" in u)
        page = requests.get(demo.local(still), timeout=10).text
        seen["status_page"] = page_words(page)
        data = {"csrf": csrf_of(page), "line": "1", "status": "still", "named": "1"}
        seen["status_saved"] = page_words(
            requests.post(demo.local(still), data=data, timeout=10).text
        )
        seen["after_status"] = demo.answers()
        again = requests.get(demo.local(url), timeout=10).text
        seen["shown_ticked"] = again.count(" checked")
        untick = {"csrf": csrf_of(again), "share:1": "1"}  # share:2 unticked
        gone = requests.post(demo.local(url), data=untick, timeout=10)
        assert gone.status_code == 200, page_words(gone.text)
        seen["after_untick"] = demo.answers()
    no = Demo(tmp_path_factory.mktemp("no-partners"), PARTNERS.split("  partners:", maxsplit=1)[0])
    no.at_time("2026-11-02T11:05:00+01:00")
    seen["without"] = no.emails("followup")
    return seen


def shared(answers: list[tuple[Any, ...]]) -> dict[str, str]:
    return {
        a[3]: a[5]
        for a in answers
        if a[0] == "bo@example.com" and a[1] == "followup" and a[3].startswith("shared:")
    }


def offered(answers: list[tuple[Any, ...]]) -> dict[str, str]:
    return {
        a[3]: a[5]
        for a in answers
        if a[0] == "bo@example.com" and a[1] == "followup" and a[3].startswith("offered:")
    }


def test_the_followup_offers_sharing_only_to_a_paired_member(week: dict[str, Any]) -> None:
    assert share_link(week["followups"]["bo@example.com"]) is not None
    assert SHARE not in text_of(week["followups"]["ana@example.com"])  # the leader: no partner
    assert week["without"] and all(SHARE not in text_of(m) for m in week["without"].values())


def test_opening_the_share_link_shows_the_commitments_unticked_and_records_nothing(
    week: dict[str, Any],
) -> None:
    url = share_link(week["followups"]["bo@example.com"])
    assert url is not None and "?" not in url and "roadmap" not in url.lower()
    assert week["get_status"] == 200
    words = page_words(week["get_page"])
    assert BO_1 in words and BO_2 in words
    assert " checked" not in week["get_page"]
    assert week["get_unchanged"]


def test_ticking_two_stores_them_and_the_partner_sees_them(week: dict[str, Any]) -> None:
    assert "Saved." in week["post_words"]
    assert shared(week["after_post"]) == {"shared:1": BO_1, "shared:2": BO_2}
    # what the email offered is kept as Bo's own, from when it was sent (not from the form)
    assert offered(week["after_post"]) == {"offered:1": BO_1, "offered:2": BO_2}
    cy = text_of(week["partners"]["cy@example.com"])
    theirs = cy.split("Bo Berg's commitments this week:", 1)[1].split("Your own", 1)[0]
    assert f"{BO_1} (" in theirs and f"{BO_2} (" in theirs
    assert theirs.count("from your 1:1") == 2


def test_the_owner_marks_a_one_on_one_commitment_from_their_partners_email(
    week: dict[str, Any],
) -> None:
    own = text_of(week["partners"]["bo@example.com"]).split("Your own commitments:", 1)[1]
    assert BO_1 in own and BO_2 in own
    assert BO_1 in week["status_page"] and "from your 1:1" in week["status_page"]
    assert "Saved." in week["status_saved"]
    stored = {
        (a[2], a[3]): a[4]
        for a in week["after_status"]
        if a[0] == "bo@example.com" and a[1] == "partners"
    }
    assert stored[("1on1:" + week["period"], "done:1")] == 0


def test_unticking_removes_a_shared_commitment(week: dict[str, Any]) -> None:
    assert week["shown_ticked"] == 2  # the page shows what was saved
    assert shared(week["after_untick"]) == {"shared:1": BO_1}


def test_a_one_on_one_commitment_marked_done_is_celebrated_without_its_words(
    tmp_path: Path,
) -> None:
    """The stand-up digest names who finished a 1:1 commitment (shared with their partner
    only, so not what it was), and only counts someone who asked not to be named."""
    from datetime import datetime, timedelta

    from tests.conftest import write
    from tests.tz import BERLIN
    from worker import config
    from worker.cycle import checkins
    from worker.cycle.runtime import Runtime
    from worker.store import Store

    cfg = write(
        tmp_path / "steadyhand.yaml",
        """\
timezone: Europe/Berlin
store: sqlite:///var/steadyhand.db
people:
  - {email: ana@example.com, name: Ana Lima}
  - {email: bo@example.com, name: Bo Berg}
  - {email: cy@example.com, name: Cy Chen}
teams: [{name: Platform, leader: ana@example.com, members: [bo@example.com, cy@example.com]}]
emails:
  checkin_digest: {at: "10:30"}
  partners: {team: Platform}
""",
    )
    (tmp_path / "var").mkdir(mode=0o700)
    settings = config.load(cfg)
    now = datetime(2026, 11, 5, 10, 30, tzinfo=BERLIN)
    store = Store(settings.store_url)
    try:
        store.record_answers("bo@example.com", "followup", "2026-11-02", {"shared:1": BO_1}, now)
        marked = now - timedelta(hours=2)
        store.record_answers("bo@example.com", "partners", "1on1:2026-11-02", {"done:1": 1}, marked)
        store.record_answers("cy@example.com", "partners", "1on1:2026-11-02", {"done:1": 1}, marked)
        store.record_answers("cy@example.com", "partners", "", {"celebrate": 0}, marked)
        rt = Runtime(settings, store, None, lambda: now)  # type: ignore[arg-type]
        values = checkins.digest_values(
            rt, settings.person("ana@example.com"), now.date(), now - timedelta(days=1), now
        )
        before = checkins.digest_values(
            rt, settings.person("ana@example.com"), now.date(), now - timedelta(hours=1), now
        )
    finally:
        store.close()
    assert [d["name"] for d in values["done"]] == ["Bo Berg"]
    assert values["done"][0]["text"] == "" and BO_1 not in str(values)
    assert values["done_unnamed"] == 1  # Cy asked not to be named
    assert before["done"] == [] and before["done_unnamed"] == 0  # already celebrated
