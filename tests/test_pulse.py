"""The pulse check: a real `steadyhand run --once` writes each person's pulse into the
Maildir with one link per score per question; a real `steadyhand serve` opens each link
with that score chosen and records nothing; the POST records, the same POST again changes
nothing, a new score replaces, a closed week is refused; every two weeks means the even
ISO weeks; opt-outs and pauses are honoured; the preview renders."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import write
from tests.test_serve import KEY, Served, free_port
from tests.tz import BERLIN
from tests.waiting import wait_for
from tests.web_server import csrf_of, text_of
from worker.core.model import Person, WorkingHours
from worker.links import Links, Purpose
from worker.programs import pulse
from worker.programs.pulse import Question
from worker.store import Store
from worker.web.pulse import _score

#: Friday 6 November 2026 (ISO week 45), 14:05 in Berlin: the pulse is due at 14:00.
FRIDAY = datetime(2026, 11, 6, 14, 5, tzinfo=BERLIN)
WEEK = "2026-W45"


def config_text(port: int | None = None, every: str = "1w") -> str:
    web = f"web: {{listen: 127.0.0.1:{port}, base_url: http://127.0.0.1:{port}}}\n" if port else ""
    return f"""\
timezone: Europe/Berlin
store: sqlite:///var/steadyhand.db
people:
  - {{email: ana@example.com, name: Ana Lima}}
  - {{email: bo@example.com, name: Bo Berg}}
  - {{email: cy@example.com, name: Cy Chen, working_hours: {{mon-thu: "09:00-17:00", fri: off}}}}
teams:
  - {{name: Platform, leader: ana@example.com, members: [bo@example.com, cy@example.com]}}
mail: {{from: "Steadyhand <steadyhand@example.com>", outbox: var/outbox, max_per_day: 3}}
{web}emails:
  pulse:
    to: everyone
    every: {every}
    at: "fri 14:00"
    questions:
      - {{id: workload, text: "How sustainable was your workload this week?", scale: "1-5"}}
      - {{id: recommend, text: "Would you recommend this team to a friend?", scale: "0-10"}}
"""


def emails(project: Path) -> dict[str, EmailMessage]:
    """The Maildir's emails by their X-Steadyhand-Key."""
    out = {}
    for path in sorted((project / "var" / "outbox" / "new").glob("*.eml")):
        msg = BytesParser(policy=default).parsebytes(path.read_bytes())
        assert isinstance(msg, EmailMessage)
        out[str(msg["X-Steadyhand-Key"])] = msg
    return out


def plain(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def score_links(msg: EmailMessage) -> list[tuple[str, int, str]]:
    """(question, score, url) of every score link in the text part, in order."""
    found = re.findall(r"(https?://\S+/answer/\S+\?q=(\w+)&score=(\d+))", plain(msg))
    return [(q, int(n), url) for url, q, n in found]


@contextmanager
def serving(project: Path, now: datetime) -> Iterator[Served]:
    """A real ``steadyhand serve --now NOW`` of the project's config."""
    env = {**os.environ, "COLUMNS": "200", "STEADYHAND_SECRET_KEY": KEY}
    env.pop("STEADYHAND_CONFIG", None)
    env.pop("STEADYHAND_NOW", None)
    port = int(
        re.findall(r"listen: 127\.0\.0\.1:(\d+)", (project / "steadyhand.yaml").read_text())[0]
    )
    log = project / "serve.log"
    with log.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker.cli",
                "serve",
                "-c",
                "steadyhand.yaml",
                "--now",
                now.isoformat(),
            ],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    served = Served(proc, log, port)
    try:
        assert wait_for(lambda: served.health() is not None or proc.poll() is not None)
        assert served.health() == (200, {"store": "ok"}), served.stderr
        yield served
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def answers(project: Path, email: str) -> dict[tuple[str, str], Any]:
    store = Store(f"sqlite:///{project / 'var' / 'steadyhand.db'}")
    try:
        return {
            (a.period, a.question): a.score if a.text is None else a.text
            for a in store.answers_of(email, "pulse")
        }
    finally:
        store.close()


def checked(page: str) -> dict[str, str]:
    """Which radio button of each question the page has checked."""
    return dict(re.findall(r'type="radio" name="(\w+)" value="(\d+)" checked', page))


