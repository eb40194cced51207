"""The check-in programs end to end, as a team meets them on a Thursday: real
`steadyhand run --once --now …` runs write the emails into the Maildir outbox, real
`steadyhand serve --now …` processes answer their links (one check-in in headless
Chromium), and every link used is taken out of those emails:

* 09:20 the morning check-ins go out; the members answer them (Ana in Chromium, with a
  blocker shared with her leader; Cy shares only with the leader, Dee shares nothing,
  Bo and Eli share with the team, each ticking a commitment);
* 10:20 the leader gets the blockers email naming Ana's blocker (and only blockers
  shared with the leader); the weekly partners emails go out;
* 10:25 Bo marks his commitment done from his email's link, Eli marks hers done but
  asks not to be named; a mail scanner's GET of every link changes nothing;
* 10:35 the stand-up digest reaches exactly Bo and Eli (the two who shared with the
  team) and lists exactly their check-ins, and celebrates Bo's done commitment by name
  but not Eli's.
"""

from __future__ import annotations

import email
import email.policy
import html
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import write
from tests.test_serve import free_port
from tests.test_web_browser import click, open_page, phone, words  # noqa: F401 (fixture)
from tests.waiting import wait_for
from tests.web_server import csrf_of
from tests.web_server import text_of as page_words
from worker.programs import checkin
from worker.store import Store

KEY = "checkins-" + "k" * 35
BASE = "http://127.0.0.1:8080"
LINK = re.compile(r"http://127\.0\.0\.1:8080/[a-z]+/[A-Za-z0-9_.\-%]+(?:\?[A-Za-z0-9=&]*)?")
DAY = "2026-11-05"  # a Thursday
CONFIG = f"""\
timezone: Europe/Berlin
store: sqlite:///var/steadyhand.db
web: {{base_url: "{BASE}"}}
mail: {{from: "Steadyhand <steadyhand@example.com>", outbox: var/outbox, max_per_day: 5}}
people:
  - {{email: lee@example.com, name: Lee Leader}}
  - {{email: ana@example.com, name: Ana Lima}}
  - {{email: bo@example.com, name: Bo Berg}}
  - {{email: cy@example.com, name: Cy Chen}}
  - {{email: dee@example.com, name: Dee Park}}
  - {{email: eli@example.com, name: Eli Moss}}
teams:
  - name: Platform
    leader: lee@example.com
    members: [ana@example.com, bo@example.com, cy@example.com, dee@example.com,
              eli@example.com]
emails:
  checkin: {{at: "09:15"}}
  checkin_digest: {{at: "10:30"}}
  partners: {{team: Platform, rotate: weekly, at: "thu 10:00"}}
"""


def at(clock: str) -> str:
    return f"{DAY}T{clock}:00+01:00"


class Team:
    """The team's folder: its config, outbox and store, and the runs and serves on it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = write(folder / "steadyhand.yaml", CONFIG)
        self.env = {**os.environ, "STEADYHAND_SECRET_KEY": KEY, "COLUMNS": "200"}
        self.env.pop("STEADYHAND_CONFIG", None)
        self.env.pop("STEADYHAND_NOW", None)
        self.port = 0

    def run(self, clock: str) -> None:
        """`steadyhand run --once --now` at ``clock`` on the Thursday."""
        done = subprocess.run(
            [sys.executable, "-m", "worker.cli", "run", "--once", "--now", at(clock)],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    @contextmanager
    def serve(self, clock: str) -> Iterator[None]:
        """`steadyhand serve --now` at ``clock`` on a free port, until the block ends."""
        self.port = free_port()
        log = self.folder / f"serve-{clock.replace(':', '')}.log"
        with log.open("w", encoding="utf-8") as stderr:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "worker.cli",
                    "serve",
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--now",
                    at(clock),
                ],
                cwd=self.folder,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

        def healthy() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).ok
            except requests.ConnectionError:
                assert proc.poll() is None, log.read_text(encoding="utf-8")
                return False

        try:
            assert wait_for(healthy, timeout=30), log.read_text(encoding="utf-8")
            yield
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        assert "Traceback" not in log.read_text(encoding="utf-8")

    def local(self, url: str) -> str:
        """A link of the emails (made for web.base_url) on the running server's port."""
        return urlunsplit(urlsplit(url)._replace(netloc=f"127.0.0.1:{self.port}"))

    def emails(self, program: str) -> dict[str, EmailMessage]:
        """The outbox's emails of ``program`` by recipient address."""
        out = {}
        for path in sorted((self.folder / "var" / "outbox" / "new").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            if str(message["X-Steadyhand-Key"]).split(":")[0] == program:
                out[str(message["To"]).split("<")[-1].rstrip(">")] = message
        return out

    def answers(self) -> list[tuple[Any, ...]]:
        store = Store(f"sqlite:///{self.folder / 'var' / 'steadyhand.db'}")
        try:
            return sorted(
                (a.person, a.program, a.period, a.question, a.score, a.text)
                for p in ("ana", "bo", "cy", "dee", "eli", "lee")
                for a in store.answers_of(f"{p}@example.com")
            )
        finally:
            store.close()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def links_of(message: EmailMessage) -> list[str]:
    page = message.get_body(("html",))
    assert page is not None
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]*)"', str(page.get_content()))]
    return sorted(set(LINK.findall(text_of(message)) + [h for h in hrefs if LINK.fullmatch(h)]))