def test_the_pulse_links_open_the_page_with_the_score_chosen_and_only_the_post_records(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", KEY)
    port = free_port()
    write(project / "steadyhand.yaml", config_text(port))
    done = run_cli("run", "--once", "--now", FRIDAY.isoformat())
    assert done.code == 0, done.err
    sent = emails(project)
    assert f"pulse:ana@example.com:{WEEK}" in sent and f"pulse:bo@example.com:{WEEK}" in sent
    msg = sent[f"pulse:ana@example.com:{WEEK}"]
    assert "Pulse" in str(msg["Subject"])
    words = " ".join(plain(msg).split())
    assert "anonymous to your leaders" in words
    assert "Leaders see only figures over at least 5 people who answered" in words
    links = score_links(msg)
    assert [(q, n) for q, n, _ in links] == [("workload", n) for n in range(1, 6)] + [
        ("recommend", n) for n in range(11)
    ]
    html_part = msg.get_body(("html",))
    assert html_part is not None and str(html_part.get_content()).count("score=") == 16

    with serving(project, FRIDAY + timedelta(minutes=5)):
        for question, score, url in links:
            got = requests.get(url, timeout=10)
            assert got.status_code == 200, text_of(got.text)
            assert checked(got.text) == {question: str(score)}
            assert "Not saved yet" in text_of(got.text)
        assert answers(project, "ana@example.com") == {}  # no GET recorded anything

        url = links[3][2]  # workload 4
        csrf = csrf_of(requests.get(url, timeout=10).text)
        form = {
            "csrf": csrf,
            "workload": "4",
            "workload.comment": "Too many reviews.",
            "workload.share": "1",
            "recommend": "0",
        }
        saved = requests.post(url, data=form, timeout=10)
        assert saved.status_code == 200, text_of(saved.text)
        assert "Saved." in text_of(saved.text)
        recorded = {
            (WEEK, "workload"): 4,
            (WEEK, "workload.comment"): "Too many reviews.",
            (WEEK, "workload.share"): 1,
            (WEEK, "recommend"): 0,
        }
        assert answers(project, "ana@example.com") == recorded
        again = requests.post(url, data=form, timeout=10)
        assert "Nothing to change" in text_of(again.text)
        assert answers(project, "ana@example.com") == recorded
        # the stored answers are shown, whatever the link chose
        assert checked(requests.get(url, timeout=10).text) == {"workload": "4", "recommend": "0"}

        changed = requests.post(url, data={**form, "workload": "2"}, timeout=10)
        assert changed.status_code == 200
        assert answers(project, "ana@example.com")[(WEEK, "workload")] == 2

        bad = requests.post(url, data={**form, "workload": "6"}, timeout=10)
        assert bad.status_code == 400
        assert "Choose a score from 1 to 5" in text_of(bad.text)
        long = requests.post(url, data={**form, "workload.comment": "x" * 2001}, timeout=10)
        assert long.status_code == 400 and "2,001 characters" in text_of(long.text)
        assert answers(project, "ana@example.com")[(WEEK, "workload")] == 2

        # Bo's page shows nothing of Ana's.
        (bo_url,) = [u for q, n, u in score_links(sent[f"pulse:bo@example.com:{WEEK}"])][:1]
        bo_page = text_of(requests.get(bo_url, timeout=10).text)
        assert "Too many reviews" not in bo_page

        # Last week's pulse closed on its Sunday: shown read-only, a POST is refused.
        links_ = Links(KEY, f"http://127.0.0.1:{port}", None)
        old = links_.url(Purpose.ANSWER, "ana@example.com", "pulse", "2026-W44", FRIDAY)
        assert old is not None
        page = requests.get(old + "?q=workload&score=3", timeout=10)
        assert "This week is closed" in text_of(page.text) and 'type="radio"' not in page.text
        old_token = links_.token(Purpose.ANSWER, "ana@example.com", "pulse", "2026-W44", FRIDAY)
        old_csrf = links_.csrf(old_token, FRIDAY + timedelta(minutes=5))
        refused = requests.post(old, data={**form, "csrf": old_csrf}, timeout=10)
        assert refused.status_code == 409, text_of(refused.text)
        assert "This week is closed" in text_of(refused.text)
        assert ("2026-W44", "workload") not in answers(project, "ana@example.com")


def test_the_same_cycle_twice_sends_each_pulse_once(run_cli, project: Path) -> None:
    write(project / "steadyhand.yaml", config_text())
    assert run_cli("run", "--once", "--now", FRIDAY.isoformat()).code == 0
    first = sorted(emails(project))
    assert run_cli("run", "--once", "--now", (FRIDAY + timedelta(minutes=30)).isoformat()).code == 0
    assert sorted(emails(project)) == first
    # Cy is off on Fridays: hers went on Thursday, so it is not in Friday's run.
    assert first == [f"pulse:ana@example.com:{WEEK}", f"pulse:bo@example.com:{WEEK}"]


def test_someone_off_on_the_pulse_day_gets_it_on_their_last_working_day_before() -> None:
    hours = WorkingHours.of({d: [(time(9), time(17))] for d in range(4)})
    cy = Person("cy@example.com", "Cy Chen", "Europe/Berlin", hours)
    due = pulse.due(cy, 4, time(14), 1, timedelta(hours=4), FRIDAY - timedelta(days=2), set())
    assert due is not None
    assert due.period == WEEK
    assert due.at == datetime(2026, 11, 5, 14, tzinfo=BERLIN)


def test_every_two_weeks_goes_in_the_even_iso_weeks_only(run_cli, project: Path) -> None:
    write(project / "steadyhand.yaml", config_text(every="2w"))
    for week in range(4):  # Fridays of W45, W46, W47, W48
        moment = FRIDAY + timedelta(weeks=week)
        assert run_cli("run", "--once", "--now", moment.isoformat()).code == 0
    ana = sorted(k for k in emails(project) if "ana@" in k)
    assert ana == ["pulse:ana@example.com:2026-W46", "pulse:ana@example.com:2026-W48"]


@pytest.mark.parametrize("weeks", [1, 2])
def test_the_schedule_is_the_same_whatever_week_it_is_asked_in(weeks: int) -> None:
    hours = WorkingHours.of({d: [(time(9), time(17))] for d in range(5)})
    ana = Person("ana@example.com", "Ana Lima", "Europe/Berlin", hours)
    found = set()
    for day in range(60):
        now = datetime(2026, 10, 1, 12, tzinfo=BERLIN) + timedelta(days=day)
        due = pulse.due(ana, 4, time(14), weeks, timedelta(hours=4), now, set())
        assert due is not None
        found.add(due.period)
    numbers = sorted(int(p[-2:]) for p in found)
    assert numbers == list(range(numbers[0], numbers[-1] + 1, weeks))
    if weeks == 2:
        assert all(n % 2 == 0 for n in numbers)


def test_opt_outs_and_pauses_are_honoured(run_cli, project: Path) -> None:
    write(project / "steadyhand.yaml", config_text())
    assert run_cli("unsubscribe", "bo@example.com", "--program", "pulse").code == 0
    (project / "var").mkdir(mode=0o700, exist_ok=True)
    store = Store(f"sqlite:///{project / 'var' / 'steadyhand.db'}")
    try:
        store.set_pause("ana@example.com", date(2026, 11, 6), FRIDAY)
    finally:
        store.close()
    done = run_cli("run", "--once", "--now", FRIDAY.isoformat())
    assert done.code == 0, done.err
    assert emails(project) == {}


def test_the_preview_shows_the_questions_and_who_sees_the_answers(run_cli, project: Path) -> None:
    write(project / "steadyhand.yaml", config_text())
    shown = run_cli(
        "emails", "preview", "pulse", "--to", "bo@example.com", "--now", FRIDAY.isoformat()
    )
    assert shown.code == 0, shown.err
    words = " ".join(shown.out.split())
    assert "Subject: Pulse: how was the week of Monday 2 November?" in words
    assert "How sustainable was your workload this week? (1 = lowest, 5 = highest)" in words
    assert "(0 = lowest, 10 = highest)" in words
    assert "anonymous to your leaders" in words


def test_over_the_daily_limit_the_pulse_is_bundled_with_its_score_links(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", KEY)
    text = config_text(free_port()).replace("max_per_day: 3", "max_per_day: 1")
    write(project / "steadyhand.yaml", text + '  reflection: {to: everyone, at: "14:00"}\n')
    done = run_cli("run", "--once", "--now", FRIDAY.isoformat())
    assert done.code == 0, done.err
    ana = [m for k, m in emails(project).items() if "ana@example.com" in k]
    assert len(ana) == 1  # one email a day: the reflection and the pulse in one bundle
    body = plain(ana[0])
    assert "How sustainable was your workload this week?" in body
    assert [(q, n) for q, n, _ in score_links(ana[0])][:5] == [("workload", n) for n in range(1, 6)]


def test_the_page_shows_the_persons_own_earlier_answers_only(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    write(project / "steadyhand.yaml", config_text(port))
    (project / "var").mkdir(mode=0o700)
    store = Store(f"sqlite:///{project / 'var' / 'steadyhand.db'}")
    try:
        store.record_answers(
            "ana@example.com",
            "pulse",
            "2026-W44",
            {"workload": 2, "workload.comment": "Rough."},
            FRIDAY,
        )
        store.record_answers(
            "bo@example.com",
            "pulse",
            "2026-W44",
            {"workload": 5, "workload.comment": "Bo's own."},
            FRIDAY,
        )
    finally:
        store.close()
    links = Links(KEY, f"http://127.0.0.1:{port}", None)
    url = links.url(Purpose.ANSWER, "ana@example.com", "pulse", WEEK, FRIDAY)
    assert url is not None
    with serving(project, FRIDAY):
        page = text_of(requests.get(url, timeout=10).text)
    assert "Your earlier pulse answers" in page
    assert "How sustainable was your workload this week?: 2 (“Rough.”)" in page
    assert "Bo's own" not in page and ": 5" not in page


@given(st.text(max_size=12))
def test_any_typed_score_is_on_the_scale_or_refused(typed: str) -> None:
    for q in (Question("workload", "W", 1, 5), Question("clarity", "C", 0, 10)):
        found = _score(typed, q)
        assert found is None or (q.low <= found <= q.high and str(found) == typed.strip())