def form_link(message: EmailMessage) -> str:
    (url,) = [u for u in LINK.findall(text_of(message)) if "/answer/" in u]
    return url


def post_form(url: str, **fields: str) -> str:
    """Open ``url`` and post ``fields`` with its csrf; the answer page's words."""
    got = requests.get(url, timeout=10)
    assert got.status_code == 200, page_words(got.text)
    sent = requests.post(url, data={"csrf": csrf_of(got.text), **fields}, timeout=10)
    assert sent.status_code == 200, page_words(sent.text)
    return page_words(sent.text)


def section(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


@pytest.fixture(scope="module")
def thursday(
    tmp_path_factory: pytest.TempPathFactory,
    phone: Any,  # noqa: F811 (the fixture)
) -> Iterator[dict[str, Any]]:
    """The whole Thursday, run once; what each step saw, for the tests below."""
    from selenium.webdriver.common.by import By

    team = Team(tmp_path_factory.mktemp("checkins"))
    seen: dict[str, Any] = {}
    team.run("09:20")
    checkins = team.emails("checkin")
    seen["checkins"] = checkins
    with team.serve("09:40"):
        open_page(phone, team.local(form_link(checkins["ana@example.com"])))
        seen["form_words"] = words(phone)
        phone.find_element(By.ID, "priorities").send_keys("Finish the import\nReview Bo's PR")
        phone.find_element(By.ID, "blocker").send_keys("Waiting for the staging database")
        phone.find_element(By.ID, "concern").send_keys("The deadline is tight")
        assert phone.find_element(By.CSS_SELECTOR, "input[value='leader']").is_selected()
        click(phone, "Save")
        seen["ana_saved"] = words(phone)
        bo = team.local(form_link(checkins["bo@example.com"]))
        seen["bo_saved"] = post_form(
            bo, priorities="Ship the release notes\nPair with Cy", commitments="1", share="team"
        )
        cy = team.local(form_link(checkins["cy@example.com"]))
        post_form(cy, priorities="Cy's private plan", blocker="Cy's own blocker", share="me")
        eli = team.local(form_link(checkins["eli@example.com"]))
        post_form(eli, priorities="Write the runbook", commitments="1", share="team")
        # Dee opens the link and saves nothing; Lee (the leader) does not check in.
        requests.get(team.local(form_link(checkins["dee@example.com"])), timeout=10)
    team.run("10:20")
    seen["blockers"] = team.emails("checkin_blockers")
    seen["partners"] = team.emails("partners")
    with team.serve("10:25"):
        before = team.answers()
        scanned = [*seen["partners"].values(), *seen["checkins"].values()]
        for message in [*scanned, *seen["blockers"].values()]:
            for url in links_of(message):
                assert requests.get(team.local(url), timeout=10).status_code in (200, 400, 404)
        seen["scanned_unchanged"] = team.answers() == before
        bo_links = LINK.findall(text_of(seen["partners"]["bo@example.com"]))
        (done,) = [u for u in bo_links if "status=done" in u]
        page = requests.get(team.local(done), timeout=10).text
        seen["done_page"] = page_words(page)
        seen["done_preselected"] = bool(re.search(r'value="done" checked', page))
        seen["done_saved"] = post_form(team.local(done), line="1", status="done", named="1")
        eli_links = LINK.findall(text_of(seen["partners"]["eli@example.com"]))
        (eli_done,) = [u for u in eli_links if "status=done" in u]
        post_form(team.local(eli_done), line="1", status="done", named="0")
    team.run("10:35")
    seen["digests"] = team.emails("checkin_digest")
    seen["answers"] = team.answers()
    yield seen


def test_the_morning_checkin_asks_for_priorities_with_a_link_to_the_form(
    thursday: dict[str, Any],
) -> None:
    checkins = thursday["checkins"]
    assert set(checkins) == {f"{p}@example.com" for p in ("lee", "ana", "bo", "cy", "dee", "eli")}
    text = text_of(checkins["ana@example.com"])
    assert "What are your priorities today? Anything in your way?" in text
    assert str(checkins["ana@example.com"]["Subject"]) == "Your check-in, Thursday 5 November"
    assert thursday["form_words"].startswith("Your check-in, Thursday 5 November")
    assert thursday["ana_saved"].startswith("Saved.")


def test_a_blocker_shared_with_the_leader_reaches_the_leader_the_same_day(
    thursday: dict[str, Any],
) -> None:
    (recipient,) = thursday["blockers"]
    assert recipient == "lee@example.com"
    text = text_of(thursday["blockers"]["lee@example.com"])
    assert "Ana Lima" in text
    assert "Blocker: Waiting for the staging database" in text
    assert "Concern: The deadline is tight" in text
    assert "Cy's own blocker" not in text  # shared with no one but Cy
    assert str(thursday["blockers"][recipient]["Subject"]).startswith("1 blocker from your team")


def test_the_standup_digest_lists_exactly_the_check_ins_shared_with_the_team(
    thursday: dict[str, Any],
) -> None:
    digests = thursday["digests"]
    assert set(digests) == {"bo@example.com", "eli@example.com"}  # the two who shared
    text = text_of(digests["eli@example.com"])
    shared = section(text, "shared with the team today:", "Done this week:")
    assert "Bo Berg" in shared and "Ship the release notes" in shared
    assert "Eli Moss" in shared and "Write the runbook" in shared
    for absent in ("Ana Lima", "Cy Chen", "Dee Park", "Lee Leader", "staging database", "private"):
        assert absent not in text, absent


def test_a_partner_marks_a_commitment_done_and_the_digest_celebrates_it_by_name(
    thursday: dict[str, Any],
) -> None:
    bo = text_of(thursday["partners"]["bo@example.com"])
    assert "Your own commitments:" in bo and "Ship the release notes" in bo
    assert "Pair with Cy" not in bo  # not ticked as a commitment
    assert "Ship the release notes" in thursday["done_page"]
    assert thursday["done_preselected"]
    assert "steadyhand Saved. Your commitment" in thursday["done_saved"]
    done = section(text_of(thursday["digests"]["bo@example.com"]), "Done this week:", "Only")
    assert "Bo Berg finished “Ship the release notes”" in done
    assert "Eli" not in done  # Eli asked not to be named
    assert "1 more commitment done" in done
    stored = {(a[0], a[2], a[3]): a[4] for a in thursday["answers"] if a[1] == "partners"}
    assert stored[("bo@example.com", DAY, "done:1")] == 1
    assert stored[("eli@example.com", "", "celebrate")] == 0


def test_a_scanners_get_of_every_link_changes_nothing(thursday: dict[str, Any]) -> None:
    assert thursday["scanned_unchanged"]


def test_partners_emails_show_the_partners_shared_commitments(thursday: dict[str, Any]) -> None:
    partners = thursday["partners"]
    assert set(partners) == {f"{p}@example.com" for p in ("ana", "bo", "cy", "dee", "eli")}
    everyone = " ".join(text_of(m) for m in partners.values())
    assert "Cy's private plan" not in everyone  # shared with no one but Cy
    assert "commitments this week" in everyone


def test_previews_render_each_check_in_program(
    tmp_path: Path, run_cli: Callable[..., Any], project: Path
) -> None:
    write(project / "steadyhand.yaml", CONFIG)
    for program, to in (
        ("checkin", "ana@example.com"),
        ("checkin_blockers", "lee@example.com"),
        ("checkin_digest", "bo@example.com"),
        ("partners", "bo@example.com"),
    ):
        got = run_cli("emails", "preview", program, "--to", to, "--now", at("12:00"))
        assert got.code == 0, got.err
        assert "Subject: " in got.out
    got = run_cli("emails", "preview", "checkin", "--to", "ana@example.com", "--now", at("12:00"))
    assert "ask your steadyhand admin" in got.out.lower()
    assert run_cli("config", "check").code == 0


def _outbox(project: Path) -> list[EmailMessage]:
    out = []
    for path in sorted((project / "var" / "outbox" / "new").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        out.append(message)
    return out


def _keys(project: Path) -> list[str]:
    return sorted(str(m["X-Steadyhand-Key"]) for m in _outbox(project))


def test_checkins_honour_opt_outs_and_pauses_and_go_once_per_day(
    run_cli: Callable[..., Any], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", KEY)
    write(project / "steadyhand.yaml", CONFIG)
    assert run_cli("unsubscribe", "ana@example.com", "--program", "checkin").code == 0
    store = Store(f"sqlite:///{project / 'var' / 'steadyhand.db'}")
    try:
        store.set_pause("bo@example.com", date(2026, 11, 6), datetime(2026, 11, 1, tzinfo=UTC))
    finally:
        store.close()
    assert run_cli("run", "--once", "--now", at("08:00")).code == 0
    assert _keys(project) == []  # before the check-in time
    assert run_cli("run", "--once", "--now", at("09:20")).code == 0
    assert run_cli("run", "--once", "--now", at("09:25")).code == 0
    sent = _keys(project)
    assert sent == sorted(f"checkin:{p}@example.com:{DAY}" for p in ("cy", "dee", "eli", "lee"))


def test_beyond_max_per_day_the_leaders_blockers_email_waits_in_a_bundle(
    run_cli: Callable[..., Any], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", KEY)
    write(project / "steadyhand.yaml", CONFIG.replace("max_per_day: 5", "max_per_day: 1"))
    assert run_cli("run", "--once", "--now", at("09:20")).code == 0
    _answer(project, "ana@example.com", DAY, at("09:40"), blocker="No keys", share="leader")
    assert run_cli("run", "--once", "--now", at("10:20")).code == 0
    mine = [k for k in _keys(project) if ":lee@example.com:" in k]
    assert mine == [f"checkin:lee@example.com:{DAY}"]  # the blockers wait for Friday's bundle


def _answer(project: Path, person: str, day: str, when: str, **values: str) -> None:
    store = Store(f"sqlite:///{project / 'var' / 'steadyhand.db'}")
    try:
        store.record_answers(person, "checkin", day, values, datetime.fromisoformat(when))
    finally:
        store.close()


def test_a_blocker_saved_after_the_leaders_email_goes_in_the_next_days_email_marked(
    run_cli: Callable[..., Any], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", KEY)
    write(project / "steadyhand.yaml", CONFIG)
    assert run_cli("run", "--once", "--now", at("09:20")).code == 0
    _answer(project, "bo@example.com", DAY, at("09:30"), blocker="Early one", share="team")
    assert run_cli("run", "--once", "--now", at("10:20")).code == 0
    _answer(project, "ana@example.com", DAY, at("11:00"), blocker="Late one", share="leader")
    assert run_cli("run", "--once", "--now", at("11:05")).code == 0
    (thursday,) = [m for m in _outbox(project) if "checkin_blockers" in str(m["X-Steadyhand-Key"])]
    assert "Early one" in text_of(thursday) and "Late one" not in text_of(thursday)
    assert run_cli("run", "--once", "--now", "2026-11-06T10:20:00+01:00").code == 0
    blockers = [m for m in _outbox(project) if "checkin_blockers" in str(m["X-Steadyhand-Key"])]
    assert len(blockers) == 2
    friday = text_of(next(m for m in blockers if "2026-11-06" in str(m["X-Steadyhand-Key"])))
    assert "Ana Lima (from Thursday 5 November):" in friday
    assert "Late one" in friday and "Early one" not in friday


# -- the forms against hostile and mistaken input --------------------------------------


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.web_server import web_server

    with web_server(tmp_path_factory.mktemp("web")) as running:
        yield running
    assert "Traceback" not in running.served.stderr, running.served.stderr


def test_a_check_in_form_refuses_mistakes_in_words_and_saves_nothing(web: Any) -> None:
    from tests.web_server import TODAY, csrf_of, text_of
    from worker.links import Purpose

    person = web.person()
    url = web.url(Purpose.ANSWER, person, "checkin", TODAY.isoformat())
    got = web.get(url)
    assert got.status_code == 200
    csrf = csrf_of(got.text)
    cases = [
        ({"priorities": "One\nTwo", "commitments": "3"}, "not the number of one of your"),
        ({"priorities": "One", "commitments": "1; DROP"}, "not the number of one of your"),
        ({"priorities": "x" * 2001}, "2,001 characters long"),
        ({"priorities": "One", "share": "everyone"}, "Choose who may see your check-in"),
    ]
    for fields, said in cases:
        sent = web.post(url, {"csrf": csrf, **fields})
        assert sent.status_code == 400, text_of(sent.text)
        assert said in text_of(sent.text)
    assert web.store.answers_of(person) == []
    saved = web.post(url, {"csrf": csrf, "priorities": "One\n\nTwo", "commitments": "2, 2"})
    assert saved.status_code == 200 and "Saved." in text_of(saved.text)
    stored = {a.question: a.text for a in web.store.answers_of(person)}
    assert stored == {"priorities": "One\n\nTwo", "commitments": "2", "share": "leader"}
    again = web.post(url, {"csrf": csrf, "priorities": "One\n\nTwo", "commitments": "2"})
    assert "Nothing to change" in text_of(again.text)
    assert "Two (commitment)" in text_of(web.get(url).text)


def test_a_check_in_of_a_past_day_is_read_only_and_its_post_refused(web: Any) -> None:
    from tests.web_server import TODAY, csrf_of, text_of
    from worker.links import Purpose

    person = web.person()
    today = web.url(Purpose.ANSWER, person, "checkin", TODAY.isoformat())
    csrf = csrf_of(web.get(today).text)
    yesterday = web.url(Purpose.ANSWER, person, "checkin", (TODAY - timedelta(days=1)).isoformat())
    page = web.get(yesterday)
    assert page.status_code == 200 and "This check-in is closed" in text_of(page.text)
    assert 'name="csrf"' not in page.text
    refused = web.post(yesterday, {"csrf": csrf, "priorities": "late"})
    assert refused.status_code in (403, 409)
    assert web.store.answers_of(person) == []


def test_a_commitment_link_without_a_line_or_commitment_is_refused(web: Any) -> None:
    from tests.web_server import TODAY, text_of
    from worker.links import Purpose

    person = web.person()
    no_line = web.get(web.url(Purpose.ANSWER, person, "partners", TODAY.isoformat()))
    assert no_line.status_code == 400 and "names no commitment" in text_of(no_line.text)
    gone = web.get(web.url(Purpose.ANSWER, person, "partners", TODAY.isoformat(), line=4))
    assert gone.status_code == 404 and "Nothing was changed" in text_of(gone.text)
    assert web.store.answers_of(person) == []


@given(st.text(max_size=60), st.integers(min_value=0, max_value=30))
def test_commitment_numbers_are_lines_that_exist_whatever_was_typed(text: str, count: int) -> None:
    found = checkin.commitment_numbers(text, count)
    assert found == sorted(set(found))
    assert all(1 <= n <= count for n in found)
